"""Stateful property test: a Log's idempotent producer state against a simple model.

Random idempotent appends (continuing sequences, retries of recent batches, gaps, old
and new epochs, sequences near Int32.MAX, as the clock moves), plain appends, rolls,
truncations, expiry and restarts (clean and unclean). Each append's outcome (written at the
expected offsets, answered as a duplicate with the original offsets, or refused with
the expected error) and the whole state after every step must match the model.

The model keeps the list of idempotent batches in the log and the rules in their plain
form; after a restart or a truncation its state is recomputed from that list alone
(replaying the batches, then dropping expired producers), so the real snapshot-plus-scan
rebuild is checked against a from-scratch computation. An expired producer id comes back
only with another epoch than the one it expired with: with the same epoch, a restart
may revive its old batches from the log (Kafka does the same), which the model leaves
out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from klog.segment import Log, LogConfig
from klog.segment.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from klog.segment.producer_state import INT32_MAX, AppendOrigin
from klog.wire.records import build_batch

CONFIG = LogConfig(segment_bytes=500, index_interval_bytes=120, segment_index_bytes=4096)
EXPIRATION_MS = 10_000
PIDS = (1, 2, 3)
KEEP = 5

# (first_seq, last_seq, first_offset, last_offset, timestamp)
Meta = tuple[int, int, int, int, int]
# producer id -> (epoch, last batches of that epoch, oldest first)
State = dict[int, tuple[int, tuple[Meta, ...]]]


def plus(seq: int, n: int) -> int:
    """Sequence arithmetic as the protocol defines it: wraps from Int32.MAX to 0."""
    return (seq + n) % (INT32_MAX + 1)


def replay(batches: list[tuple[int, int, Meta]]) -> State:
    """The state a log holding these (pid, epoch, meta) batches implies."""
    state: State = {}
    for pid, epoch, meta in batches:
        old_epoch, kept = state.get(pid, (None, ()))
        kept = kept[-(KEEP - 1) :] if old_epoch == epoch else ()
        state[pid] = (epoch, (*kept, meta))
    return state


class ProducerStateMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="klog-producers-"))
        self.now = 0
        self.log = self.open()
        # Every idempotent batch in the log, in offset order.
        self.batches: list[tuple[int, int, Meta]] = []
        self.state: State = {}
        # Expired producer ids and the epoch they had.
        self.dead: dict[int, int] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def open(self, clean: bool = False) -> Log:
        return Log.open(
            self.tmp / "t-0",
            CONFIG,
            had_clean_shutdown=clean,
            now_ms=self.now,
            producer_id_expiration_ms=EXPIRATION_MS,
        )

    def expire(self) -> None:
        idle = [p for p, (_, kept) in self.state.items() if self.now - kept[-1][4] >= EXPIRATION_MS]
        for pid in idle:
            self.dead[pid] = self.state.pop(pid)[0]

    def rebuild(self) -> None:
        self.state = replay(self.batches)
        self.expire()

    # -- appends ---------------------------------------------------------------------------

    @rule(
        data=st.data(),
        count=st.integers(1, 3),
        how=st.sampled_from(["next", "next", "next", "next", "retry", "retry", "gap", "zero"]),
        epoch_step=st.sampled_from([0, 0, 0, 0, 0, 1, -1]),
        start=st.sampled_from([0, 3, INT32_MAX - 1, INT32_MAX]),
        elapsed=st.sampled_from([0, 10, 1_000, 6_000]),
    )
    def append_idempotent(
        self,
        data: st.DataObject,
        count: int,
        how: str,
        epoch_step: int,
        start: int,
        elapsed: int,
    ) -> None:
        self.now += elapsed
        pid = data.draw(st.sampled_from(PIDS), label="pid")
        known = self.state.get(pid)
        if known is None:
            epoch, seq = max(0, epoch_step + 1), start
            if self.dead.get(pid) == epoch:
                epoch += 1
        else:
            current, kept = known
            epoch = max(0, current + epoch_step)
            if how == "retry":
                seq, last = kept[data.draw(st.integers(0, len(kept) - 1), label="retry")][:2]
                count = (last - seq) % (INT32_MAX + 1) + 1
            elif how == "gap":
                seq = plus(kept[-1][1], 2)
            elif how == "zero":
                seq = 0
            else:
                seq = plus(kept[-1][1], 1)
        last_seq = plus(seq, count - 1)
        expected = self.expected(pid, epoch, seq, last_seq)
        batch = build_batch(
            [(b"k", b"v", [], self.now) for _ in range(count)],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
        )
        end = self.log.log_end_offset
        if isinstance(expected, type):
            try:
                self.log.append(bytearray(batch), 0, self.now, AppendOrigin.CLIENT)
            except expected:
                assert self.log.log_end_offset == end
                return
            raise AssertionError(f"expected {expected.__name__}")
        info = self.log.append(bytearray(batch), 0, self.now, AppendOrigin.CLIENT)
        if expected is not None:  # a duplicate: the original offsets, nothing written
            assert (info.base_offset, info.last_offset, info.batch_count) == (*expected, 0)
            assert self.log.log_end_offset == end
            return
        assert (info.base_offset, info.last_offset) == (end, end + count - 1)
        meta = (seq, last_seq, end, end + count - 1, self.now)
        self.batches.append((pid, epoch, meta))
        self.dead.pop(pid, None)
        old_epoch, kept = known or (None, ())
        kept = kept[-(KEEP - 1) :] if old_epoch == epoch else ()
        self.state[pid] = (epoch, (*kept, meta))

    def expected(
        self, pid: int, epoch: int, seq: int, last_seq: int
    ) -> type | tuple[int, int] | None:
        """The error class, the duplicate's (first, last) offsets, or None to write."""
        known = self.state.get(pid)
        if known is None:
            return None
        current, kept = known
        if epoch == current:
            for first, last, first_offset, last_offset, _ in kept:
                if (first, last) == (seq, last_seq):
                    return first_offset, last_offset
        if epoch < current:
            return InvalidProducerEpochError
        if epoch > current:
            return None if seq == 0 else OutOfOrderSequenceError
        return None if seq == plus(kept[-1][1], 1) else OutOfOrderSequenceError

    @rule(count=st.integers(1, 4), roll=st.booleans())
    def append_plain(self, count: int, roll: bool) -> None:
        batch = build_batch([(b"k", b"v", [], self.now) for _ in range(count)])
        self.log.append(bytearray(batch), 0, self.now, AppendOrigin.CLIENT)
        if roll:
            self.log.roll(self.now)

    # -- expiry, truncation, restarts ------------------------------------------------------

    @rule()
    def expire_producers(self) -> None:
        removed = self.log.remove_expired_producers(self.now)
        before = set(self.state)
        self.expire()
        assert removed == len(before - set(self.state))

    @rule(fraction=st.floats(0, 1))
    def truncate(self, fraction: float) -> None:
        target = int(self.log.log_end_offset * fraction)
        if not self.log.truncate_to(target, now_ms=self.now):
            return
        end = self.log.log_end_offset
        self.batches = [b for b in self.batches if b[2][3] < end]
        self.rebuild()

    @rule(clean=st.booleans())
    def restart(self, clean: bool) -> None:
        if clean:
            self.log.flush(self.now)
            self.log.close()
        self.log = self.open(clean)
        self.rebuild()

    @invariant()
    def state_matches(self) -> None:
        if not hasattr(self, "log"):
            return
        real = {
            pid: (entry.epoch, tuple(tuple(b) for b in entry.batches))
            for pid, entry in self.log.producer_state.producers.items()
        }
        assert real == self.state


ProducerStateMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("KLOG_MODEL_EXAMPLES", "60")),
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProducerState = ProducerStateMachine.TestCase
