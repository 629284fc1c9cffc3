"""Hostile bytes never raise anything but DecodeError (or ProtocolError on a connection).

Seeds are rich, valid encodings of every schema and version (every field set, arrays of
two; the builder is ``full_instance`` from test_messages.py). Each seed is truncated at
every point, extended, and mutated: bytes replaced by 0x00 / 0x7f / 0x80 / 0xff, int32
words replaced by negative and huge lengths, over-long varints inserted. Decoding must
either succeed, giving a message whose encoding decodes and re-encodes to itself, or raise
``DecodeError`` -- never IndexError, struct.error, UnicodeDecodeError, MemoryError, a hang
on a huge count, etc. Hypothesis then drives random mutation sequences over the request
schemas, and random byte streams through ``ServerConnection``.
"""

from __future__ import annotations

import importlib.util
import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog.wire import MESSAGE_CLASSES, REQUESTS, DecodeError, ProtocolError
from klog.wire.connection import CLOSED, NEED_DATA, ServerConnection


def _sibling(name: str):
    # Test modules are imported by path (--import-mode=importlib), so load the builder
    # the same way instead of keeping a second copy of it here.
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_klog_wire_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


full_instance = _sibling("test_messages").full_instance

BYTE_VALUES = (0x00, 0x7F, 0x80, 0xFF)
WORDS = (b"\xff\xff\xff\xff", b"\x80\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x00\x10\x00")
INSERTS = (b"\xff\xff\xff\xff\xff\xff", b"\x80\x80\x80\x80\x80\x80\x01", b"\xff\xff", b"\x01")


def seed(cls: type, version: int) -> bytes:
    return full_instance(cls, version, itertools.count(1)).encode(version)


def check(cls: type, version: int, data: bytes) -> None:
    try:
        message = cls.decode(data, version)
    except DecodeError:
        return
    # Whatever is accepted has a canonical encoding (compared as bytes: NaN != NaN).
    again = message.encode(version)
    assert cls.decode(again, version).encode(version) == again


def positions(length: int, limit: int) -> range:
    return range(0, length, max(1, length // limit))


def mutations(data: bytes, limit: int):
    for cut in positions(len(data), limit):
        yield data[:cut]
    yield data + b"\x00"
    yield data + b"\xff" * 9
    for pos in positions(len(data), limit):
        for value in BYTE_VALUES:
            yield data[:pos] + bytes([value]) + data[pos + 1 :]
        for word in WORDS:
            yield data[:pos] + word + data[pos + 4 :]
        for insert in INSERTS:
            yield data[:pos] + insert + data[pos:]


CASES = [(name, v) for name, cls in sorted(MESSAGE_CLASSES.items()) for v in cls.VALID_VERSIONS]


@pytest.mark.parametrize(("name", "version"), CASES)
def test_mutated_encodings_raise_only_decode_error(name: str, version: int) -> None:
    cls = MESSAGE_CLASSES[name]
    # Requests come from untrusted clients: sweep them more densely.
    limit = 120 if cls.SPEC_TYPE == "request" else 40
    for data in (cls().encode(version), seed(cls, version)):
        for mutated in mutations(data, limit):
            check(cls, version, mutated)


REQUEST_CASES = [(cls, v) for _, cls in sorted(REQUESTS.items()) for v in cls.VALID_VERSIONS]
EDIT = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "word"]),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=6),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(REQUEST_CASES), edits=st.lists(EDIT, min_size=1, max_size=4))
def test_random_edits_of_requests_raise_only_decode_error(case, edits) -> None:
    cls, version = case
    data = bytearray(seed(cls, version))
    for op, where, payload in edits:
        pos = where % (len(data) + 1)
        if op == "replace":
            data[pos : pos + len(payload)] = payload
        elif op == "insert":
            data[pos:pos] = payload
        elif op == "delete":
            del data[pos : pos + len(payload)]
        else:
            data[pos : pos + 4] = struct.pack(">i", int.from_bytes(payload[:4], "big", signed=True))
    check(cls, version, bytes(data))


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from(sorted(REQUESTS)),
            st.integers(min_value=-1, max_value=20),
            st.binary(max_size=60),
        ),
        max_size=4,
    ),
    noise=st.binary(max_size=16),
)
def test_server_connection_raises_only_protocol_error(frames, noise) -> None:
    stream = b"".join(
        struct.pack(">ihhi", len(body) + 8, key, version, 1) + body for key, version, body in frames
    )
    server = ServerConnection(max_frame_bytes=1 << 16)
    if stream + noise:
        server.receive_data(stream + noise)
    server.receive_data(b"")
    try:
        while (event := server.next_event()) not in (CLOSED, NEED_DATA):
            assert event.body is not None or event.error
    except ProtocolError:
        pass
