"""Bundled Kafka client: producer, consumer, admin. Depends on klog.wire and klog.native only."""
