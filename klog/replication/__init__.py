"""Partition replicas: leader epoch, ISR, high watermark, acks waiters, the replica manager."""

from klog.replication.partition import HighWatermarkWaiters, LeaderAndIsr, Partition, ReadResult
from klog.replication.replica_manager import LeadershipListener, ReplicaManager

__all__ = [
    "HighWatermarkWaiters",
    "LeaderAndIsr",
    "LeadershipListener",
    "Partition",
    "ReadResult",
    "ReplicaManager",
]
