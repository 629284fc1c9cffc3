"""Which old segments to delete: pure decisions, given the time (DESIGN.md section 9).

Kafka's three rules, applied in order from the oldest segment: segments entirely below
the log start offset; then, if ``cleanup.policy`` has ``delete``, enough of the oldest
segments to bring the log's size to ``retention.bytes`` or less (-1 = unlimited); then
segments whose largest timestamp is more than ``retention.ms`` old (-1 = forever).
Whole segments only; never the active (last) segment; never a segment with offsets at
or above ``max_offset`` (the high watermark, when the caller has one).

Pure functions over plain tuples: no I/O, no clock; safe to share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class SegmentStats(NamedTuple):
    """What retention looks at in one segment."""

    base_offset: int
    size: int
    largest_timestamp: int


class RetentionPlan(NamedTuple):
    """Delete the ``delete_count`` oldest segments; ``reason`` says why (None when
    nothing is due); ``next_deadline_ms`` is when time-based retention would delete the
    next segment, if it ever will."""

    delete_count: int
    reason: str | None
    next_deadline_ms: int | None


def plan_retention(
    segments: Sequence[SegmentStats],
    *,
    log_start_offset: int,
    retention_ms: int,
    retention_bytes: int,
    delete_enabled: bool,
    now_ms: int,
    max_offset: int | None = None,
) -> RetentionPlan:
    """Decide how many of the oldest ``segments`` (oldest first, the last one active)
    to delete."""
    reasons: list[str] = []

    def deletable(index: int) -> bool:
        if index >= len(segments) - 1:
            return False
        upper = segments[index + 1].base_offset
        return max_offset is None or upper <= max_offset

    count = 0
    while deletable(count) and segments[count + 1].base_offset <= log_start_offset:
        count += 1
    if count:
        reasons.append(f"below the log start offset {log_start_offset}")

    if delete_enabled and retention_bytes >= 0:
        excess = sum(segment.size for segment in segments[count:]) - retention_bytes
        start = count
        while deletable(count) and excess - segments[count].size >= 0:
            excess -= segments[count].size
            count += 1
        if count > start:
            reasons.append(f"retention.bytes {retention_bytes} exceeded")

    next_deadline: int | None = None
    if delete_enabled and retention_ms >= 0:
        start = count
        while deletable(count) and now_ms - segments[count].largest_timestamp > retention_ms:
            count += 1
        if count > start:
            reasons.append(f"older than retention.ms {retention_ms}")
        if deletable(count):
            next_deadline = segments[count].largest_timestamp + retention_ms + 1

    return RetentionPlan(count, "; ".join(reasons) or None, next_deadline)
