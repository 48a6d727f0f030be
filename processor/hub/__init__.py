"""Event Hubs adapters: the consumer and producer clients, checkpoint stores, and the local endpoint (devhub)."""
