"""Stateful property test: the Log against an in-memory model of batches.

Random appends (leader and follower), reads, truncations, rolls, deletions of records,
retention and reopenings (clean and unclean) must leave the log holding exactly the
model's batches, readable from every offset, with lookups that agree with the model.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from klog.segment import Log, LogConfig, OffsetOutOfRangeError, TimestampAndOffset
from klog.wire.records import build_batch, iter_batches

CONFIG = LogConfig(
    segment_bytes=700, index_interval_bytes=150, segment_index_bytes=96, retention_ms=-1
)


@dataclasses.dataclass
class ModelBatch:
    base: int
    last: int
    timestamps: list[int]
    epoch: int


class LogMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="klog-model-"))
        self.log = Log.open(self.tmp / "t-0", CONFIG, now_ms=0)
        self.batches: list[ModelBatch] = []
        self.start_offset = 0
        self.end_offset = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------

    def first_batch_at_or_after(self, offset: int) -> ModelBatch | None:
        return next((b for b in self.batches if b.last >= offset), None)

    def live(self) -> list[ModelBatch]:
        """Batches at or above the log start offset (older ones may still be on disk
        until their segment is deleted)."""
        return [b for b in self.batches if b.last >= self.start_offset]

    # -- rules ---------------------------------------------------------------------------

    @rule(
        sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        timestamp=st.integers(0, 10_000),
        epoch=st.integers(0, 3),
    )
    def append(self, sizes: list[int], timestamp: int, epoch: int) -> None:
        epoch = max([epoch, *(b.epoch for b in self.batches)])
        data = bytearray()
        expected = []
        offset = self.end_offset
        for n, count in enumerate(sizes):
            stamps = [(timestamp + 37 * n + 11 * i) % 10_000 for i in range(count)]
            data += build_batch([(b"k", bytes(20), [], t) for t in stamps])
            expected.append(ModelBatch(offset, offset + count - 1, stamps, epoch))
            offset += count
        info = self.log.append(data, leader_epoch=epoch, now_ms=0)
        assert (info.base_offset, info.last_offset) == (self.end_offset, offset - 1)
        self.batches.extend(expected)
        self.end_offset = offset

    @rule(gap=st.integers(0, 5), count=st.integers(1, 3), timestamp=st.integers(0, 10_000))
    def append_as_follower(self, gap: int, count: int, timestamp: int) -> None:
        base = self.end_offset + gap
        epoch = max([0, *(b.epoch for b in self.batches)])
        stamps = [timestamp] * count
        data = build_batch(
            [(b"f", b"v", [], t) for t in stamps], base_offset=base, partition_leader_epoch=epoch
        )
        self.log.append_as_follower(data, now_ms=0)
        self.batches.append(ModelBatch(base, base + count - 1, stamps, epoch))
        self.end_offset = base + count

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start_offset, self.end_offset))
        max_bytes = data.draw(st.sampled_from([1, 200, 10_000]))
        piece = self.log.read(offset, max_bytes)
        found = [h for h, _ in iter_batches(piece.read_bytes(), allow_partial=True)]
        first = self.first_batch_at_or_after(offset)
        if first is None:
            assert found == []
            return
        assert found, f"nothing read at {offset}"
        model = self.batches[self.batches.index(first) :]
        assert [(h.base_offset, h.last_offset) for h in found] == [
            (b.base, b.last) for b in model[: len(found)]
        ]

    @rule(data=st.data())
    def read_out_of_range(self, data: st.DataObject) -> None:
        offset = data.draw(
            st.one_of(st.integers(self.end_offset + 1, self.end_offset + 100), st.integers(-5, -1))
        )
        if offset < 0 and self.start_offset == 0:
            offset = -1
        try:
            self.log.read(offset, 100)
        except OffsetOutOfRangeError:
            return
        raise AssertionError(f"read at {offset} outside [{self.start_offset}, {self.end_offset}]")

    @rule(data=st.data())
    def truncate_to(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start_offset, self.end_offset + 2))
        changed = self.log.truncate_to(offset, now_ms=0)
        assert changed == (offset < self.end_offset)
        if not changed:
            return
        victim = self.first_batch_at_or_after(offset)
        new_end = min(offset, victim.base) if victim is not None else offset
        self.batches = [b for b in self.batches if b.last < offset]
        self.end_offset = new_end
        self.start_offset = min(self.start_offset, new_end)

    @rule(offset=st.integers(0, 400))
    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset, now_ms=0)
        self.batches = []
        self.start_offset = self.end_offset = offset

    @rule(data=st.data())
    def delete_records_before(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start_offset, self.end_offset))
        assert self.log.delete_records_before(offset, now_ms=0) == offset
        self.start_offset = offset

    @rule()
    def roll(self) -> None:
        self.log.roll(now_ms=0)
        assert self.log.active_segment.base_offset == self.end_offset or (
            self.log.active_segment.size == 0
        )

    @rule(limit=st.integers(0, 3000))
    def retention_by_size(self, limit: int) -> None:
        self.log.update_config(dataclasses.replace(CONFIG, retention_bytes=limit))
        plan = self.log.delete_old_segments(now_ms=0)
        self.log.update_config(CONFIG)
        segments = self.log.segments
        if plan.delete_count:
            assert self.log.log_start_offset == max(self.start_offset, segments[0].base_offset)
        if "retention.bytes" in (plan.reason or ""):
            assert self.log.size >= limit  # Kafka never deletes below retention.bytes
        elif len(segments) > 1 and segments[1].base_offset > self.start_offset:
            assert self.log.size - segments[0].size < limit
        self.start_offset = self.log.log_start_offset

    @rule(wanted=st.integers(0, 10_100))
    def offset_for_timestamp(self, wanted: int) -> None:
        expected = None
        for b in self.live():
            for i, t in enumerate(b.timestamps):
                offset = b.base + i
                if t >= wanted and offset >= self.start_offset:
                    expected = TimestampAndOffset(t, offset, b.epoch)
                    break
            if expected is not None:
                break
        assert self.log.offset_for_timestamp(wanted) == expected

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        old = self.log
        if clean:
            old.flush()
            old.close()
        self.log = Log.open(
            old.dir,
            CONFIG,
            recovery_point=old.recovery_point,
            log_start_offset=old.log_start_offset,
            had_clean_shutdown=clean,
            now_ms=0,
        )
        # After a restart the log ends where its data ends, or at the base offset of an
        # empty active segment: a log end set by truncating inside a gap is not kept.
        # A log that ends below its start offset starts over, empty, at the start offset.
        data_end = self.batches[-1].last + 1 if self.batches else 0
        self.end_offset = max(data_end, old.active_segment.base_offset)
        if self.end_offset < self.start_offset:
            self.batches = []
            self.end_offset = self.start_offset

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def offsets_match(self) -> None:
        if not hasattr(self, "log"):
            return
        assert self.log.log_end_offset == self.end_offset
        assert self.log.log_start_offset == self.start_offset

    @invariant()
    def files_hold_exactly_the_model(self) -> None:
        if not hasattr(self, "log"):
            return
        stored = [
            (h.base_offset, h.last_offset)
            for segment in self.log.segments
            for h, _ in iter_batches(segment.log.read_bytes(0, segment.size))
        ]
        live = [(b.base, b.last) for b in self.live()]
        kept = [(b.base, b.last) for b in self.batches]
        # Batches below the log start offset may linger until their segment goes.
        assert stored == kept[len(kept) - len(stored) :]
        assert stored[len(stored) - len(live) :] == live
        for b in self.live():
            offset = max(b.base, self.start_offset)
            assert self.log.leader_epoch_cache.epoch_for_offset(offset) == b.epoch
        for segment in self.log.segments:
            for offset, position in segment.offset_index.all_entries():
                header = segment.log.read_header(position)
                assert header is not None and header.base_offset <= offset <= header.last_offset


LogMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("KLOG_MODEL_EXAMPLES", "100")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogMachine = LogMachine.TestCase
