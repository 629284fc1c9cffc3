"""Java ``.properties`` syntax, as ``java.util.Properties.load`` reads it (for server.properties).

Format handled:
- Natural lines end with ``\\n``, ``\\r`` or ``\\r\\n``. Leading whitespace (space, tab, form
  feed) is skipped. Blank lines and lines whose first non-blank character is ``#`` or ``!``
  are comments (a comment never continues onto the next line).
- A line ending in an odd number of backslashes continues on the next line; the next line's
  leading whitespace is dropped. A continuation onto a blank line ends the entry.
- The key ends at the first unescaped ``=``, ``:`` or whitespace; whitespace around the
  separator is skipped; the rest of the line is the value (trailing whitespace kept, as in
  Java; Kafka trims values when it parses them).
- Escapes in keys and values: ``\\t \\n \\r \\f``, ``\\uXXXX``, and ``\\`` before any other
  character stands for that character. A malformed ``\\uXXXX`` is an error.
- Text is UTF-8; a file that is not valid UTF-8 is read as ISO-8859-1 (Java's own encoding
  for ``Properties.load(InputStream)``).

Invariant: pure text in, ``(key, value, line)`` triples out, in file order (a repeated key
appears twice; the caller keeps the last, as Java does). Stateless; safe to share.
"""

from __future__ import annotations

import re

from klog.server.config_types import ConfigError

_WHITESPACE = " \t\f"
_NATURAL_LINE = re.compile(r"\r\n|\r|\n")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_HEX = set("0123456789abcdefABCDEF")


def decode_properties_bytes(data: bytes) -> str:
    """The text of a properties file: UTF-8, or ISO-8859-1 when it is not valid UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _logical_lines(text: str) -> list[tuple[str, int]]:
    lines = _NATURAL_LINE.split(text)
    result: list[tuple[str, int]] = []
    index = 0
    while index < len(lines):
        line = lines[index].lstrip(_WHITESPACE)
        number = index + 1
        index += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while True:
            trailing = len(line) - len(line.rstrip("\\"))
            if trailing % 2 == 0 or index >= len(lines):
                parts.append(line[:-1] if trailing % 2 else line)
                break
            parts.append(line[:-1])
            line = lines[index].lstrip(_WHITESPACE)
            index += 1
            if not line:
                break
        result.append(("".join(parts), number))
    return result


def _unescape(text: str, origin: str) -> str:
    out = []
    position = 0
    while position < len(text):
        char = text[position]
        position += 1
        if char != "\\":
            out.append(char)
            continue
        if position >= len(text):
            break
        char = text[position]
        position += 1
        if char == "u":
            digits = text[position : position + 4]
            if len(digits) != 4 or not set(digits) <= _HEX:
                escape = "\\u" + digits
                raise ConfigError(f"{origin}: malformed \\uXXXX escape {escape!r}")
            out.append(chr(int(digits, 16)))
            position += 4
        else:
            out.append(_ESCAPES.get(char, char))
    return "".join(out)


def _split_key(line: str) -> tuple[str, str]:
    key_end = len(line)
    value_start = len(line)
    has_separator = False
    escaped = False
    for position, char in enumerate(line):
        if not escaped and char in "=:":
            key_end, value_start, has_separator = position, position + 1, True
            break
        if not escaped and char in _WHITESPACE:
            key_end, value_start = position, position + 1
            break
        escaped = char == "\\" and not escaped
    while value_start < len(line):
        char = line[value_start]
        if char in _WHITESPACE:
            value_start += 1
        elif char in "=:" and not has_separator:
            has_separator = True
            value_start += 1
        else:
            break
    return line[:key_end], line[value_start:]


def parse_properties(text: str, origin: str = "properties") -> list[tuple[str, str, int]]:
    """``(key, value, line_number)`` for every entry of a properties text, in order.

    ``origin`` names the source in errors (``origin:line: problem``).
    """
    entries = []
    for line, number in _logical_lines(text):
        raw_key, raw_value = _split_key(line)
        where = f"{origin}:{number}"
        entries.append((_unescape(raw_key, where), _unescape(raw_value, where), number))
    return entries
