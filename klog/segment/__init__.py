"""Partition storage: Kafka's on-disk log format, segments, indexes, checkpoints,
recovery, retention and the ``LogManager``.

Public names are re-exported here; the modules hold the details (each module docstring
states its file format and invariants).
"""

from klog.segment.checkpoint import (
    CorruptCheckpointError,
    LeaderEpochCheckpointFile,
    OffsetCheckpointFile,
)
from klog.segment.config import LogConfig
from klog.segment.errors import (
    CorruptBatchError,
    CorruptIndexError,
    CrcMismatchError,
    InvalidBatchLengthError,
    InvalidRecordError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    OffsetsOutOfOrderError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    StorageError,
    TruncatedBatchError,
    UnexpectedAppendOffsetError,
    UnsupportedMagicError,
)
from klog.segment.file_slice import FileSlice
from klog.segment.leader_epoch import (
    UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
    EpochEntry,
    LeaderEpochFileCache,
)
from klog.segment.log import (
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    AppendInfo,
    FlushJob,
    Log,
    TimestampAndOffset,
)
from klog.segment.log_manager import METADATA_TOPIC, LogManager, TopicPartition
from klog.segment.offset_index import OffsetIndex
from klog.segment.retention import RetentionPlan, SegmentStats, plan_retention
from klog.segment.segment import Segment
from klog.segment.time_index import TimeIndex

__all__ = [
    "EARLIEST_LOCAL_TIMESTAMP",
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "MAX_TIMESTAMP",
    "METADATA_TOPIC",
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "AppendInfo",
    "CorruptBatchError",
    "CorruptCheckpointError",
    "CorruptIndexError",
    "CrcMismatchError",
    "EpochEntry",
    "FileSlice",
    "FlushJob",
    "InvalidBatchLengthError",
    "InvalidRecordError",
    "KafkaStorageError",
    "LeaderEpochCheckpointFile",
    "LeaderEpochFileCache",
    "Log",
    "LogConfig",
    "LogManager",
    "OffsetCheckpointFile",
    "OffsetIndex",
    "OffsetOutOfRangeError",
    "OffsetsOutOfOrderError",
    "RecordBatchTooLargeError",
    "RecordTooLargeError",
    "RetentionPlan",
    "Segment",
    "SegmentStats",
    "StorageError",
    "TimeIndex",
    "TimestampAndOffset",
    "TopicPartition",
    "TruncatedBatchError",
    "UnexpectedAppendOffsetError",
    "UnsupportedMagicError",
    "plan_retention",
]
