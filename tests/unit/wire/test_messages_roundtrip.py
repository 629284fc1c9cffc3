"""Hypothesis: random bodies of every schema and version survive encode -> decode -> encode.

Bodies are generated from the schema itself: every field present in the version gets a
value of its wire type (any int of its width, any UTF-8 string, None where nullable,
short arrays, nested structs); fields absent from the version keep their defaults, as a
decoder restores them.
"""

from __future__ import annotations

import functools
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog.wire import MESSAGE_CLASSES

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(string.ascii_letters), max_size=12
)


def scalar(kind: str) -> st.SearchStrategy:
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return st.integers(low, high)
    return {
        "bool": st.booleans(),
        "float64": st.floats(allow_nan=False),
        "uuid": st.uuids(),
        "string": TEXT,
        "bytes": st.binary(max_size=24),
        "records": st.binary(max_size=24),
    }[kind]


@functools.cache
def body(cls: type, version: int) -> st.SearchStrategy:
    fields = {}
    for field in cls._FIELDS:
        if not field.present_in(version):
            continue
        if field.struct is not None:
            element = st.deferred(lambda f=field: body(f.struct.cls, version))
        else:
            element = scalar(field.element_type)
        value = st.lists(element, max_size=3) if field.is_array else element
        if field.nullable_in(version):
            value = st.none() | value
        fields[field.attr] = value
    return st.builds(cls, **fields)


CASES = [(name, v) for name, cls in sorted(MESSAGE_CLASSES.items()) for v in cls.VALID_VERSIONS]


@pytest.mark.parametrize(("name", "version"), CASES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_bodies_round_trip(name: str, version: int, data: st.DataObject) -> None:
    cls = MESSAGE_CLASSES[name]
    message = data.draw(body(cls, version))
    encoded = message.encode(version)
    decoded = cls.decode(encoded, version)
    assert decoded == message
    assert decoded.encode(version) == encoded
