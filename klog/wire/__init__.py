"""Sans-I/O Kafka protocol: primitives, messages, framing, record batches, compression, errors."""
