"""Exceptions of the wire layer's codecs and connection state machines.

Two families, as DESIGN.md section 9 asks: errors in bytes that came from the peer
(``DecodeError``, ``ProtocolError``) and errors in values the local code asked to encode
(``EncodeError``, ``UnsupportedVersionError``). The Kafka error-code table is
``klog.wire.errors``; nothing here is a Kafka error code. Immutable; shareable.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes from the peer are not a valid encoding of the expected message and version.

    The only exception a decoder raises on hostile input (truncated, oversized, negative
    lengths, bad varints, invalid UTF-8, trailing bytes...).
    """


class ProtocolError(Exception):
    """The peer broke the framing or request/response rules; close the connection."""


class EncodeError(ValueError):
    """A value cannot be encoded: out of range for its type, or null where not allowed."""


class UnsupportedVersionError(ValueError):
    """The message has no schema for the requested version."""
