"""Retention decisions as pure functions of the segments, the config and now_ms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from klog.segment import SegmentStats, plan_retention

DAY = 86_400_000


def segments(*specs: tuple[int, int, int]) -> list[SegmentStats]:
    return [SegmentStats(*spec) for spec in specs]


def plan(segs: list[SegmentStats], **kwargs):  # type: ignore[no-untyped-def]
    options = dict(
        log_start_offset=0, retention_ms=-1, retention_bytes=-1, delete_enabled=True, now_ms=0
    )
    options.update(kwargs)
    return plan_retention(segs, **options)


def test_time_retention_deletes_old_segments_but_never_the_active_one() -> None:
    segs = segments((0, 100, 1 * DAY), (10, 100, 2 * DAY), (20, 100, 3 * DAY), (30, 0, 0))
    result = plan(segs, retention_ms=DAY, now_ms=int(3.5 * DAY))
    assert result.delete_count == 2
    assert "retention.ms" in (result.reason or "")
    assert result.next_deadline_ms == 4 * DAY + 1
    # Everything is old, but the active segment stays.
    assert plan(segs, retention_ms=DAY, now_ms=100 * DAY).delete_count == 3


def test_time_retention_boundary_is_strictly_older() -> None:
    segs = segments((0, 100, 1000), (10, 0, 0))
    assert plan(segs, retention_ms=500, now_ms=1500).delete_count == 0
    assert plan(segs, retention_ms=500, now_ms=1501).delete_count == 1


def test_size_retention_deletes_oldest_while_the_rest_reaches_the_limit() -> None:
    segs = segments((0, 100, 0), (10, 100, 0), (20, 100, 0), (30, 50, 0))
    # Like Kafka, a segment goes only if the log stays at or above retention.bytes.
    assert plan(segs, retention_bytes=250).delete_count == 1  # 350 -> 250
    assert plan(segs, retention_bytes=249).delete_count == 1
    assert plan(segs, retention_bytes=150).delete_count == 2  # 350 -> 150
    assert plan(segs, retention_bytes=0).delete_count == 3  # never the active one
    assert plan(segs, retention_bytes=-1).delete_count == 0


def test_log_start_offset_deletes_segments_entirely_below_it_even_without_delete_policy() -> None:
    segs = segments((0, 100, 0), (10, 100, 0), (20, 100, 0))
    assert plan(segs, log_start_offset=9, delete_enabled=False).delete_count == 0
    result = plan(segs, log_start_offset=10, delete_enabled=False, retention_bytes=0)
    assert result.delete_count == 1
    assert "log start offset" in (result.reason or "")
    assert plan(segs, log_start_offset=25, delete_enabled=False).delete_count == 2


def test_max_offset_protects_segments_above_the_high_watermark() -> None:
    segs = segments((0, 100, 0), (10, 100, 0), (20, 100, 0), (30, 0, 0))
    assert plan(segs, retention_bytes=0, max_offset=19).delete_count == 1
    assert plan(segs, retention_bytes=0, max_offset=20).delete_count == 2


def test_compact_only_policy_keeps_everything_by_time_and_size() -> None:
    segs = segments((0, 100, 0), (10, 100, 0))
    assert plan(segs, retention_bytes=0, retention_ms=0, now_ms=DAY, delete_enabled=False) == (
        0,
        None,
        None,
    )


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 1000), min_size=1, max_size=12),
    stamps=st.lists(st.integers(0, 10_000), min_size=12, max_size=12),
    retention_ms=st.integers(-1, 10_000),
    retention_bytes=st.integers(-1, 12_000),
    now_ms=st.integers(0, 20_000),
)
def test_retention_properties(
    sizes: list[int], stamps: list[int], retention_ms: int, retention_bytes: int, now_ms: int
) -> None:
    segs = [SegmentStats(i * 10, size, stamps[i]) for i, size in enumerate(sizes)]
    result = plan(segs, retention_ms=retention_ms, retention_bytes=retention_bytes, now_ms=now_ms)
    kept = segs[result.delete_count :]
    assert kept, "the active segment is never deleted"
    assert (result.delete_count > 0) == (result.reason is not None)
    # Each deleted segment was deleted for a reason the config gives.
    for index, segment in enumerate(segs[: result.delete_count]):
        too_old = retention_ms >= 0 and now_ms - segment.largest_timestamp > retention_ms
        too_big = retention_bytes >= 0 and sum(s.size for s in segs[index + 1 :]) >= retention_bytes
        assert too_old or too_big
    # And the first kept inactive segment would not have been.
    if len(kept) > 1:
        first = kept[0]
        assert not (retention_ms >= 0 and now_ms - first.largest_timestamp > retention_ms)
        if retention_bytes >= 0:
            assert sum(s.size for s in kept) - first.size < retention_bytes
