"""klog: a Kafka-protocol commit-log broker written in Python."""

__version__ = "0.1.0"
