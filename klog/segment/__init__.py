"""Partition storage: segments, indexes, logs, checkpoints, retention, LogManager."""
