"""The realtime layer: the Socket.IO namespace, the Redis manager, fan-out to rooms."""
