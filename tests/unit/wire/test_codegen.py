"""The compiled codecs' fast paths and the bounds they rely on.

Lengths of bytes and records take inline paths for one- and two-byte varints (read with
the preceding fixed fields when there are some) and fall back to the general varint
reader; every size on both sides of those boundaries must round-trip, and a length or
count that runs past the buffer must be a DecodeError. Arrays of structs refuse counts
larger than the rest of the buffer could hold at the element's least encoded size
(``min_size``), so that bound must never exceed what a real element takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from klog.wire import MESSAGE_CLASSES, DecodeError, ProduceRequest, SaslAuthenticateRequest
from klog.wire._codegen import min_size
from klog.wire._model import FieldModel, StructModel

# Around the one/two/three-byte boundaries of the length varint (length + 1 when compact).
SIZES = [0, 1, 125, 126, 127, 128, 16381, 16382, 16383, 16384, 70000]


def produce(records: bytes | None) -> ProduceRequest:
    p = ProduceRequest
    return p(
        acks=-1,
        timeout_ms=5,
        topic_data=[
            p.TopicProduceData(
                name="t",
                partition_data=[p.PartitionProduceData(index=i, records=records) for i in range(3)],
            )
        ],
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("version", [3, 9])
def test_records_of_every_length_size_round_trip(size: int, version: int) -> None:
    # v9 reads the records length with the partition index; v3 has int32 lengths.
    records = bytes(range(256)) * (size // 256) + bytes(size % 256)
    message = produce(records)
    data = message.encode(version)
    decoded = ProduceRequest.decode(data, version)
    assert decoded == message
    assert [bytes(p.records) for p in decoded.topic_data[0].partition_data] == [records] * 3
    assert ProduceRequest.decode(produce(None).encode(version), version) == produce(None)


@pytest.mark.parametrize("size", SIZES)
def test_bytes_without_preceding_fixed_fields_round_trip(size: int) -> None:
    # The only field of the body: its length is read on its own, not with a fixed run.
    message = SaslAuthenticateRequest(auth_bytes=b"\xa5" * size)
    data = message.encode(2)
    assert SaslAuthenticateRequest.decode(data, 2) == message


def test_two_byte_lengths_running_past_the_buffer_are_decode_errors() -> None:
    data = produce(b"x" * 300).encode(9)
    # 300 + 1 as a varint is ad 02; claim 0x3fff - 1 bytes instead, and 130 - 1 bytes
    # more than remain in a cut-off buffer.
    at = data.index(b"\xad\x02")
    with pytest.raises(DecodeError, match=r"records: length 16382 .* runs past the end"):
        ProduceRequest.decode(data[:at] + b"\xff\x7f" + data[at + 2 :], 9)
    with pytest.raises(DecodeError):
        ProduceRequest.decode(data[: at + 100], 9)
    auth = SaslAuthenticateRequest(auth_bytes=b"a" * 300).encode(2)
    with pytest.raises(DecodeError, match=r"auth_bytes: length 16382 .* runs past the end"):
        SaslAuthenticateRequest.decode(b"\xff\x7f" + auth[2:], 2)
    # A length whose varint continues past the two-byte fast path.
    with pytest.raises(DecodeError):
        SaslAuthenticateRequest.decode(b"\xff\xff\xff\xff\x7f" + auth[2:], 2)


def test_non_minimal_two_byte_lengths_read_as_kafka_reads_them() -> None:
    # 80 00 is a two-byte zero: null (records are nullable; auth_bytes is not). 81 00 is
    # a two-byte one: empty. Kafka's readUnsignedVarint accepts both.
    data = produce(b"").encode(9)
    at = data.index(b"\x00\x00\x00\x00\x01\x00") + 4  # the first partition's length
    decoded = ProduceRequest.decode(data[:at] + b"\x80\x00" + data[at + 1 :], 9)
    assert decoded.topic_data[0].partition_data[0].records is None
    decoded = ProduceRequest.decode(data[:at] + b"\x81\x00" + data[at + 1 :], 9)
    assert bytes(decoded.topic_data[0].partition_data[0].records) == b""
    assert SaslAuthenticateRequest.decode(b"\x81\x00\x00", 2).auth_bytes == b""
    with pytest.raises(DecodeError, match="auth_bytes: invalid length -1"):
        SaslAuthenticateRequest.decode(b"\x80\x00\x00", 2)


def test_counts_the_buffer_cannot_hold_are_refused_before_decoding_elements() -> None:
    data = produce(b"").encode(9)
    # One partition takes at least 6 bytes (index, length, tags): three partitions
    # (count byte 4) fit in the 20 bytes left, ten (count byte 11) cannot, though ten
    # one-byte elements could.
    count_at = data.index(b"\x04\x00\x00\x00\x00\x01\x00")
    assert len(data) - count_at - 1 == 20
    with pytest.raises(DecodeError, match=r"partition_data: length 10 at offset \d+ runs past"):
        ProduceRequest.decode(data[:count_at] + b"\x0b" + data[count_at + 1 :], 9)


def minimal(struct_model: StructModel, version: int) -> Any:
    """An instance whose encoding is as short as the struct's can be at ``version``."""
    kwargs: dict[str, Any] = {}
    for field in struct_model.fields:
        if not field.present_in(version) or field.tagged_in(version):
            continue
        if field.nullable_in(version):
            kwargs[field.attr] = None
        elif field.is_array:
            kwargs[field.attr] = []
        elif field.type == "string":
            kwargs[field.attr] = ""
        elif field.type in ("bytes", "records"):
            kwargs[field.attr] = b""
        elif field.struct is not None:
            kwargs[field.attr] = minimal(field.struct, version)
    assert struct_model.cls is not None
    return struct_model.cls(**kwargs)


def struct_arrays(
    struct_model: StructModel, version: int, seen: frozenset[int] = frozenset()
) -> Iterator[list[FieldModel]]:
    """Every chain of struct-typed fields leading from the struct to an array of structs."""
    for field in struct_model.fields:
        if field.struct is None or not field.present_in(version) or id(field) in seen:
            continue
        if field.is_array:
            yield [field]
        for chain in struct_arrays(field.struct, version, seen | {id(field)}):
            yield [field, *chain]


def with_elements(top: StructModel, chain: list[FieldModel], version: int, count: int) -> Any:
    """A minimal message with one element along the chain and ``count`` at its end."""
    root = node = minimal(top, version)
    for i, field in enumerate(chain):
        assert field.struct is not None
        child = minimal(field.struct, version)
        if i == len(chain) - 1:
            setattr(node, field.attr, [child] * count)
        else:
            setattr(node, field.attr, [child] if field.is_array else child)
        node = child
    return root


ARRAY_CASES = [
    (name, version, chain)
    for name, cls in sorted(MESSAGE_CLASSES.items())
    for version in cls.VALID_VERSIONS
    for chain in struct_arrays(cls._MODEL.struct, version)
]


@pytest.mark.parametrize(
    ("name", "version", "chain"),
    ARRAY_CASES,
    ids=[f"{n}-v{v}-{'.'.join(f.attr for f in c)}" for n, v, c in ARRAY_CASES],
)
def test_min_size_is_what_a_minimal_element_takes(name: str, version: int, chain) -> None:
    cls = MESSAGE_CLASSES[name]
    one, two = (with_elements(cls._MODEL.struct, chain, version, n) for n in (1, 2))
    data = two.encode(version)
    element = len(data) - len(one.encode(version))
    assert min_size(chain[-1].struct, version, cls.FLEXIBLE_VERSIONS) == element
    # Elements of exactly that size at the very end still pass the count check.
    assert cls.decode(data, version) == two


def test_the_walk_finds_nested_struct_arrays() -> None:
    chains = {
        ".".join(f.attr for f in chain)
        for name, version, chain in ARRAY_CASES
        if (name, version) == ("ProduceRequest", 9)
    }
    assert chains == {"topic_data", "topic_data.partition_data"}
