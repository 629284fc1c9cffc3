"""Config value types, validators and errors: the vocabulary of ``klog.server.config``.

Format handled: configuration values as text, the way Kafka's ``ConfigDef`` reads them from
``server.properties``, ``--override`` flags, environment variables, ``ConfigRecord``s and
CreateTopics/AlterConfigs requests. Every value arrives as a string and is parsed by its
``ConfigType`` (trimmed first, as Kafka does), then checked by its validator.
``to_string`` is the inverse used by DescribeConfigs (Kafka's ``ConfigDef.convertToString``).

Invariants:
- ``ConfigType`` ids and ``ConfigSource`` ids are the numbers DescribeConfigs puts on the wire.
- Every ``ConfigError`` message is one line (values are quoted with ``repr``), so the CLI can
  print it as is.
- Typed values: BOOLEAN -> bool, INT/SHORT/LONG -> int, DOUBLE -> float, LIST -> tuple[str, ...],
  STRING/PASSWORD/CLASS -> str; an unset nullable config is None.

Everything here is immutable and stateless: safe to share between tasks and threads.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum
from typing import NamedTuple

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
SHORT_MAX = 2**15 - 1
SHORT_MIN = -(2**15)
DOUBLE_MAX = 1.7976931348623157e308


class ConfigType(IntEnum):
    """Kafka's config types, numbered as DescribeConfigs' ``config_type`` field (v3+)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """Where a config value came from, numbered as DescribeConfigs' ``config_source``."""

    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class UpdateMode(Enum):
    """Kafka's "Update Mode" of a broker config: whether AlterConfigs may change it live."""

    READ_ONLY = "read-only"
    PER_BROKER = "per-broker"
    CLUSTER_WIDE = "cluster-wide"


class ConfigError(ValueError):
    """A configuration problem a user made. ``str(err)`` is one line naming the key."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UnknownConfigError(ConfigError):
    """The key is not a config klog knows (the message suggests the closest ones)."""


class InvalidConfigValueError(ConfigError):
    """The value does not parse as the config's type or fails its validator."""


class ReadOnlyConfigError(ConfigError):
    """A dynamic update (AlterConfigs) touched a config that cannot change at that level."""


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest names to ``name`` (difflib ratio), best first; empty when none is close."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean a, b?)`` for the closest candidates, or ``""`` when none is close."""
    close = suggest(name, candidates)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# --- parsing ---------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[dDfF]?")
_LIST_SPLIT = re.compile(r"\s*,\s*")
_INT_BOUNDS = {
    ConfigType.SHORT: (SHORT_MIN, SHORT_MAX),
    ConfigType.INT: (INT_MIN, INT_MAX),
    ConfigType.LONG: (LONG_MIN, LONG_MAX),
}


def parse_typed(ctype: ConfigType, text: str) -> object:
    """Parse ``text`` as ``ctype`` the way Kafka's ConfigDef does; ValueError says why not."""
    value = text.strip()
    if ctype is ConfigType.BOOLEAN:
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise ValueError("expected true or false")
        return lowered == "true"
    if ctype in _INT_BOUNDS:
        if not _INTEGER.fullmatch(value):
            raise ValueError(f"expected a whole number ({ctype.name.lower()})")
        number = int(value)
        low, high = _INT_BOUNDS[ctype]
        if not low <= number <= high:
            raise ValueError(f"out of range for {ctype.name.lower()} ({low} to {high})")
        return number
    if ctype is ConfigType.DOUBLE:
        if not _DOUBLE.fullmatch(value):
            raise ValueError("expected a number")
        number = float(value.rstrip("dDfF"))
        if number in (float("inf"), float("-inf")):
            raise ValueError("out of range for double")
        return number
    if ctype is ConfigType.LIST:
        if not value:
            return ()
        items = tuple(_LIST_SPLIT.split(value))
        if "" in items:
            raise ValueError("empty element in comma-separated list")
        return items
    return value


def _java_double(number: float) -> str:
    # Java's Double.toString: plain notation in [1e-3, 1e7), otherwise d.dddE<exp>.
    if number == 0 or 1e-3 <= abs(number) < 1e7:
        return repr(number)
    sign, digits, exponent = Decimal(repr(number)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) - 1 + exponent
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


def to_string(ctype: ConfigType, value: object) -> str | None:
    """Kafka's string form of a typed value (what DescribeConfigs and ConfigRecords carry)."""
    if value is None:
        return None
    if ctype is ConfigType.BOOLEAN:
        return "true" if value else "false"
    if ctype is ConfigType.LIST:
        assert isinstance(value, tuple)
        return ",".join(value)
    if ctype is ConfigType.DOUBLE:
        assert isinstance(value, float)
        return _java_double(value)
    return str(value)


# --- validators --------------------------------------------------------------------------
#
# A validator is a callable taking the typed value and returning None when it is fine, or a
# short lower-case phrase saying what is wrong ("must be at least 1"). ``describe`` texts are
# for documentation tables ("[1,...]"), as Kafka prints "Valid Values".


class Validator:
    """Base for validators: calling one gives the problem or None; ``describe`` the rule."""

    def __call__(self, value: object) -> str | None:
        raise NotImplementedError

    def describe(self) -> str:
        """Kafka's "Valid Values" text for this rule."""
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Validator):
    """Numbers in ``[low, high]``; either bound may be open (None)."""

    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        low = "..." if self.low is None else _fmt_number(self.low)
        high = "..." if self.high is None else _fmt_number(self.high)
        return f"[{low},{high}]"

    def __call__(self, value: object) -> str | None:
        if value is None:
            return None
        assert isinstance(value, int | float)
        if self.low is not None and value < self.low:
            if self.high is None:
                return f"must be at least {_fmt_number(self.low)}"
            return f"must be between {_fmt_number(self.low)} and {_fmt_number(self.high)}"
        if self.high is not None and value > self.high:
            if self.low is None:
                return f"must be at most {_fmt_number(self.high)}"
            return f"must be between {_fmt_number(self.low)} and {_fmt_number(self.high)}"
        return None


def _fmt_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def at_least(low: float) -> Range:
    """Kafka's ``Range.atLeast``."""
    return Range(low=low)


def between(low: float, high: float) -> Range:
    """Kafka's ``Range.between`` (inclusive)."""
    return Range(low=low, high=high)


@dataclass(frozen=True)
class OneOf(Validator):
    """A string that is exactly one of ``choices`` (case-sensitive, like ``ValidString.in``)."""

    choices: tuple[str, ...]

    def describe(self) -> str:
        return "[" + ", ".join(self.choices) + "]"

    def __call__(self, value: object) -> str | None:
        if value is None or value in self.choices:
            return None
        return f"must be one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class ListOf(Validator):
    """A list whose elements are all in ``choices`` (Kafka's ``ValidList.in``)."""

    choices: tuple[str, ...]
    allow_empty: bool = True
    unique: bool = False

    def describe(self) -> str:
        return "[" + ", ".join(self.choices) + "]"

    def __call__(self, value: object) -> str | None:
        if value is None:
            return None
        assert isinstance(value, tuple)
        if not value and not self.allow_empty:
            return f"must not be empty (use {', '.join(self.choices)})"
        bad = [item for item in value if item not in self.choices]
        if bad:
            return f"{bad[0]!r} is not one of {', '.join(self.choices)}"
        if self.unique and len(set(value)) != len(value):
            return "must not repeat an element"
        return None


@dataclass(frozen=True)
class Check(Validator):
    """A validator from a function; ``text`` documents what it accepts."""

    func: Callable[[object], str | None]
    text: str

    def __call__(self, value: object) -> str | None:
        return None if value is None else self.func(value)

    def describe(self) -> str:
        return self.text


def non_empty_unique_list(value: object) -> str | None:
    """Lists like ``log.dirs``: at least one element, none repeated."""
    assert isinstance(value, tuple)
    if not value:
        return "must not be empty"
    if len(set(value)) != len(value):
        return "must not repeat an element"
    return None


def must_be(expected: object, reason: str) -> Check:
    """Accept only ``expected`` (a Kafka feature klog lacks); ``reason`` says why."""

    def check(value: object) -> str | None:
        return None if value == expected else f"must be {expected!r}: {reason}"

    return Check(check, f"[{expected}]")


def unset_only(reason: str) -> Check:
    """Accept only an empty value: the Kafka key is known but its feature is not in klog."""

    def check(value: object) -> str | None:
        return None if value in ("", ()) else f"must be empty: {reason}"

    return Check(check, "[]")


# --- endpoints -----------------------------------------------------------------------------


class Listener(NamedTuple):
    """One ``listeners`` entry: ``NAME://host:port`` (host "" = all interfaces)."""

    name: str
    host: str
    port: int


class Voter(NamedTuple):
    """One ``controller.quorum.voters`` entry: ``id@host:port``."""

    node_id: int
    host: str
    port: int


class HostPort(NamedTuple):
    """One ``host:port`` endpoint (``controller.quorum.bootstrap.servers``)."""

    host: str
    port: int


_LISTENER = re.compile(r"([A-Za-z0-9_.-]+)://(\[[0-9A-Fa-f:.%]*\]|[^:\[\]/]*):([0-9]+)")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.%]*\]|[^:\[\]/@]+):([0-9]+)")
_VOTER = re.compile(r"([0-9]+)@(.+)")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _port(text: str, allow_zero: bool) -> int:
    port = int(text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError(f"port {text} is out of range")
    return port


def _host(text: str) -> str:
    return text[1:-1] if text.startswith("[") else text


def parse_listener(text: str) -> Listener:
    """``NAME://host:port`` -> Listener; ValueError on bad syntax (IPv6 hosts in brackets)."""
    match = _LISTENER.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not NAME://host:port")
    return Listener(match[1].upper(), _host(match[2]), _port(match[3], allow_zero=True))


def parse_host_port(text: str) -> HostPort:
    """``host:port`` -> HostPort; ValueError on bad syntax."""
    match = _HOST_PORT.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not host:port")
    return HostPort(_host(match[1]), _port(match[2], allow_zero=False))


def parse_voter(text: str) -> Voter:
    """``id@host:port`` -> Voter; ValueError on bad syntax."""
    match = _VOTER.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not id@host:port")
    host, port = parse_host_port(match[2])
    return Voter(int(match[1]), host, port)


def parse_protocol_map(text: str) -> dict[str, str]:
    """``NAME:PROTOCOL,...`` -> {NAME: PROTOCOL}; ValueError on bad syntax or repeats."""
    mapping: dict[str, str] = {}
    for entry in _LIST_SPLIT.split(text.strip()) if text.strip() else ():
        name, sep, protocol = entry.partition(":")
        if not sep or not name or not protocol:
            raise ValueError(f"{entry!r} is not LISTENER_NAME:SECURITY_PROTOCOL")
        if protocol.upper() not in SECURITY_PROTOCOLS:
            raise ValueError(f"unknown security protocol {protocol!r} for listener {name}")
        if name.upper() in mapping:
            raise ValueError(f"listener {name} appears twice")
        mapping[name.upper()] = protocol.upper()
    return mapping


def _each(parse: Callable[[str], object]) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        assert isinstance(value, tuple)
        try:
            for item in value:
                parse(item)
        except ValueError as err:
            return str(err)
        return None

    return check


def _listeners_check(value: object) -> str | None:
    problem = _each(parse_listener)(value)
    if problem:
        return problem
    assert isinstance(value, tuple)
    names = [parse_listener(item).name for item in value]
    repeated = sorted({name for name in names if names.count(name) > 1})
    return f"listener name {repeated[0]} appears twice" if repeated else None


def _voters_check(value: object) -> str | None:
    problem = _each(parse_voter)(value)
    if problem:
        return problem
    assert isinstance(value, tuple)
    ids = [parse_voter(item).node_id for item in value]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    return f"voter id {repeated[0]} appears twice" if repeated else None


def _protocol_map_check(value: object) -> str | None:
    assert isinstance(value, str)
    try:
        parse_protocol_map(value)
    except ValueError as err:
        return str(err)
    return None


LISTENERS = Check(_listeners_check, "NAME://host:port,...")
VOTERS = Check(_voters_check, "id@host:port,...")
HOST_PORTS = Check(_each(parse_host_port), "host:port,...")
PROTOCOL_MAP = Check(_protocol_map_check, "NAME:PROTOCOL,...")


@dataclass(frozen=True)
class ConfigDef:
    """One config: Kafka's name, type, default (typed), one-line doc, validator, update mode.

    ``update_mode`` is None for topic configs (always alterable per topic).

    ``synonyms`` is used by topic configs only: the broker configs that supply the topic's
    default, in Kafka's order of precedence, each with the factor that converts it to the
    topic config's unit (``log.retention.hours`` -> ``retention.ms`` is 3,600,000).
    """

    name: str
    type: ConfigType
    default: object
    doc: str
    validator: Validator | None = None
    update_mode: UpdateMode | None = None
    synonyms: tuple[tuple[str, int], ...] = ()

    @property
    def is_sensitive(self) -> bool:
        """Kafka hides PASSWORD values in DescribeConfigs."""
        return self.type is ConfigType.PASSWORD

    @property
    def valid_values(self) -> str:
        """Kafka's "Valid Values" column."""
        return self.validator.describe() if self.validator else ""

    def parse(self, text: str) -> object:
        """Typed, validated value of ``text``; InvalidConfigValueError (one line) if not."""
        try:
            value = parse_typed(self.type, text)
        except ValueError as err:
            raise self.invalid(text, str(err)) from None
        problem = self.validator(value) if self.validator else None
        if problem:
            raise self.invalid(text, problem)
        return value

    def invalid(self, text: str, problem: str) -> InvalidConfigValueError:
        """The one-line error for a bad value of this config (sensitive values not shown)."""
        shown = "(hidden)" if self.is_sensitive else repr(text)
        return InvalidConfigValueError(
            f"invalid value {shown} for {self.name}: {problem}", self.name
        )
