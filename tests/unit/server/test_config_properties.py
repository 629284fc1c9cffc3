"""Java .properties syntax (java.util.Properties.load semantics)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.server.config_properties import decode_properties_bytes, parse_properties
from klog.server.config_types import ConfigError


def _pairs(text: str) -> list[tuple[str, str]]:
    return [(key, value) for key, value, _ in parse_properties(text)]


def test_separators_and_surrounding_whitespace() -> None:
    text = "a=1\nb: 2\nc 3\n  d  =  4\ne\t:\t5\nf = = 6\ng::7\n"
    assert _pairs(text) == [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
        ("e", "5"),
        ("f", "= 6"),
        ("g", ":7"),
    ]


def test_trailing_whitespace_of_values_is_kept_as_java_does() -> None:
    assert _pairs("a=1  \n") == [("a", "1  ")]


def test_key_without_value() -> None:
    assert _pairs("alone\nwith.sep=\n") == [("alone", ""), ("with.sep", "")]


def test_comments_and_blank_lines() -> None:
    text = "# comment\n   ! also a comment\n\n   \nkey=value # not a comment\n"
    assert _pairs(text) == [("key", "value # not a comment")]


def test_comment_line_never_continues() -> None:
    assert _pairs("# comment \\\nkey=value\n") == [("key", "value")]


def test_line_continuation() -> None:
    text = "list=a,\\\n      b,\\\n      c\nnext=1\n"
    assert parse_properties(text) == [("list", "a,b,c", 1), ("next", "1", 4)]


def test_continued_line_may_start_with_comment_characters() -> None:
    assert _pairs("k=a\\\n  #b\n") == [("k", "a#b")]


def test_even_number_of_backslashes_does_not_continue() -> None:
    assert _pairs("path=c:\\\\\nnext=1\n") == [("path", "c:\\"), ("next", "1")]


def test_continuation_onto_a_blank_line_ends_the_entry() -> None:
    assert _pairs("k=a\\\n\nnext=1\n") == [("k", "a"), ("next", "1")]


def test_continuation_at_end_of_file() -> None:
    assert _pairs("k=a\\") == [("k", "a")]


def test_escapes() -> None:
    text = "tab=a\\tb\nnl=a\\nb\nuni=\\u00e9\\u0041\nother=\\q\\\\\n"
    assert _pairs(text) == [("tab", "a\tb"), ("nl", "a\nb"), ("uni", "éA"), ("other", "q\\")]


def test_escaped_separators_belong_to_the_key() -> None:
    assert _pairs("a\\=b=c\nx\\:y:z\nsp\\ ace value\n") == [
        ("a=b", "c"),
        ("x:y", "z"),
        ("sp ace", "value"),
    ]


@pytest.mark.parametrize("text", ["k=\\u00g1\n", "k=\\u12\n", "k\\uZZZZ=1\n"])
def test_malformed_unicode_escape_names_origin_and_line(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_properties("ok=1\n" + text, "server.properties")
    assert str(err.value).startswith("server.properties:2: malformed \\uXXXX escape")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    text = newline.join(["# c", "a=1", "b=2\\", "  3", "c=4"])
    assert parse_properties(text) == [("a", "1", 2), ("b", "23", 3), ("c", "4", 5)]


def test_repeated_keys_are_all_returned_in_order() -> None:
    assert _pairs("a=1\na=2\n") == [("a", "1"), ("a", "2")]


def test_decoding_falls_back_to_latin1() -> None:
    assert decode_properties_bytes("k=é".encode()) == "k=é"
    assert decode_properties_bytes(b"k=\xe9") == "k=é"


def _escape(text: str, key: bool) -> str:
    # A writer in the spirit of java.util.Properties.store, to round-trip through the reader.
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[char])
        elif char in "=:#!" or (char == " " and (key or index == 0)):
            out.append("\\" + char)
        elif not 0x20 <= ord(char) < 0x7F:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else char)
        else:
            out.append(char)
    return "".join(out)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150)
@given(st.lists(st.tuples(_TEXT.filter(bool), _TEXT), max_size=6))
def test_round_trip_through_a_java_style_writer(entries: list[tuple[str, str]]) -> None:
    text = "# written by the test\n" + "".join(
        f"{_escape(key, True)}={_escape(value, False)}\n" for key, value in entries
    )
    assert _pairs(text) == entries
