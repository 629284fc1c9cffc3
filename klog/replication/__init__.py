"""Partition replicas: leader epoch, ISR, high watermark, acks waiters, follower fetchers."""
