"""The worker API: ``ProgressEmitter`` (async) and ``SyncProgressEmitter`` (blocking)."""
