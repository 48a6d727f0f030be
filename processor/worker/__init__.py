"""The long-lived Event Hubs worker and its commands (run, replay, simulate, status)."""
