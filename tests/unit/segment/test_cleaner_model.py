"""Model test of the log cleaner: random appends, rolls, reopenings and passes over a small
compacted log, checked after every pass against the model

    a record below the pass's end offset survives iff it has no key, or it is the last
    record of its key and not a tombstone whose delete horizon (the time of the first
    pass that kept it + delete.retention.ms) has passed; everything at or after the end
    offset survives untouched;

with offsets (and every batch's offset range) preserved, reads from any offset and
timestamp lookups answering as a consumer expects, and a second pass changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.segment import Log, LogConfig
from klog.segment.cleaner import CleanResult, clean_log, cleaning_plan
from klog.wire.compression import Compression
from klog.wire.records import build_batch, decode_records, iter_batches

CONFIG = LogConfig(
    cleanup_policy=("compact",),
    segment_bytes=400,
    index_interval_bytes=64,
    segment_index_bytes=1024,
    delete_retention_ms=50,
)
KEYS = [None, b"a", b"b", b"c", b"d", b"e"]


@dataclass
class Row:
    offset: int
    key: bytes | None
    value: bytes | None
    present: bool = True
    horizon: int | None = None

    @property
    def timestamp(self) -> int:
        return 10 * self.offset


class Model:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.batches: set[tuple[int, int]] = set()

    def append(self, base: int, records: list[tuple[bytes | None, bytes | None]]) -> None:
        self.rows.extend(Row(base + i, key, value) for i, (key, value) in enumerate(records))
        self.batches.add((base, base + len(records) - 1))

    def clean(self, end: int, now: int) -> None:
        last = {row.key: row.offset for row in self.rows if row.offset < end}
        for row in self.rows:
            if not row.present or row.offset >= end or row.key is None:
                continue
            if last[row.key] != row.offset:
                row.present = False
            elif row.value is None:
                if row.horizon is None:
                    row.horizon = now + CONFIG.delete_retention_ms
                elif row.horizon <= now:
                    row.present = False

    def expected(self) -> list[tuple[int, bytes | None, bytes | None]]:
        return [(r.offset, r.key, r.value) for r in self.rows if r.present]


def stored(log: Log) -> tuple[list[tuple[int, int]], list[tuple[int, bytes | None, bytes | None]]]:
    ranges, rows = [], []
    for segment in log.segments:
        for header, batch in iter_batches(segment.log.read_bytes(0, segment.size)):
            ranges.append((header.base_offset, header.last_offset))
            rows.extend((r.offset, r.key, r.value) for r in decode_records(batch))
    return ranges, rows


def consume_from(log: Log, offset: int) -> int | None:
    """The first offset a consumer fetching from ``offset`` receives (None: none)."""
    position = offset
    while position < log.log_end_offset:
        data = log.read(position, 1 << 20).read_bytes()
        batches = list(iter_batches(data))
        if not batches:
            # Only gaps up to the log end, as when the last batch before the active
            # segment was cleaned away; Kafka answers such a fetch the same way.
            return None
        found = [r.offset for _, b in batches for r in decode_records(b) if r.offset >= offset]
        if found:
            return found[0]
        position = batches[-1][0].last_offset + 1  # a batch emptied by compaction: skip it
    return None


def check(log: Log, model: Model) -> None:
    ranges, rows = stored(log)
    expected = model.expected()
    assert rows == expected
    assert set(ranges) <= model.batches, "a batch lost its offset range"
    offsets = [offset for offset, _, _ in expected]
    for wanted in range(0, log.log_end_offset, 3):
        first = next((o for o in offsets if o >= wanted), None)
        assert consume_from(log, wanted) == first
        found = log.offset_for_timestamp(10 * wanted)
        assert (found.offset if found is not None else None) == first


def run_pass(log: Log, now: int, checkpoint: int | None) -> CleanResult:
    plan = cleaning_plan(log, checkpoint=checkpoint, upper_bound=None, now_ms=now)
    return trio.run(lambda: clean_log(log, plan, now_ms=now))


records_st = st.lists(
    st.tuples(st.sampled_from(KEYS), st.none() | st.binary(min_size=1, max_size=30)),
    min_size=1,
    max_size=4,
)
OPS = {
    "append": st.tuples(
        st.just("append"), records_st, st.sampled_from([Compression.NONE, Compression.ZSTD])
    ),
    "roll": st.tuples(st.just("roll")),
    "clean": st.tuples(
        st.just("clean"), st.sampled_from([0, 1, 25, 49, 50, 51, 80]), st.booleans()
    ),
    "reopen": st.tuples(st.just("reopen")),
}
# Mostly appends, so that passes find segments to clean and keys to supersede.
KINDS = ["append"] * 6 + ["roll", "clean", "clean", "reopen"]
ops_st = st.lists(st.sampled_from(KINDS).flatmap(OPS.__getitem__), min_size=10, max_size=80)


@settings(max_examples=60, deadline=None)
@given(ops=ops_st)
def test_compaction_matches_the_model(ops: list[tuple]) -> None:
    with TemporaryDirectory() as tmp:
        directory = Path(tmp) / "model-0"
        log = Log.open(directory, CONFIG, now_ms=0)
        model = Model()
        now = 1_000
        checkpoint: int | None = None
        for op in ops:
            if op[0] == "append":
                rows = [
                    (key, value, [], 10 * (log.log_end_offset + i))
                    for i, (key, value) in enumerate(op[1])
                ]
                info = log.append(bytearray(build_batch(rows, compression=op[2])), 0, now)
                model.append(info.base_offset, op[1])
            elif op[0] == "roll":
                log.roll(now)
            elif op[0] == "reopen":
                log.flush()
                log.close()
                log = Log.open(directory, CONFIG, now_ms=now, recovery_point=0)
                check(log, model)
            else:
                now += op[1]
                end = log.active_segment.base_offset
                result = run_pass(log, now, checkpoint if op[2] else None)
                assert result.completed and result.end_offset == end
                model.clean(end, now)
                check(log, model)
                again = run_pass(log, now, result.end_offset)
                assert again.records_removed == 0
                check(log, model)
                checkpoint = result.end_offset
        check(log, model)
        log.close()
