"""Kafka record batches, magic v2 (Kafka's DefaultRecordBatch layout).

Byte layout of a batch header (all big-endian)::

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8
    | crc uint32 | attributes int16 | last_offset_delta int32 | base_timestamp int64
    | max_timestamp int64 | producer_id int64 | producer_epoch int16 | base_sequence int32
    | records_count int32 | records...

The CRC-32C covers everything from ``attributes`` to the end of the batch, so the
broker may patch ``base_offset`` and ``partition_leader_epoch`` without recomputing it.
"""

BASE_OFFSET_POS = 0
LENGTH_POS = 8
PARTITION_LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21
LAST_OFFSET_DELTA_POS = 23
BASE_TIMESTAMP_POS = 27
MAX_TIMESTAMP_POS = 35
PRODUCER_ID_POS = 43
PRODUCER_EPOCH_POS = 51
BASE_SEQUENCE_POS = 53
RECORDS_COUNT_POS = 57
BATCH_HEADER_SIZE = 61
# base_offset + batch_length precede the part that batch_length counts.
LOG_OVERHEAD = 12
# The smallest legal batch_length: the header after the length field, no records.
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD
CURRENT_MAGIC = 2
