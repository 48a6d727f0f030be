"""Realistic Event Grid traffic, generated (pure and seeded) for the demo, the simulator, tests and benchmarks.
Imports nothing of the processor."""
