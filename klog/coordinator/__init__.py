"""Group coordinator (classic protocol) and offsets in __consumer_offsets."""
