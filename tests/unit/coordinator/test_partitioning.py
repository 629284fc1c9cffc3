"""Kafka's group -> __consumer_offsets partition mapping, bit for bit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from klog.coordinator import java_string_hash, partition_for_group

# Values of java.lang.String.hashCode() as the JVM computes them.
KNOWN_HASHES = {
    "": 0,
    "a": 97,
    "Aa": 2112,
    "BB": 2112,
    "hello": 99162322,
    "Hello World": -862545276,
    "polygenelubricants": -(2**31),
    # One code point outside the BMP is two UTF-16 units: 0xD83D * 31 + 0xDE00.
    "\U0001f600": 1772899,
}


def test_java_string_hash_known_values() -> None:
    for text, expected in KNOWN_HASHES.items():
        assert java_string_hash(text) == expected, text


def test_integer_min_value_maps_to_partition_zero() -> None:
    # Kafka's Utils.abs is n & 0x7fffffff: MIN_VALUE -> 0 (Math.abs would stay negative).
    assert partition_for_group("polygenelubricants", 50) == 0


def test_negative_hash_uses_the_low_31_bits() -> None:
    # -862545276 & 0x7fffffff = 1284938372; 1284938372 % 50 = 22.
    assert partition_for_group("Hello World", 50) == 22
    assert partition_for_group("hello", 50) == 99162322 % 50


@settings(max_examples=200)
@given(st.text(), st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))
def test_hash_follows_javas_recurrence(prefix: str, char: str) -> None:
    expected = (31 * java_string_hash(prefix) + ord(char)) & 0xFFFFFFFF
    expected -= (1 << 32) if expected >= 1 << 31 else 0
    assert java_string_hash(prefix + char) == expected


@settings(max_examples=200)
@given(st.text(), st.integers(min_value=1, max_value=1000))
def test_partition_is_in_range(group_id: str, partitions: int) -> None:
    assert 0 <= partition_for_group(group_id, partitions) < partitions
