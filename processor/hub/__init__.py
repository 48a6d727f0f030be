"""Event Hubs adapters: the consumer and producer clients, checkpoint stores, the feeder (the SDK consumer in a
child process) and its wire format to the worker (wire.py), the partition status query (lag as KEDA computes
it). The local endpoint for development is the top-level `devhub` package, which nothing here imports."""
