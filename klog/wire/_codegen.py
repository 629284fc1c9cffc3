"""Compile specialised encode/decode functions for one message at one version.

For a ``MessageModel`` and a version this writes the Python source of two functions and
``exec``s it once:

* ``decode(buf, pos) -> (message, end)``: nested structs and arrays are inlined, each run
  of consecutive fixed-width fields is one precompiled ``struct`` unpack that also reads
  the first byte(s) of the compact length after it, one-byte varints (almost every
  length) and two-byte lengths of bytes/records take inline fast paths, the elements of
  a struct array are allocated in one go and then filled in, and every length or count
  is checked against the bytes left before anything is sliced or allocated (a count
  against the element's least encoded size, ``min_size``). It raises ``DecodeError`` for
  malformed lengths; truncation surfaces as ``IndexError`` / ``struct.error``, which the
  caller (``klog.wire.messages.Message.decode``) turns into ``DecodeError``.
* ``encode(message, out)``: appends the encoding to the list ``out``, as bytes-like
  chunks; a ``records`` field holding a file slice (an object with an int ``size`` that
  is not bytes-like) is appended as the slice object itself after its length prefix.

Semantics follow Kafka's generator (``MessageDataGenerator``): fields outside their
versions take their defaults, tagged fields are written only when they differ from their
default and read in any order, unknown tags are skipped, nullable structs carry an int8
(-1 = null) marker, or a varint (0 = null) when tagged. Pure functions; the compiled
functions are stateless and shareable.
"""

from __future__ import annotations

import itertools
import struct
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from klog.wire._model import FIXED_TYPES, FieldModel, MessageModel, StructModel, has_records
from klog.wire.exceptions import DecodeError, EncodeError
from klog.wire.primitives import (
    INT16,
    INT32,
    SMALL_UVARINTS,
    decode_unsigned_varint,
    encode_unsigned_varint,
    skip_tagged_fields,
)

# Arrays of fixed-width elements shorter than this use a prebuilt struct per length.
_SMALL_ARRAY = 32
_MAX_STRING = 0x7FFF


def _fixed_array_codecs(code: str) -> dict[str, tuple[Any, ...]]:
    """Prebuilt structs for short arrays of one fixed-width type.

    "compact"[b] reads a compact array whose one-byte count prefix is b (b - 1 elements)
    including that byte; "int32"[n] reads an int32-counted array of n elements including
    its count; "pack"[n] packs n elements."""
    small = range(_SMALL_ARRAY)
    return {
        "compact": (None, *(struct.Struct(f">x{n}{code}").unpack_from for n in small)),
        "int32": tuple(struct.Struct(f">4x{n}{code}").unpack_from for n in small),
        "pack": tuple(struct.Struct(f">{n}{code}").pack for n in small),
    }


_ARRAY_CODECS = {code: _fixed_array_codecs(code) for code, _ in FIXED_TYPES.values()}


def _fixed_array(buf, pos: int, code: str, size: int, compact: bool, nullable: bool, path: str):
    """The general case of reading an array of fixed-width elements."""
    if compact:
        n, pos = decode_unsigned_varint(buf, pos)
        n -= 1
    else:
        if pos + 4 > len(buf):
            raise DecodeError(f"{path}: truncated array count at offset {pos}")
        (n,) = INT32.unpack_from(buf, pos)
        pos += 4
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise _bad_length(path, n)
    end = pos + size * n
    if end > len(buf):
        raise _overrun(path, n, pos, len(buf))
    return list(struct.unpack_from(f">{n}{code}", buf, pos)), end


def _skip_tags_at(buf, pos: int) -> int:
    count, pos = decode_unsigned_varint(buf, pos)
    return skip_tagged_fields(buf, pos, count)


def _overrun(path: str, length: int, pos: int, size: int) -> DecodeError:
    return DecodeError(
        f"{path}: length {length} at offset {pos} runs past the end of the {size}-byte buffer"
    )


def _bad_length(path: str, length: int) -> DecodeError:
    return DecodeError(f"{path}: invalid length {length}")


def _bad_size(path: str, length: int, pos: int, size: int) -> DecodeError:
    """The error for a length or count that failed the generated range check."""
    if length < 0:
        return _bad_length(path, length)
    return _overrun(path, length, pos, size)


def _bad_tag_size(path: str, tag: int) -> DecodeError:
    return DecodeError(f"{path}: tagged field {tag} does not fill its declared size")


def _not_nullable(path: str) -> EncodeError:
    return EncodeError(f"{path} is None, but it is not nullable in this version")


def _too_long(path: str, length: int) -> EncodeError:
    return EncodeError(f"{path}: string of {length} bytes is longer than {_MAX_STRING}")


def _uuid_at(buf, pos: int) -> uuid.UUID:
    raw = buf[pos : pos + 16]
    if len(raw) != 16:
        raise DecodeError(f"truncated uuid at offset {pos}")
    return uuid.UUID(bytes=bytes(raw))


def _uuid_array(buf, pos: int, count: int) -> tuple[list[uuid.UUID], int]:
    if pos + 16 * count > len(buf):
        raise DecodeError(f"uuid array at offset {pos} runs past the end of the buffer")
    out = [uuid.UUID(bytes=bytes(buf[p : p + 16])) for p in range(pos, pos + 16 * count, 16)]
    return out, pos + 16 * count


_BYTES_LIKE = (bytes, bytearray, memoryview)

# The length a two-byte compact length encodes (its varint minus one) is
# first + _LEN2[second] (first > 128, second < 128): one lookup and one addition instead
# of masking and shifting both bytes.
_LEN2 = tuple((b << 7) - 129 for b in range(128))

_BASE_GLOBALS: dict[str, Any] = {
    "_new": object.__new__,
    "_map": map,
    "_repeat": itertools.repeat,
    "_str": str,
    "_bytes": bytes,
    "_mv": memoryview,
    "_isinstance": isinstance,
    "_BYTES_LIKE": _BYTES_LIKE,
    "_uvarint": decode_unsigned_varint,
    "_uvb": encode_unsigned_varint,
    "_UV": SMALL_UVARINTS,
    "_LEN2": _LEN2,
    "_i16": INT16.unpack_from,
    "_i32": INT32.unpack_from,
    "_p16": INT16.pack,
    "_p32": INT32.pack,
    "_pack": struct.pack,
    "_skip_tags_at": _skip_tags_at,
    "_fixed_array": _fixed_array,
    "_uuid_at": _uuid_at,
    "_uuid_array": _uuid_array,
    "_overrun": _overrun,
    "_bad_length": _bad_length,
    "_bad_size": _bad_size,
    "_bad_tag_size": _bad_tag_size,
    "_not_nullable": _not_nullable,
    "_too_long": _too_long,
}


class _Source:
    """Lines of generated code plus the constants they refer to."""

    def __init__(self, message: MessageModel, version: int) -> None:
        self.message = message
        self.version = version
        self.flexible = version in message.flexible_versions
        self.lines: list[str] = []
        self.globals: dict[str, Any] = dict(_BASE_GLOBALS)
        self._consts: dict[int, str] = {}
        self._count = 0

    def var(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value: Any, prefix: str = "K") -> str:
        """An expression for ``value``: a literal for simple scalars, else a global."""
        if isinstance(value, int | str | bytes | type(None)) or (
            isinstance(value, float) and value == value and abs(value) != float("inf")
        ):
            return repr(value)
        key = id(value)
        if key not in self._consts:
            name = self.var(prefix)
            self.globals[name] = value
            self._consts[key] = name
        return self._consts[key]

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, name: str) -> Callable[..., Any]:
        code = "\n".join(self.lines) + "\n"
        filename = f"<klog.wire {self.message.name} v{self.version} {name}>"
        exec(compile(code, filename, "exec"), self.globals)
        return self.globals[name]

    def default_expr(self, field: FieldModel) -> str:
        value = field.default_value()
        if value is list:
            return "[]"
        if isinstance(value, StructModel):
            return f"{self.const(value.cls, 'C')}()"
        return self.const(value)


# --------------------------------------------------------------------------- decoding


def compile_decoder(message: MessageModel, version: int) -> Callable[..., Any]:
    src = _Source(message, version)
    src.add(0, "def decode(buf, pos):")
    src.add(1, "blen = len(buf)")
    if has_records(message.struct):
        src.add(1, "view = _mv(buf)")
    _decode_struct(src, message.struct, "o", 1, message.name)
    src.add(1, "return o, pos")
    return src.compile("decode")


class _Peek(NamedTuple):
    """Bytes of a compact length already read by the preceding fixed run.

    ``names`` are the variables holding them; ``size`` is the run's size. With one name
    the generated code has moved ``pos`` past the byte; with two it has not moved it."""

    names: tuple[str, ...]
    size: int


def _peek_bytes(field: FieldModel, version: int, message_flexible: range) -> int:
    """How many bytes of the compact length starting the field the preceding fixed run
    reads: 0 (not a compact length), 1, or 2 for bytes and records, whose lengths are
    often two-byte varints. Reading a byte beyond a one-byte length is safe because in
    flexible versions every struct ends with its tag section, so at least one more byte
    follows in any well-formed message (and a truncated one fails either way)."""
    if not field.compact_in(version, message_flexible):
        return 0
    if field.type in ("bytes", "records"):
        return 2
    if field.type == "string" or (field.is_array and field.struct is not None):
        return 1
    return 0


def _decode_struct(
    src: _Source, struct_model: StructModel, var: str, ind: int, path: str, new: bool = True
) -> None:
    """Decode into ``var``: a new instance, or with ``new=False`` one already allocated."""
    version = src.version
    if new:
        src.add(ind, f"{var} = _new({src.const(struct_model.cls, 'C')})")
    run: list[FieldModel] = []

    def flush(peek: int) -> _Peek | None:
        """Emit the run's unpack; with ``peek`` it also reads that many bytes after it
        (the start of a compact length or the tag count) and returns them as a _Peek."""
        if not run:
            return None
        fmt = ">" + "".join(FIXED_TYPES[f.type][0] for f in run)
        unpack = src.const(struct.Struct(fmt + "B" * peek).unpack_from, "S")
        targets = [f"{var}.{f.attr}" for f in run]
        run.clear()
        peeked = _Peek(tuple(src.var("n") for _ in range(peek)), struct.calcsize(fmt))
        src.add(ind, f"{', '.join([*targets, *peeked.names])}, = {unpack}(buf, pos)")
        if len(peeked.names) < 2:
            # A two-byte peek leaves pos at the run's start: how far to move depends on
            # the length's size (see _decode_sized).
            src.add(ind, f"pos += {peeked.size + len(peeked.names)}")
        return peeked if peek else None

    tagged: list[FieldModel] = []
    for field in struct_model.fields:
        target = f"{var}.{field.attr}"
        if not field.present_in(version) or field.tagged_in(version):
            src.add(ind, f"{target} = {src.default_expr(field)}")
            if field.tagged_in(version):
                tagged.append(field)
        elif field.type in FIXED_TYPES:
            run.append(field)
        else:
            peeked = flush(_peek_bytes(field, version, src.message.flexible_versions))
            compact = field.compact_in(version, src.message.flexible_versions)
            nullable = field.nullable_in(version)
            field_path = f"{path}.{field.attr}"
            _decode_value(src, field, target, ind, field_path, compact, nullable, peek=peeked)
    peeked = flush(1 if src.flexible else 0)
    if src.flexible:
        _decode_tagged(src, tagged, var, ind, path, peeked.names[0] if peeked else None)


def _read_length(
    src: _Source, ind: int, compact: bool, int16: bool, peek: _Peek | None = None
) -> str:
    """Emit code reading a length or count; returns its variable name.

    Compact lengths are left as read (length + 1, 0 = null) to save an operation; callers
    use ``_bias`` to interpret them. ``peek`` holds the first byte, if the preceding fixed
    run already read it."""
    if peek is not None:
        first = peek.names[0]
        src.add(ind, f"if {first} > 127: {first}, pos = _uvarint(buf, pos - 1)")
        return first
    n = src.var("n")
    if compact:
        src.add(ind, f"{n} = buf[pos]")
        src.add(ind, f"if {n} < 128: pos += 1")
        src.add(ind, f"else: {n}, pos = _uvarint(buf, pos)")
    else:
        src.add(ind, f"{n}, = {'_i16' if int16 else '_i32'}(buf, pos)")
        src.add(ind, f"pos += {2 if int16 else 4}")
    return n


def _bias(compact: bool) -> str:
    return " - 1" if compact else ""


def _open_length_check(src: _Source, ind: int, n: str, compact: bool, unit: int = 1) -> None:
    """``if`` the length/count fits in the rest of the buffer (and is not null).

    For a count, ``unit`` is the least number of bytes one element takes."""
    # Counts the buffer cannot hold are refused before anything is allocated (Kafka does
    # the same), so a hostile count costs no more memory than the bytes that carry it.
    room = "blen - pos" if unit == 1 else f"(blen - pos) // {unit}"
    if compact:
        src.add(ind, f"if 0 < {n} <= {room} + 1:")
    else:
        src.add(ind, f"if 0 <= {n} <= {room}:")


def min_size(struct_model: StructModel, version: int, message_flexible: range) -> int:
    """The fewest bytes an encoding of the struct takes at ``version``."""
    size = 1 if version in message_flexible else 0  # the tag section's count
    for field in struct_model.fields:
        if not field.present_in(version) or field.tagged_in(version):
            continue
        if field.type in FIXED_TYPES:
            size += FIXED_TYPES[field.type][1]
        elif field.type == "uuid":
            size += 16
        elif field.struct is not None and not field.is_array:
            if field.nullable_in(version):
                size += 1  # the null marker
            else:
                size += min_size(field.struct, version, message_flexible)
        elif field.compact_in(version, message_flexible):
            size += 1
        else:
            size += 2 if field.type == "string" else 4
    return size


def _decode_null_branch(
    src: _Source, ind: int, n: str, target: str, compact: bool, nullable: bool, path: str
) -> None:
    if nullable:
        src.add(ind, f"elif {n} == {0 if compact else -1}:")
        src.add(ind + 1, f"{target} = None")
    src.add(ind, "else:")
    src.add(ind + 1, f"raise _bad_size({path!r}, {n}{_bias(compact)}, pos, blen)")


def _decode_sized(
    src: _Source,
    kind: str,
    target: str,
    ind: int,
    path: str,
    compact: bool,
    nullable: bool,
    peek: _Peek | None = None,
) -> None:
    """string, bytes or records."""
    end = src.var("end")
    if compact and kind != "string":
        # A two-byte length (127 to 16382 bytes, typical of records) is not null, so it
        # gets a branch of its own that goes straight to the bounds check and the slice.
        # A first byte of 128 is left to the general path: 80 00 is a (non-minimal)
        # null, which Kafka accepts.
        if peek is not None:
            n, second = peek.names
            src.add(ind, f"if {n} > 128 and {second} < 128:")
            src.add(ind + 1, f"pos += {peek.size + 2}")
        else:
            n, second = src.var("n"), src.var("b")
            src.add(ind, f"{n} = buf[pos]")
            src.add(ind, f"if {n} > 128 and ({second} := buf[pos + 1]) < 128:")
            src.add(ind + 1, "pos += 2")
        src.add(ind + 1, f"{end} = pos + {n} + _LEN2[{second}]")
        src.add(ind + 1, f"if {end} > blen: raise _overrun({path!r}, {end} - pos, pos, blen)")
        _take_sized(src, kind, target, ind + 1, end)
        src.add(ind, "else:")
        ind += 1
        skip = peek.size if peek is not None else 0
        src.add(ind, f"if {n} < 128: pos += {skip + 1}")
        src.add(ind, f"else: {n}, pos = _uvarint(buf, {f'pos + {skip}' if skip else 'pos'})")
    else:
        n = _read_length(src, ind, compact, kind == "string", peek=peek)
    if compact:
        # An unsigned varint is never negative, so 0 (null) is the only value below the
        # range and one comparison against the buffer's end is the whole bounds check.
        src.add(ind, f"if {n}:")
        src.add(ind + 1, f"{end} = pos + {n} - 1")
        src.add(ind + 1, f"if {end} > blen: raise _overrun({path!r}, {n} - 1, pos, blen)")
        if kind == "string":
            src.add(ind + 1, f"if {n} > {_MAX_STRING + 1}: raise _bad_length({path!r}, {n} - 1)")
        _take_sized(src, kind, target, ind + 1, end)
        src.add(ind, "else:")
        src.add(ind + 1, f"{target} = None" if nullable else f"raise _bad_length({path!r}, -1)")
    else:
        _open_length_check(src, ind, n, compact)
        src.add(ind + 1, f"{end} = pos + {n}")
        _take_sized(src, kind, target, ind + 1, end)
        _decode_null_branch(src, ind, n, target, compact, nullable, path)


def _take_sized(src: _Source, kind: str, target: str, ind: int, end: str) -> None:
    """The value of a bounds-checked string, bytes or records field ending at ``end``."""
    if kind == "string":
        src.add(ind, f"{target} = _str(buf[pos:{end}], 'utf-8')")
    elif kind == "bytes":
        src.add(ind, f"{target} = _bytes(buf[pos:{end}])")
    else:
        src.add(ind, f"{target} = view[pos:{end}]")
    src.add(ind, f"pos = {end}")


def _decode_value(
    src: _Source,
    field: FieldModel,
    target: str,
    ind: int,
    path: str,
    compact: bool,
    nullable: bool,
    tagged: bool = False,
    peek: _Peek | None = None,
) -> None:
    kind = field.type
    if kind in FIXED_TYPES:
        code, size = FIXED_TYPES[kind]
        unpack = src.const(struct.Struct(">" + code).unpack_from, "S")
        src.add(ind, f"{target}, = {unpack}(buf, pos)")
        src.add(ind, f"pos += {size}")
    elif kind == "uuid":
        src.add(ind, f"{target} = _uuid_at(buf, pos)")
        src.add(ind, "pos += 16")
    elif kind in ("string", "bytes", "records"):
        _decode_sized(src, kind, target, ind, path, compact, nullable, peek)
    elif field.is_array:
        _decode_array(src, field, target, ind, path, compact, nullable, peek)
    else:
        _decode_struct_field(src, field, target, ind, path, nullable, tagged)


def _decode_array(
    src: _Source,
    field: FieldModel,
    target: str,
    ind: int,
    path: str,
    compact: bool,
    nullable: bool,
    peek: _Peek | None = None,
) -> None:
    element = field.element_type
    if element in FIXED_TYPES:
        _decode_fixed_array(src, element, target, ind, path, compact, nullable)
        return
    n = _read_length(src, ind, compact, int16=False, peek=peek)
    count = f"{n}{_bias(compact)}"
    if field.struct is not None:
        unit = max(1, min_size(field.struct, src.version, src.message.flexible_versions))
        _open_length_check(src, ind, n, compact, unit)
        # The elements are allocated in one C-level loop and then filled in: cheaper than
        # allocating and appending each one, and the count check above bounds the memory.
        items, item = src.var("items"), src.var("o")
        cls = src.const(field.struct.cls, "C")
        src.add(ind + 1, f"{items} = [*_map(_new, _repeat({cls}, {count}))]")
        src.add(ind + 1, f"for {item} in {items}:")
        _decode_struct(src, field.struct, item, ind + 2, f"{path}[]", new=False)
        src.add(ind + 1, f"{target} = {items}")
    elif element == "uuid":
        _open_length_check(src, ind, n, compact)
        src.add(ind + 1, f"{target}, pos = _uuid_array(buf, pos, {count})")
    else:
        _open_length_check(src, ind, n, compact)
        items, append, item = src.var("items"), src.var("append"), src.var("x")
        src.add(ind + 1, f"{items} = []")
        src.add(ind + 1, f"{append} = {items}.append")
        src.add(ind + 1, f"for _ in range({count}):")
        _decode_sized(src, element, item, ind + 2, f"{path}[]", compact, nullable=False)
        src.add(ind + 2, f"{append}({item})")
        src.add(ind + 1, f"{target} = {items}")
    _decode_null_branch(src, ind, n, target, compact, nullable, path)


def _decode_fixed_array(
    src: _Source, element: str, target: str, ind: int, path: str, compact: bool, nullable: bool
) -> None:
    # Short arrays (the usual replica lists) are one unpack that also skips the count;
    # struct bounds-checks it. Everything else goes through _fixed_array.
    code, size = FIXED_TYPES[element]
    count = src.var("n")
    if compact:
        table = src.const(_ARRAY_CODECS[code]["compact"], "AC")
        src.add(ind, f"{count} = buf[pos]")
        src.add(ind, f"if 0 < {count} <= {_SMALL_ARRAY}:")
        src.add(ind + 1, f"{target} = [*{table}[{count}](buf, pos)]")
        src.add(ind + 1, f"pos += {size} * {count} + {1 - size}")
    else:
        table = src.const(_ARRAY_CODECS[code]["int32"], "AI")
        src.add(ind, f"{count}, = _i32(buf, pos)")
        src.add(ind, f"if 0 <= {count} < {_SMALL_ARRAY}:")
        src.add(ind + 1, f"{target} = [*{table}[{count}](buf, pos)]")
        src.add(ind + 1, f"pos += {size} * {count} + 4")
    src.add(ind, "else:")
    args = f"{code!r}, {size}, {compact}, {nullable}, {path!r}"
    src.add(ind + 1, f"{target}, pos = _fixed_array(buf, pos, {args})")


def _decode_struct_field(
    src: _Source, field: FieldModel, target: str, ind: int, path: str, nullable: bool, tagged: bool
) -> None:
    assert field.struct is not None
    item = src.var("o")
    if not nullable:
        _decode_struct(src, field.struct, item, ind, path)
        src.add(ind, f"{target} = {item}")
        return
    marker = src.var("m")
    if tagged:
        src.add(ind, f"{marker}, pos = _uvarint(buf, pos)")
        src.add(ind, f"if {marker} == 0:")
    else:
        # int8 marker: negative (high bit set) means null.
        src.add(ind, f"{marker} = buf[pos]")
        src.add(ind, "pos += 1")
        src.add(ind, f"if {marker} > 127:")
    src.add(ind + 1, f"{target} = None")
    src.add(ind, "else:")
    _decode_struct(src, field.struct, item, ind + 1, path)
    src.add(ind + 1, f"{target} = {item}")


def _decode_tagged(
    src: _Source, tagged: list[FieldModel], var: str, ind: int, path: str, first: str | None
) -> None:
    # Almost always the section is empty: one zero byte, possibly already read into first.
    start = "pos - 1" if first else "pos"
    src.add(ind, f"if {first or 'buf[pos]'}:")
    body = ind + 1
    if not tagged:
        src.add(body, f"pos = _skip_tags_at(buf, {start})")
    else:
        count, tag, size, end = src.var("n"), src.var("tag"), src.var("size"), src.var("end")
        src.add(body, f"{count}, pos = _uvarint(buf, {start})")
        src.add(body, f"for _ in range({count}):")
        loop = body + 1
        src.add(loop, f"{tag}, pos = _uvarint(buf, pos)")
        src.add(loop, f"{size}, pos = _uvarint(buf, pos)")
        src.add(loop, f"{end} = pos + {size}")
        src.add(loop, f"if {end} > blen: raise _overrun({path!r}, {size}, pos, blen)")
        for i, field in enumerate(sorted(tagged, key=lambda f: f.tag or 0)):
            src.add(loop, f"{'if' if i == 0 else 'elif'} {tag} == {field.tag}:")
            _decode_value(
                src,
                field,
                f"{var}.{field.attr}",
                loop + 1,
                f"{path}.{field.attr}",
                compact=True,
                nullable=field.nullable_in(src.version),
                tagged=True,
            )
            src.add(loop + 1, f"if pos != {end}: raise _bad_tag_size({path!r}, {tag})")
        src.add(loop, "else:")
        src.add(loop + 1, f"pos = {end}")
    if not first:
        src.add(ind, "else:")
        src.add(body, "pos += 1")


# --------------------------------------------------------------------------- encoding


def compile_encoder(message: MessageModel, version: int) -> Callable[..., Any]:
    src = _Source(message, version)
    src.add(0, "def encode(o, out):")
    src.add(1, "a = out.append")
    _encode_struct(src, message.struct, "o", 1, "a", message.name)
    return src.compile("encode")


def _encode_struct(
    src: _Source, struct_model: StructModel, var: str, ind: int, app: str, path: str
) -> None:
    version = src.version
    run: list[FieldModel] = []

    def flush(empty_tags: bool = False) -> bool:
        """Emit the run's pack; with ``empty_tags`` it also writes the zero tag count
        (as a pad byte). Returns whether it did."""
        if not run:
            return False
        fmt = ">" + "".join(FIXED_TYPES[f.type][0] for f in run) + ("x" if empty_tags else "")
        pack = src.const(struct.Struct(fmt).pack, "P")
        src.add(ind, f"{app}({pack}({', '.join(f'{var}.{f.attr}' for f in run)}))")
        run.clear()
        return empty_tags

    tagged: list[FieldModel] = []
    for field in struct_model.fields:
        if not field.present_in(version):
            continue
        if field.tagged_in(version):
            tagged.append(field)
        elif field.type in FIXED_TYPES:
            run.append(field)
        else:
            flush()
            value = src.var("x")
            src.add(ind, f"{value} = {var}.{field.attr}")
            _encode_value(
                src,
                field,
                value,
                ind,
                app,
                f"{path}.{field.attr}",
                compact=field.compact_in(version, src.message.flexible_versions),
                nullable=field.nullable_in(version),
            )
    if flush(empty_tags=src.flexible and not tagged):
        return
    if src.flexible:
        _encode_tagged(src, tagged, var, ind, app, path)


def _length_prefix(src: _Source, ind: int, app: str, n: str, compact: bool, int16: bool) -> None:
    if compact:
        src.add(ind, f"{app}(_UV[{n} + 1] if {n} < 127 else _uvb({n} + 1))")
    else:
        src.add(ind, f"{app}({'_p16' if int16 else '_p32'}({n}))")


def _encode_null(src: _Source, ind: int, app: str, value: str, path: str, null: bytes | None):
    """Open an if/else on None; returns with the else branch open at ind + 1."""
    src.add(ind, f"if {value} is None:")
    if null is None:
        src.add(ind + 1, f"raise _not_nullable({path!r})")
    else:
        src.add(ind + 1, f"{app}({null!r})")
    src.add(ind, "else:")


def _null_marker(compact: bool, int16: bool) -> bytes:
    if compact:
        return b"\x00"
    return b"\xff\xff" if int16 else b"\xff\xff\xff\xff"


def _encode_sized(
    src: _Source,
    kind: str,
    value: str,
    ind: int,
    app: str,
    path: str,
    compact: bool,
    nullable: bool,
) -> None:
    int16 = kind == "string"
    _encode_null(src, ind, app, value, path, _null_marker(compact, int16) if nullable else None)
    body = ind + 1
    n = src.var("n")
    if kind == "string":
        data = src.var("b")
        src.add(body, f"{data} = {value}.encode()")
        src.add(body, f"{n} = len({data})")
        src.add(body, f"if {n} > {_MAX_STRING}: raise _too_long({path!r}, {n})")
        _length_prefix(src, body, app, n, compact, int16)
        src.add(body, f"{app}({data})")
    elif kind == "bytes":
        src.add(body, f"{n} = len({value})")
        _length_prefix(src, body, app, n, compact, int16)
        src.add(body, f"{app}({value})")
    else:
        # records: bytes-like, or a file slice that the caller transmits itself.
        src.add(body, f"if _isinstance({value}, _BYTES_LIKE):")
        src.add(body + 1, f"{n} = {value}.nbytes if {value}.__class__ is _mv else len({value})")
        src.add(body, "else:")
        src.add(body + 1, f"{n} = {value}.size")
        _length_prefix(src, body, app, n, compact, int16)
        src.add(body, f"{app}({value})")


def _encode_value(
    src: _Source,
    field: FieldModel,
    value: str,
    ind: int,
    app: str,
    path: str,
    compact: bool,
    nullable: bool,
    tagged: bool = False,
) -> None:
    kind = field.type
    if kind in FIXED_TYPES:
        pack = src.const(struct.Struct(">" + FIXED_TYPES[kind][0]).pack, "P")
        src.add(ind, f"{app}({pack}({value}))")
    elif kind == "uuid":
        src.add(ind, f"{app}({value}.bytes)")
    elif kind in ("string", "bytes", "records"):
        _encode_sized(src, kind, value, ind, app, path, compact, nullable)
    elif field.is_array:
        _encode_array(src, field, value, ind, app, path, compact, nullable)
    else:
        assert field.struct is not None
        if nullable:
            null = b"\x00" if tagged else b"\xff"
            _encode_null(src, ind, app, value, path, null)
            src.add(ind + 1, f"{app}(b'\\x01')")
            _encode_struct(src, field.struct, value, ind + 1, app, path)
        else:
            _encode_null(src, ind, app, value, path, None)
            _encode_struct(src, field.struct, value, ind + 1, app, path)


def _encode_array(
    src: _Source,
    field: FieldModel,
    value: str,
    ind: int,
    app: str,
    path: str,
    compact: bool,
    nullable: bool,
) -> None:
    element = field.element_type
    _encode_null(src, ind, app, value, path, _null_marker(compact, False) if nullable else None)
    body = ind + 1
    n = src.var("n")
    src.add(body, f"{n} = len({value})")
    _length_prefix(src, body, app, n, compact, int16=False)
    if element in FIXED_TYPES:
        code = FIXED_TYPES[element][0]
        packers = src.const(_ARRAY_CODECS[code]["pack"], "AP")
        src.add(body, f"if {n} < {_SMALL_ARRAY}: {app}({packers}[{n}](*{value}))")
        src.add(body, f"else: {app}(_pack('>%d{code}' % {n}, *{value}))")
        return
    item = src.var("e")
    src.add(body, f"for {item} in {value}:")
    if element == "uuid":
        src.add(body + 1, f"{app}({item}.bytes)")
    elif field.struct is not None:
        _encode_null(src, body + 1, app, item, f"{path}[]", None)
        _encode_struct(src, field.struct, item, body + 2, app, f"{path}[]")
    else:
        _encode_sized(src, element, item, body + 1, app, f"{path}[]", compact, nullable=False)


def _encode_tagged(
    src: _Source, tagged: list[FieldModel], var: str, ind: int, app: str, path: str
) -> None:
    if not tagged:
        src.add(ind, f"{app}(b'\\x00')")
        return
    chunks = src.var("tags")
    src.add(ind, f"{chunks} = []")
    for field in sorted(tagged, key=lambda f: f.tag or 0):
        value = src.var("x")
        src.add(ind, f"{value} = {var}.{field.attr}")
        default = field.default_value()
        if default is None:
            src.add(ind, f"if {value} is not None:")
        elif default is list:
            src.add(ind, f"if {value} != []:")
        elif isinstance(default, StructModel):
            assert default.cls is not None
            src.add(ind, f"if {value} != {src.const(default.cls(), 'D')}:")
        else:
            src.add(ind, f"if {value} != {src.const(default)}:")
        body = ind + 1
        parts, append = src.var("parts"), src.var("a")
        src.add(body, f"{parts} = []")
        src.add(body, f"{append} = {parts}.append")
        _encode_value(
            src,
            field,
            value,
            body,
            append,
            f"{path}.{field.attr}",
            compact=True,
            nullable=field.nullable_in(src.version),
            tagged=True,
        )
        data = src.var("d")
        src.add(body, f"{data} = b''.join({parts})")
        tag_bytes = encode_unsigned_varint(field.tag or 0)
        src.add(body, f"{chunks}.append({tag_bytes!r} + _uvb(len({data})) + {data})")
    src.add(ind, f"{app}(_uvb(len({chunks})))")
    src.add(ind, f"{app}(b''.join({chunks}))")
