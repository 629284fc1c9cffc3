"""The Kafka error-code table and KafkaError, checked against two independent clients."""

import confluent_kafka
import kafka.errors
import pytest

from klog.wire.errors import ErrorCode, KafkaError, error_message, error_name, is_retriable


def test_codes_run_contiguously_from_minus_one_with_unique_names() -> None:
    codes = [member.value for member in ErrorCode]
    assert codes == list(range(-1, len(codes) - 1))
    assert len(codes) >= 134
    assert len({member.name for member in ErrorCode}) == len(codes)


def test_every_code_has_a_one_line_message() -> None:
    for member in ErrorCode:
        assert member.message, member.name
        assert "\n" not in member.message, member.name
        assert member.message.endswith("."), member.name


@pytest.mark.parametrize(
    ("code", "name", "retriable"),
    [
        (-1, "UNKNOWN_SERVER_ERROR", False),
        (0, "NONE", False),
        (1, "OFFSET_OUT_OF_RANGE", False),
        (2, "CORRUPT_MESSAGE", True),
        (3, "UNKNOWN_TOPIC_OR_PARTITION", True),
        (6, "NOT_LEADER_OR_FOLLOWER", True),
        (7, "REQUEST_TIMED_OUT", True),
        (10, "MESSAGE_TOO_LARGE", False),
        (15, "COORDINATOR_NOT_AVAILABLE", True),
        (27, "REBALANCE_IN_PROGRESS", False),
        (35, "UNSUPPORTED_VERSION", False),
        (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", False),
        (51, "CONCURRENT_TRANSACTIONS", True),
        (74, "FENCED_LEADER_EPOCH", True),
        (90, "PRODUCER_FENCED", False),
        (100, "UNKNOWN_TOPIC_ID", True),
        (133, "SHARE_SESSION_LIMIT_REACHED", True),
    ],
)
def test_known_codes(code: int, name: str, retriable: bool) -> None:
    assert ErrorCode(code).name == name
    assert error_name(code) == name
    assert is_retriable(code) is retriable
    assert error_message(code) == ErrorCode(code).message


def test_unknown_codes_are_named_and_not_retriable() -> None:
    assert error_name(999) == "UNKNOWN_ERROR_CODE_999"
    assert is_retriable(999) is False
    assert "999" in error_message(999)


# librdkafka abbreviates a few of Kafka's names.
_LIBRDKAFKA_NAMES = {
    -1: "UNKNOWN",
    0: "NO_ERROR",
    2: "INVALID_MSG",
    3: "UNKNOWN_TOPIC_OR_PART",
    4: "INVALID_MSG_SIZE",
    6: "NOT_LEADER_FOR_PARTITION",
    10: "MSG_SIZE_TOO_LARGE",
    11: "STALE_CTRL_EPOCH",
    17: "TOPIC_EXCEPTION",
}


def test_names_agree_with_librdkafka() -> None:
    theirs = {
        value: name
        for name, value in vars(confluent_kafka.KafkaError).items()
        if name.isupper() and isinstance(value, int) and value >= -1
    }
    compared = 0
    for member in ErrorCode:
        if member.value in theirs:
            expected = _LIBRDKAFKA_NAMES.get(member.value, member.name)
            assert theirs[member.value] == expected, member
            compared += 1
    assert compared >= 120


def test_retriable_flags_agree_with_kafka_python() -> None:
    # kafka-python marks CORRUPT_MESSAGE non-retriable; Java's CorruptRecordException
    # extends RetriableException, and the table follows Java.
    known_differences = {ErrorCode.CORRUPT_MESSAGE}
    compared = 0
    for cls in vars(kafka.errors).values():
        if not (isinstance(cls, type) and issubclass(cls, kafka.errors.BrokerResponseError)):
            continue
        if cls.errno is None or cls.errno not in ErrorCode.__members__.values():
            continue
        member = ErrorCode(cls.errno)
        if member not in known_differences:
            assert member.retriable is bool(cls.retriable), member
            compared += 1
    assert compared >= 120


def test_kafka_error_carries_code_name_and_message() -> None:
    err = KafkaError(ErrorCode.MESSAGE_TOO_LARGE, "batch of 2000000 bytes")
    assert err.code is ErrorCode.MESSAGE_TOO_LARGE
    assert err.name == "MESSAGE_TOO_LARGE"
    assert err.message == ErrorCode.MESSAGE_TOO_LARGE.message
    assert err.detail == "batch of 2000000 bytes"
    assert err.retriable is False
    assert str(err) == "MESSAGE_TOO_LARGE: batch of 2000000 bytes"
    with pytest.raises(KafkaError) as caught:
        raise err
    assert caught.value.code == 10


def test_kafka_error_defaults_and_unknown_codes() -> None:
    assert KafkaError().code is ErrorCode.UNKNOWN_SERVER_ERROR
    assert str(KafkaError(ErrorCode.NOT_COORDINATOR)) == (
        "NOT_COORDINATOR: " + ErrorCode.NOT_COORDINATOR.message
    )
    newer = KafkaError(500, "from a newer broker")
    assert newer.code == 500
    assert newer.name == "UNKNOWN_ERROR_CODE_500"
    assert newer.retriable is False


def test_subclasses_pin_their_code() -> None:
    class NotCoordinator(KafkaError):
        default_code = ErrorCode.NOT_COORDINATOR

    err = NotCoordinator(detail="moved")
    assert err.code is ErrorCode.NOT_COORDINATOR
    assert err.retriable is True
