"""Config value parsing, Kafka string forms, validators and endpoint syntax."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.server.config_types import (
    DOUBLE_MAX,
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    SHORT_MAX,
    ConfigDef,
    ConfigType,
    HostPort,
    InvalidConfigValueError,
    Listener,
    ListOf,
    OneOf,
    Voter,
    at_least,
    between,
    did_you_mean,
    must_be,
    parse_host_port,
    parse_listener,
    parse_protocol_map,
    parse_typed,
    parse_voter,
    suggest,
    to_string,
    unset_only,
)


@pytest.mark.parametrize(
    ("ctype", "text", "expected"),
    [
        (ConfigType.BOOLEAN, "true", True),
        (ConfigType.BOOLEAN, " FALSE ", False),
        (ConfigType.BOOLEAN, "True", True),
        (ConfigType.INT, "42", 42),
        (ConfigType.INT, " -7 ", -7),
        (ConfigType.INT, "+3", 3),
        (ConfigType.INT, str(INT_MAX), INT_MAX),
        (ConfigType.INT, str(INT_MIN), INT_MIN),
        (ConfigType.SHORT, str(SHORT_MAX), SHORT_MAX),
        (ConfigType.LONG, str(LONG_MAX), LONG_MAX),
        (ConfigType.LONG, str(LONG_MIN), LONG_MIN),
        (ConfigType.DOUBLE, "0.5", 0.5),
        (ConfigType.DOUBLE, ".5", 0.5),
        (ConfigType.DOUBLE, "1e3", 1000.0),
        (ConfigType.DOUBLE, "2", 2.0),
        (ConfigType.DOUBLE, "1.5d", 1.5),
        (ConfigType.LIST, "", ()),
        (ConfigType.LIST, "  ", ()),
        (ConfigType.LIST, "a", ("a",)),
        (ConfigType.LIST, " a , b,c ", ("a", "b", "c")),
        (ConfigType.STRING, "  padded  ", "padded"),
        (ConfigType.PASSWORD, "s3cret", "s3cret"),
        (ConfigType.CLASS, "org.example.Foo", "org.example.Foo"),
    ],
)
def test_parse_typed_accepts_kafka_syntax(ctype: ConfigType, text: str, expected: object) -> None:
    assert parse_typed(ctype, text) == expected


@pytest.mark.parametrize(
    ("ctype", "text", "problem"),
    [
        (ConfigType.BOOLEAN, "yes", "true or false"),
        (ConfigType.BOOLEAN, "1", "true or false"),
        (ConfigType.INT, "abc", "whole number"),
        (ConfigType.INT, "1.0", "whole number"),
        (ConfigType.INT, "1_000", "whole number"),
        (ConfigType.INT, "", "whole number"),
        (ConfigType.INT, str(INT_MAX + 1), "out of range"),
        (ConfigType.INT, str(INT_MIN - 1), "out of range"),
        (ConfigType.SHORT, str(SHORT_MAX + 1), "out of range"),
        (ConfigType.LONG, str(LONG_MAX + 1), "out of range"),
        (ConfigType.DOUBLE, "nan", "number"),
        (ConfigType.DOUBLE, "inf", "number"),
        (ConfigType.DOUBLE, "1e400", "out of range"),
        (ConfigType.DOUBLE, "0x10", "number"),
        (ConfigType.LIST, "a,,b", "empty element"),
        (ConfigType.LIST, "a,", "empty element"),
    ],
)
def test_parse_typed_rejects(ctype: ConfigType, text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_typed(ctype, text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (0.9, "0.9"),
        (0.0, "0.0"),
        (1.0, "1.0"),
        (1e7, "1.0E7"),
        (123456789.0, "1.23456789E8"),
        (1e-4, "1.0E-4"),
        (-2.5e-5, "-2.5E-5"),
        (DOUBLE_MAX, "1.7976931348623157E308"),
    ],
)
def test_doubles_print_like_java(value: float, text: str) -> None:
    assert to_string(ConfigType.DOUBLE, value) == text


def test_to_string_of_other_types() -> None:
    assert to_string(ConfigType.BOOLEAN, True) == "true"
    assert to_string(ConfigType.BOOLEAN, False) == "false"
    assert to_string(ConfigType.LIST, ("delete", "compact")) == "delete,compact"
    assert to_string(ConfigType.LIST, ()) == ""
    assert to_string(ConfigType.LONG, LONG_MAX) == "9223372036854775807"
    assert to_string(ConfigType.STRING, None) is None


@settings(max_examples=200)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_string_round_trips(value: float) -> None:
    assert parse_typed(ConfigType.DOUBLE, to_string(ConfigType.DOUBLE, value) or "") == value


@settings(max_examples=100)
@given(st.integers(min_value=LONG_MIN, max_value=LONG_MAX))
def test_long_string_round_trips(value: int) -> None:
    assert parse_typed(ConfigType.LONG, to_string(ConfigType.LONG, value) or "") == value


_TOKEN = st.text(
    st.characters(blacklist_characters=",", blacklist_categories=("Z", "C")), min_size=1
)


@settings(max_examples=100)
@given(st.lists(_TOKEN, max_size=5).map(tuple))
def test_list_string_round_trips(value: tuple[str, ...]) -> None:
    assert parse_typed(ConfigType.LIST, to_string(ConfigType.LIST, value) or "") == value


def test_range_messages() -> None:
    assert at_least(1)(0) == "must be at least 1"
    assert at_least(1)(1) is None
    assert between(0, 1)(1.5) == "must be between 0 and 1"
    assert between(0, 1)(-0.1) == "must be between 0 and 1"
    assert between(0, 1)(0.5) is None
    assert between(-131072, 22)(23) == "must be between -131072 and 22"
    assert at_least(0.5)(0.1) == "must be at least 0.5"
    assert at_least(1).describe() == "[1,...]"
    assert between(0, 1).describe() == "[0,1]"


def test_one_of_is_case_sensitive_like_kafka() -> None:
    rule = OneOf(("CreateTime", "LogAppendTime"))
    assert rule("CreateTime") is None
    assert rule("createtime") == "must be one of CreateTime, LogAppendTime"
    assert rule.describe() == "[CreateTime, LogAppendTime]"


def test_list_of() -> None:
    rule = ListOf(("compact", "delete"))
    assert rule(("delete",)) is None
    assert rule(("compact", "delete")) is None
    assert rule(()) is None
    assert rule(("delete", "compakt")) == "'compakt' is not one of compact, delete"
    strict = ListOf(("broker", "controller"), allow_empty=False, unique=True)
    assert strict(()) == "must not be empty (use broker, controller)"
    assert strict(("broker", "broker")) == "must not repeat an element"


def test_must_be_and_unset_only() -> None:
    rule = must_be(False, "klog has no tiered storage")
    assert rule(False) is None
    assert rule(True) == "must be False: klog has no tiered storage"
    empty = unset_only("klog cannot load Java classes")
    assert empty("") is None
    assert empty("org.Foo") == "must be empty: klog cannot load Java classes"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PLAINTEXT://127.0.0.1:9092", Listener("PLAINTEXT", "127.0.0.1", 9092)),
        ("PLAINTEXT://:9092", Listener("PLAINTEXT", "", 9092)),
        ("client://0.0.0.0:0", Listener("CLIENT", "0.0.0.0", 0)),
        ("CONTROLLER://[::1]:9093", Listener("CONTROLLER", "::1", 9093)),
        (
            "EXTERNAL://broker-1.example.com:19092",
            Listener("EXTERNAL", "broker-1.example.com", 19092),
        ),
    ],
)
def test_parse_listener(text: str, expected: Listener) -> None:
    assert parse_listener(text) == expected


@pytest.mark.parametrize(
    "text",
    ["PLAINTEXT//h:1", "PLAINTEXT://h", "://h:1", "PLAINTEXT://h:65536", "PLAINTEXT://h:x", "h:1"],
)
def test_parse_listener_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listener(text)


def test_parse_voter_and_host_port() -> None:
    assert parse_voter("1@localhost:9093") == Voter(1, "localhost", 9093)
    assert parse_voter("12@[::1]:9093") == Voter(12, "::1", 9093)
    assert parse_host_port("ctrl:9093") == HostPort("ctrl", 9093)
    for bad in ("localhost:9093", "x@h:1", "1@h", "1@h:0", "1@:9093"):
        with pytest.raises(ValueError):
            parse_voter(bad)
    with pytest.raises(ValueError, match="out of range"):
        parse_host_port("h:0")


def test_parse_protocol_map() -> None:
    assert parse_protocol_map("CONTROLLER:PLAINTEXT, client:ssl") == {
        "CONTROLLER": "PLAINTEXT",
        "CLIENT": "SSL",
    }
    assert parse_protocol_map("") == {}
    with pytest.raises(ValueError, match="unknown security protocol"):
        parse_protocol_map("A:TLS")
    with pytest.raises(ValueError, match="appears twice"):
        parse_protocol_map("A:PLAINTEXT,a:SSL")
    with pytest.raises(ValueError, match="is not LISTENER_NAME:SECURITY_PROTOCOL"):
        parse_protocol_map("A")


def test_config_def_parse_errors_are_one_line_and_name_the_key() -> None:
    definition = ConfigDef("num.partitions", ConfigType.INT, 1, "doc", at_least(1))
    assert definition.parse(" 3 ") == 3
    with pytest.raises(InvalidConfigValueError) as err:
        definition.parse("0")
    assert str(err.value) == "invalid value '0' for num.partitions: must be at least 1"
    assert err.value.key == "num.partitions"
    with pytest.raises(InvalidConfigValueError) as err:
        definition.parse("1\n2")
    assert "\n" not in str(err.value)
    assert "'1\\n2'" in str(err.value)


def test_sensitive_values_are_not_echoed_in_errors() -> None:
    definition = ConfigDef("secret", ConfigType.PASSWORD, None, "doc", unset_only("no"))
    assert definition.is_sensitive
    with pytest.raises(InvalidConfigValueError) as err:
        definition.parse("hunter2")
    assert "hunter2" not in str(err.value)
    assert "(hidden)" in str(err.value)


def test_suggestions() -> None:
    names = ["log.retention.ms", "log.retention.hours", "num.partitions"]
    assert suggest("log.retention.msec", names)[0] == "log.retention.ms"
    assert suggest("zzz", names) == []
    assert did_you_mean("num.partition", names) == " (did you mean num.partitions?)"
    assert did_you_mean("zzz", names) == ""
