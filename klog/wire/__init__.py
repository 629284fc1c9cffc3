"""Sans-I/O Kafka protocol: primitives, messages, framing, record batches, compression, errors.

Public API (everything else in the submodules is private or reached through them):

* messages: one class per Kafka schema (``MetadataRequest``, ``ProduceResponse``,
  ``OffsetCommitKey``, ``PartitionChangeRecord``, ``ConsumerProtocolSubscription``...),
  the registries ``REQUESTS`` / ``RESPONSES`` / ``METADATA_RECORDS`` / ``MESSAGE_CLASSES``,
  ``RequestHeader`` / ``ResponseHeader`` and the header-version rules
  (``klog.wire.messages``);
* connection state machines ``ServerConnection`` / ``ClientConnection`` and their events
  (``klog.wire.connection``);
* versioned framing of consumer-protocol, coordinator and KRaft metadata records
  (``klog.wire.versioned``);
* record batches (``klog.wire.records``), compression codecs (``klog.wire.compression``),
  the Kafka error-code table (``klog.wire.errors``);
* exceptions: ``DecodeError``, ``EncodeError``, ``ProtocolError``,
  ``UnsupportedVersionError``.

No I/O, no clocks: every name here is safe to use from any task.
"""

from klog.wire import compression, connection, errors, messages, primitives, records, versioned
from klog.wire.compression import Compression, DecompressionError, compress, decompress
from klog.wire.connection import (
    CLOSED,
    NEED_DATA,
    ClientConnection,
    Request,
    Response,
    ServerConnection,
)
from klog.wire.errors import ErrorCode, KafkaError, error_message, error_name, is_retriable
from klog.wire.exceptions import DecodeError, EncodeError, ProtocolError, UnsupportedVersionError
from klog.wire.messages import (
    MESSAGE_CLASSES,
    METADATA_RECORDS,
    REQUESTS,
    RESPONSES,
    Message,
    RequestHeader,
    ResponseHeader,
    Struct,
    request_header_version,
    response_header_version,
)
from klog.wire.records import (
    BatchHeader,
    ControlRecordType,
    CorruptRecordError,
    EndTransactionMarker,
    Record,
    TimestampType,
    UnsupportedMessageFormatError,
    build_batch,
    build_end_transaction_batch,
    check_batch,
    decode_record_tuples,
    decode_records,
    iter_batches,
    parse_batch_header,
)
from klog.wire.versioned import (
    COORDINATOR_KEYS,
    COORDINATOR_VALUES,
    decode_consumer_protocol,
    decode_coordinator_key,
    decode_metadata_record,
    decode_versioned,
    encode_metadata_record,
    encode_versioned,
)

# Every message class by its Kafka name, e.g. ``klog.wire.MetadataRequest``.
globals().update(MESSAGE_CLASSES)

# Grouped by submodule, then the generated message classes.
__all__ = [
    "compression",
    "connection",
    "errors",
    "messages",
    "primitives",
    "records",
    "versioned",
    "CLOSED",
    "NEED_DATA",
    "ClientConnection",
    "Request",
    "Response",
    "ServerConnection",
    "Compression",
    "DecompressionError",
    "compress",
    "decompress",
    "ErrorCode",
    "KafkaError",
    "error_message",
    "error_name",
    "is_retriable",
    "DecodeError",
    "EncodeError",
    "ProtocolError",
    "UnsupportedVersionError",
    "MESSAGE_CLASSES",
    "METADATA_RECORDS",
    "REQUESTS",
    "RESPONSES",
    "Message",
    "RequestHeader",
    "ResponseHeader",
    "Struct",
    "request_header_version",
    "response_header_version",
    "BatchHeader",
    "ControlRecordType",
    "CorruptRecordError",
    "EndTransactionMarker",
    "Record",
    "TimestampType",
    "UnsupportedMessageFormatError",
    "build_batch",
    "build_end_transaction_batch",
    "check_batch",
    "decode_record_tuples",
    "decode_records",
    "iter_batches",
    "parse_batch_header",
    "COORDINATOR_KEYS",
    "COORDINATOR_VALUES",
    "decode_consumer_protocol",
    "decode_coordinator_key",
    "decode_metadata_record",
    "decode_versioned",
    "encode_metadata_record",
    "encode_versioned",
    *sorted(set(MESSAGE_CLASSES) - {"RequestHeader", "ResponseHeader"}),
]
