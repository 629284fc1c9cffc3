"""Typed exceptions raised by the storage layer.

Two families, as DESIGN.md section 9 asks:

* ``StorageError`` and its subclasses describe something wrong with a request or with
  the data a peer sent (a corrupt batch, an offset out of range, a full disk). The
  request router maps each class to one Kafka error code; the Kafka name is given in
  each docstring so the mapping is easy to check.
* ``CorruptIndexError`` is internal: the storage layer raises and handles it itself by
  rebuilding the index, so it never reaches the router.

Plain exception classes: immutable, safe to share between tasks and threads.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors the request router turns into Kafka error codes."""


class CorruptBatchError(StorageError):
    """A record batch fails framing checks (Kafka: CORRUPT_MESSAGE).

    ``position`` is the byte position of the bad batch inside the appended buffer.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class TruncatedBatchError(CorruptBatchError):
    """The buffer ends inside a batch (or inside its 12-byte length prefix)."""


class InvalidBatchLengthError(CorruptBatchError):
    """A batch_length field is smaller than a batch header or absurdly large."""


class UnsupportedMagicError(CorruptBatchError):
    """A batch is not magic v2, the only format klog stores."""


class CrcMismatchError(CorruptBatchError):
    """A batch's CRC-32C does not match its contents."""


class InvalidRecordError(StorageError):
    """A batch is well framed but breaks a rule for appends (Kafka: INVALID_RECORD):
    a client batch with a non-zero base offset, an inconsistent record count, or an
    append with no batches at all."""


class RecordTooLargeError(StorageError):
    """One batch is larger than ``max.message.bytes`` (Kafka: MESSAGE_TOO_LARGE)."""


class RecordBatchTooLargeError(StorageError):
    """One append is larger than ``segment.bytes`` (Kafka: RECORD_LIST_TOO_LARGE)."""


class OffsetOutOfRangeError(StorageError):
    """An offset is below the log start offset or above the log end offset
    (Kafka: OFFSET_OUT_OF_RANGE)."""


class UnexpectedAppendOffsetError(StorageError):
    """A follower append starts below the log end offset (Kafka:
    UnexpectedAppendOffsetException; replication truncates and retries)."""


class OffsetsOutOfOrderError(StorageError):
    """A follower append's batches do not have increasing offsets (Kafka:
    OffsetsOutOfOrderException, reported as UNKNOWN_SERVER_ERROR)."""


class OutOfOrderSequenceError(StorageError):
    """An idempotent producer's batch does not continue its sequence: a gap, or a new
    epoch not starting at sequence 0 (Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER)."""


class InvalidProducerEpochError(StorageError):
    """An idempotent producer's batch carries an epoch older than the one the partition
    last saw from that producer id: a zombie (Kafka: INVALID_PRODUCER_EPOCH)."""


class InvalidTxnStateError(StorageError):
    """A transactional batch arrived, but no transaction is open for it: klog has no
    transaction coordinator (Kafka: INVALID_TXN_STATE)."""


class KafkaStorageError(StorageError):
    """The disk failed under an operation (Kafka: KAFKA_STORAGE_ERROR).

    Raised with the ``OSError`` as its cause; the log is left as it was before the
    failed operation.
    """


class CorruptIndexError(Exception):
    """An index file is inconsistent with its segment; the caller rebuilds it."""
