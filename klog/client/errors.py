"""Exceptions the bundled client raises.

Every failure that comes from a broker is a ``KafkaError`` (``klog.wire.errors``)
carrying the Kafka error code (``err.code``, an ``ErrorCode``) and its name
(``err.name``). The codes a program commonly handles have their own subclass
(``UnknownTopicOrPartitionError``, ``TopicAlreadyExistsError``...); ``error_for(code)``
builds the most specific one, falling back to ``BrokerResponseError``. Failures that
happen on this side of the wire have client-side classes that are still ``KafkaError``s
with the closest Kafka code (a timeout is REQUEST_TIMED_OUT, a lost connection is
NETWORK_EXCEPTION), so one ``except KafkaError`` catches everything the client raises
for a failed operation. Programming errors stay ``TypeError``/``ValueError``.

Immutable classes only; safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from klog.wire.errors import ErrorCode, KafkaError

__all__ = [
    "AdminOperationError",
    "BrokerResponseError",
    "ClientClosedError",
    "CommitFailedError",
    "CoordinatorNotAvailableError",
    "DeliveryCallbackError",
    "ErrorCode",
    "FencedInstanceIdError",
    "GroupIdNotFoundError",
    "IllegalGenerationError",
    "InvalidOffsetError",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidTopicError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "LeaderNotAvailableError",
    "MessageTooLargeError",
    "NoBrokersAvailableError",
    "NoOffsetForPartitionError",
    "NonEmptyGroupError",
    "NotCoordinatorError",
    "NotLeaderOrFollowerError",
    "OffsetOutOfRangeError",
    "RebalanceInProgressError",
    "TopicAlreadyExistsError",
    "UnknownMemberIdError",
    "UnknownTopicOrPartitionError",
    "UnsupportedVersionError",
    "error_for",
    "raise_for",
]

_BY_CODE: dict[int, type[BrokerResponseError]] = {}


class BrokerResponseError(KafkaError):
    """A broker answered with a non-zero error code.

    Subclasses pin ``default_code``; each is registered so ``error_for`` finds it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _BY_CODE[int(cls.default_code)] = cls


class OffsetOutOfRangeError(BrokerResponseError):
    default_code = ErrorCode.OFFSET_OUT_OF_RANGE


class UnknownTopicOrPartitionError(BrokerResponseError):
    default_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


class LeaderNotAvailableError(BrokerResponseError):
    default_code = ErrorCode.LEADER_NOT_AVAILABLE


class NotLeaderOrFollowerError(BrokerResponseError):
    default_code = ErrorCode.NOT_LEADER_OR_FOLLOWER


class MessageTooLargeError(BrokerResponseError):
    default_code = ErrorCode.MESSAGE_TOO_LARGE


class CoordinatorNotAvailableError(BrokerResponseError):
    default_code = ErrorCode.COORDINATOR_NOT_AVAILABLE


class NotCoordinatorError(BrokerResponseError):
    default_code = ErrorCode.NOT_COORDINATOR


class InvalidTopicError(BrokerResponseError):
    default_code = ErrorCode.INVALID_TOPIC_EXCEPTION


class IllegalGenerationError(BrokerResponseError):
    default_code = ErrorCode.ILLEGAL_GENERATION


class UnknownMemberIdError(BrokerResponseError):
    default_code = ErrorCode.UNKNOWN_MEMBER_ID


class RebalanceInProgressError(BrokerResponseError):
    default_code = ErrorCode.REBALANCE_IN_PROGRESS


class UnsupportedVersionError(BrokerResponseError):
    """The broker supports no version of an API that this client implements."""

    default_code = ErrorCode.UNSUPPORTED_VERSION


class TopicAlreadyExistsError(BrokerResponseError):
    default_code = ErrorCode.TOPIC_ALREADY_EXISTS


class InvalidPartitionsError(BrokerResponseError):
    default_code = ErrorCode.INVALID_PARTITIONS


class InvalidReplicationFactorError(BrokerResponseError):
    default_code = ErrorCode.INVALID_REPLICATION_FACTOR


class NonEmptyGroupError(BrokerResponseError):
    default_code = ErrorCode.NON_EMPTY_GROUP


class GroupIdNotFoundError(BrokerResponseError):
    default_code = ErrorCode.GROUP_ID_NOT_FOUND


class FencedInstanceIdError(BrokerResponseError):
    """Another consumer joined with the same ``group_instance_id``."""

    default_code = ErrorCode.FENCED_INSTANCE_ID


def error_for(code: int, detail: str | None = None) -> KafkaError:
    """The most specific exception for a non-zero Kafka error ``code``."""
    cls = _BY_CODE.get(int(code), BrokerResponseError)
    return cls(code, detail)


def raise_for(code: int, detail: str | None = None) -> None:
    """Raise ``error_for(code, detail)`` unless ``code`` is NONE (0)."""
    if code:
        raise error_for(code, detail)


class KafkaTimeoutError(KafkaError):
    """An operation did not finish within its deadline."""

    default_code = ErrorCode.REQUEST_TIMED_OUT

    def __init__(self, detail: str) -> None:
        super().__init__(self.default_code, detail)


class KafkaConnectionError(KafkaError):
    """A broker connection could not be made or was lost before the response arrived."""

    default_code = ErrorCode.NETWORK_EXCEPTION

    def __init__(self, detail: str) -> None:
        super().__init__(self.default_code, detail)


class NoBrokersAvailableError(KafkaConnectionError):
    """None of the bootstrap servers (or known brokers) accepted a connection."""


class ClientClosedError(KafkaError):
    """The producer, consumer or admin client was used after ``close()``."""

    default_code = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, detail: str = "the client is closed") -> None:
        super().__init__(self.default_code, detail)


class InvalidOffsetError(KafkaError):
    """The consumer has no valid position for some partitions (Kafka's
    ``InvalidOffsetException``). ``partitions`` lists them."""

    default_code = ErrorCode.OFFSET_OUT_OF_RANGE

    def __init__(self, partitions: Iterable[Any], detail: str) -> None:
        self.partitions = sorted(partitions)
        super().__init__(self.default_code, detail)


class NoOffsetForPartitionError(InvalidOffsetError):
    """``auto_offset_reset="none"`` and a partition has no committed offset (or its
    offset is out of range): the application must ``seek`` explicitly."""


class CommitFailedError(KafkaError):
    """An offset commit failed because the group rebalanced (or this member was removed)
    since the offsets were fetched; the partitions may now belong to another member."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)


class AdminOperationError(KafkaError):
    """An admin call on several items failed for some of them.

    ``errors`` maps each failed item (a topic, group, partition...) to its typed error;
    items not in it succeeded. The exception's own code is the first failure's."""

    def __init__(self, errors: Mapping[Any, KafkaError]) -> None:
        self.errors = dict(errors)
        first = next(iter(self.errors.values()))
        summary = "; ".join(f"{item}: {err}" for item, err in self.errors.items())
        super().__init__(first.code, summary)


class DeliveryCallbackError(KafkaError):
    """A delivery callback raised; the original exception is ``__cause__``.

    Callbacks run on the client's I/O thread, so their exceptions are re-raised from
    the next ``flush()`` or ``close()`` of the producer instead of being lost."""

    default_code: ClassVar[ErrorCode] = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(self.default_code, detail)
