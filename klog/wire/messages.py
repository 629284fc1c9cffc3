"""Kafka protocol messages: one class per request, response, header and record schema.

Every declaration in ``klog.wire._schema`` (Kafka's JSON specs: the wire protocol, the
consumer-protocol Subscription/Assignment, the raft control records, the KRaft metadata
records and the ``__consumer_offsets`` / ``__transaction_state`` key/value records)
becomes a class named as in Kafka (``MetadataRequest``, ``OffsetCommitKey``,
``PartitionChangeRecord``...). Nested structs are classes too, reachable as attributes of
their message class by their Kafka type name (``MetadataResponse.MetadataResponseTopic``).
Fields are Kafka's names in snake_case; constructors are keyword-only with Kafka's
defaults.

The version is data: ``msg.encode(version)``, ``Cls.decode(buf, version)``. Codecs are
compiled per (message, version) on first use by ``klog.wire._codegen``. Types on the
wire map to Python as: integers -> int, bool -> bool, float64 -> float, uuid ->
uuid.UUID, string -> str, bytes -> bytes, records -> memoryview on decode (bytes, or a
file slice with an int ``size``, on encode), arrays -> list, structs -> their class;
nullable values may be None.

Decoding raises only ``DecodeError`` for bad bytes; encoding raises ``EncodeError`` for
values out of range or null where not nullable. Message instances are plain mutable
objects: do not share one between tasks while mutating it. Classes and registries are
immutable after import.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Self

from klog.wire import _schema
from klog.wire._codegen import compile_decoder, compile_encoder
from klog.wire._model import FieldModel, MessageModel, StructModel, build_message, has_records
from klog.wire.exceptions import DecodeError, EncodeError, UnsupportedVersionError

_MISSING = object()

# Anything a compiled decoder can raise on malformed input, besides DecodeError itself.
_DECODE_FAILURES = (
    IndexError,
    struct.error,
    ValueError,
    OverflowError,
    MemoryError,
    RecursionError,
)

_BYTES_LIKE = (bytes, bytearray, memoryview)


class Struct:
    """Base of every generated class: keyword constructor, equality, repr."""

    __slots__ = ()
    _FIELDS: tuple[FieldModel, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        # The per-class constructor is compiled on first use, so importing the package
        # does not pay for hundreds of classes nobody instantiates.
        init = _compile_init(type(self))
        init(self, **kwargs)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for attr in self.__slots__:
            value = getattr(self, attr, _MISSING)
            if isinstance(value, memoryview):
                parts.append(f"{attr}=<{value.nbytes} bytes>")
            else:
                parts.append(f"{attr}={value!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"


class Message(Struct):
    """A top-level schema: request, response, header or record.

    Class attributes: ``API_KEY`` (None for headers and data records; the record type for
    KRaft metadata records), ``VALID_VERSIONS`` and ``FLEXIBLE_VERSIONS`` (``range``s;
    flexible ranges are open-ended up to 32767, as in Kafka), ``SPEC_TYPE`` ("request",
    "response", "header", "data", "metadata").
    """

    __slots__ = ()
    API_KEY: int | None = None
    VALID_VERSIONS: range = range(0)
    FLEXIBLE_VERSIONS: range = range(0)
    SPEC_TYPE: str = ""
    _MODEL: MessageModel
    _DECODERS: dict[int, Callable[..., Any]]
    _ENCODERS: dict[int, Callable[..., Any]]
    _HAS_RECORDS: bool = False

    def encode(self, version: int) -> bytes:
        """The encoding at ``version``. Raises TypeError if a records field holds a slice."""
        out = self._encode_list(version)
        try:
            return b"".join(out)
        except TypeError as exc:
            name = type(self).__name__
            if any(not isinstance(chunk, _BYTES_LIKE) for chunk in out if hasattr(chunk, "size")):
                raise TypeError(f"{name} holds a file slice; use encode_parts()") from None
            raise TypeError(f"cannot encode {name} v{version}: {exc}") from None

    def encode_parts(self, version: int) -> list[Any]:
        """The encoding as bytes chunks, with each file slice of a records field as its own
        element right after its length prefix (consecutive bytes are joined)."""
        out = self._encode_list(version)
        if not self._HAS_RECORDS:
            return [b"".join(out)]
        parts: list[Any] = []
        start = 0
        for i, chunk in enumerate(out):
            if not isinstance(chunk, _BYTES_LIKE):
                if i > start:
                    parts.append(b"".join(out[start:i]))
                parts.append(chunk)
                start = i + 1
        if start < len(out):
            parts.append(b"".join(out[start:]))
        return parts

    def _encode_list(self, version: int) -> list[Any]:
        cls = type(self)
        encoder = cls._ENCODERS.get(version) or cls._compile(version, encoder=True)
        out: list[Any] = []
        try:
            encoder(self, out)
        except (struct.error, OverflowError, UnicodeEncodeError) as exc:
            raise EncodeError(f"cannot encode {cls.__name__} v{version}: {exc}") from None
        except AttributeError as exc:  # a value of the wrong type, e.g. str for a struct
            raise TypeError(f"cannot encode {cls.__name__} v{version}: {exc}") from None
        return out

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview, version: int) -> Self:
        """Decode exactly ``buf`` (trailing bytes are an error)."""
        message, end = cls.decode_from(buf, 0, version)
        if end != len(buf):
            raise DecodeError(
                f"{cls.__name__} v{version}: {len(buf) - end} trailing bytes after offset {end}"
            )
        return message

    @classmethod
    def decode_from(
        cls, buf: bytes | bytearray | memoryview, offset: int, version: int
    ) -> tuple[Self, int]:
        """Decode one message starting at ``offset``; returns it and the offset after it.

        ``records`` fields are memoryviews into ``buf`` (a bytearray ``buf`` cannot be
        resized while they live)."""
        decoder = cls._DECODERS.get(version) or cls._compile(version, encoder=False)
        if buf.__class__ is not bytes:
            buf = memoryview(buf).cast("B")
        try:
            return decoder(buf, offset)
        except DecodeError:
            raise
        except _DECODE_FAILURES as exc:
            raise DecodeError(
                f"{cls.__name__} v{version}: malformed or truncated ({exc})"
            ) from None

    @classmethod
    def _compile(cls, version: int, encoder: bool) -> Callable[..., Any]:
        if version not in cls.VALID_VERSIONS:
            valid = _range_text(cls.VALID_VERSIONS)
            raise UnsupportedVersionError(
                f"{cls.__name__} has no version {version} (valid: {valid})"
            )
        if encoder:
            fn = cls._ENCODERS[version] = compile_encoder(cls._MODEL, version)
        else:
            fn = cls._DECODERS[version] = compile_decoder(cls._MODEL, version)
        return fn


def _range_text(versions: range) -> str:
    if not versions:
        return "none"
    return f"{versions.start}-{versions.stop - 1}"


def _compile_init(cls: type[Struct]) -> Callable[..., None]:
    params: list[str] = []
    body: list[str] = []
    namespace: dict[str, Any] = {"_D": _MISSING}
    for i, field in enumerate(cls._FIELDS):
        attr = field.attr
        default = field.default_value()
        if default is list:
            params.append(f"{attr}=_D")
            body.append(f"self.{attr} = [] if {attr} is _D else {attr}")
        elif isinstance(default, StructModel):
            namespace[f"_C{i}"] = default.cls
            params.append(f"{attr}=_D")
            body.append(f"self.{attr} = _C{i}() if {attr} is _D else {attr}")
        else:
            namespace[f"_K{i}"] = default
            params.append(f"{attr}=_K{i}")
            body.append(f"self.{attr} = {attr}")
    signature = f"self, *, {', '.join(params)}" if params else "self"
    source = f"def __init__({signature}) -> None:\n    " + ("\n    ".join(body) or "pass") + "\n"
    exec(compile(source, f"<klog.wire {cls.__qualname__}.__init__>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return init


def _make_class(model: MessageModel) -> type[Message]:
    top = model.struct
    cls = type(
        model.name,
        (Message,),
        {
            "__slots__": tuple(f.attr for f in top.fields),
            "__module__": __name__,
            "__qualname__": model.name,
            "__doc__": f"Kafka {model.name} ({model.source}).",
            "_FIELDS": tuple(top.fields),
            "API_KEY": model.api_key,
            "VALID_VERSIONS": model.valid_versions,
            "FLEXIBLE_VERSIONS": model.flexible_versions,
            "SPEC_TYPE": model.spec_type,
            "_MODEL": model,
            "_DECODERS": {},
            "_ENCODERS": {},
            "_HAS_RECORDS": has_records(top),
        },
    )
    top.cls = cls
    for name, struct_model in model.structs.items():
        nested = type(
            name,
            (Struct,),
            {
                "__slots__": tuple(f.attr for f in struct_model.fields),
                "__module__": __name__,
                "__qualname__": f"{model.name}.{name}",
                "__doc__": f"Kafka {model.name}.{name} struct.",
                "_FIELDS": tuple(struct_model.fields),
            },
        )
        struct_model.cls = nested
        if hasattr(cls, name):
            raise ValueError(f"{model.name}: struct {name} clashes with an attribute")
        setattr(cls, name, nested)
    return cls


MESSAGE_CLASSES: dict[str, type[Message]] = {}
REQUESTS: dict[int, type[Message]] = {}
RESPONSES: dict[int, type[Message]] = {}
METADATA_RECORDS: dict[int, type[Message]] = {}

for _decl in _schema.SPECS:
    _cls = _make_class(build_message(_decl))
    MESSAGE_CLASSES[_cls.__name__] = _cls
    if _cls.SPEC_TYPE == "request":
        REQUESTS[_cls.API_KEY] = _cls  # type: ignore[index]
    elif _cls.SPEC_TYPE == "response":
        RESPONSES[_cls.API_KEY] = _cls  # type: ignore[index]
    elif _cls.SPEC_TYPE == "metadata":
        METADATA_RECORDS[_cls.API_KEY] = _cls  # type: ignore[index]
del _decl, _cls

globals().update(MESSAGE_CLASSES)

RequestHeader = MESSAGE_CLASSES["RequestHeader"]
ResponseHeader = MESSAGE_CLASSES["ResponseHeader"]

API_VERSIONS_KEY = 18
_CONTROLLED_SHUTDOWN_KEY = 7


def request_header_version(api_key: int, api_version: int) -> int:
    """Header version of a request: 2 in the API's flexible versions, else 1 (Kafka's
    rule, which also holds for versions newer than the ones we know). ControlledShutdown
    v0 uses header v0. Unknown APIs get 1, enough to read the correlation id."""
    cls = REQUESTS.get(api_key)
    if cls is None:
        return 1
    if api_key == _CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if api_version in cls.FLEXIBLE_VERSIONS else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """Header version of a response: 1 in flexible versions, else 0. ApiVersions
    responses always use v0 so that a client can parse one whatever version it asked."""
    if api_key == API_VERSIONS_KEY:
        return 0
    cls = RESPONSES.get(api_key)
    if cls is None:
        return 0
    return 1 if api_version in cls.FLEXIBLE_VERSIONS else 0
