"""``LogManager``: every partition log under one or more ``log.dirs`` (Kafka's LogManager).

Each log dir holds ``<topic>-<partition>/`` directories, the per-dir checkpoints
``recovery-point-offset-checkpoint`` and ``log-start-offset-checkpoint`` (Kafka's text
format, see ``checkpoint``) and, after a clean shutdown, ``.kafka_cleanshutdown``
(``{"version":0,"brokerEpoch":<epoch>}``). A deleted log's directory is renamed
``<topic>-<partition>.<hex id>-delete`` and removed after ``file.delete.delay.ms``.

Startup (the constructor, blocking): load every partition directory, recovering those of
a dir without the clean-shutdown marker from their checkpointed recovery points, then
remove the marker (durably) so a later crash is noticed. ``__cluster_metadata`` is left
to the metadata quorum, as in Kafka.

``run`` (in the owner's nursery) keeps the schedules: retention every
``retention_check_interval_ms`` or when a segment's ``retention.ms`` is due, whichever
is sooner; flushes when a log's policy, a roll or a leader epoch
change asks for one, checked every ``flush_check_interval_ms`` and on every log change;
checkpoints every ``checkpoint_interval_ms`` and soon after a truncation or a new log
start offset; removal of deleted segments when their delay passes; and, when
``cleaner_config.enabled``, the log cleaner (``cleaner.LogCleaner``) for compacted logs,
bounded by ``high_watermark``; and every ``producer_id_expiration_check_interval_ms``,
the removal of idempotent producers idle for ``producer_id_expiration_ms`` (Kafka's
producer.id.expiration.check.interval.ms and producer.id.expiration.ms). Every fsync
and file removal runs in a worker thread.
``close`` (blocking) flushes and closes every log, writes the checkpoints and the
clean-shutdown marker.

Concurrency: owned by one trio task tree; logs are appended to by the same event loop.
Time for decisions comes from ``clock_ms`` (wall-clock milliseconds by default); waiting
uses trio's clock, so tests can run it on ``MockClock``.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import trio

from klog.segment.checkpoint import (
    CorruptCheckpointError,
    OffsetCheckpointFile,
    fsync_dir,
    write_atomically,
)
from klog.segment.cleaner import CleanerConfig, LogCleaner
from klog.segment.config import LogConfig
from klog.segment.errors import KafkaStorageError
from klog.segment.filenames import (
    CLEAN_SHUTDOWN_FILE,
    DELETE_DIR_SUFFIX,
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    parse_partition_dir_name,
    partition_dir_name,
)
from klog.segment.log import Log, wall_clock_ms
from klog.segment.producer_state import DEFAULT_PRODUCER_ID_EXPIRATION_MS

_log = logging.getLogger(__name__)

METADATA_TOPIC = "__cluster_metadata"


class TopicPartition(NamedTuple):
    topic: str
    partition: int


# (log dir, recovery points, log start offsets) as written to that dir's checkpoints.
_DirCheckpoints = tuple[Path, dict[TopicPartition, int], dict[TopicPartition, int]]


class LogManager:
    """All partition logs of one node; see the module docstring."""

    def __init__(
        self,
        log_dirs: Sequence[Path | str],
        default_config: LogConfig | None = None,
        *,
        topic_configs: Mapping[str, LogConfig] | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        high_watermark: Callable[[TopicPartition], int | None] | None = None,
        retention_check_interval_ms: int = 300_000,
        flush_check_interval_ms: int = 1_000,
        checkpoint_interval_ms: int = 60_000,
        skip_topics: Iterable[str] = (METADATA_TOPIC,),
        cleaner_config: CleanerConfig | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        producer_id_expiration_check_interval_ms: int = 600_000,
    ) -> None:
        if not log_dirs:
            raise ValueError("log.dirs is empty")
        self.log_dirs = [Path(d) for d in log_dirs]
        self.default_config = default_config or LogConfig()
        self._topic_configs = dict(topic_configs or {})
        self._clock = clock_ms
        self._high_watermark = high_watermark
        self._retention_interval = retention_check_interval_ms / 1000
        self._flush_interval = flush_check_interval_ms / 1000
        self._checkpoint_interval = checkpoint_interval_ms / 1000
        self._skip_topics = frozenset(skip_topics)
        self._producer_id_expiration_ms = producer_id_expiration_ms
        self._producer_expiry_interval = producer_id_expiration_check_interval_ms / 1000
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        self._flush_locks: dict[Log, trio.Lock] = {}
        self._pending_dirs: list[tuple[int, Path]] = []
        self._flush_wakeup = trio.Event()
        self._checkpoint_wakeup = trio.Event()
        self._deletion_wakeup = trio.Event()
        self._closed = False
        for log_dir in self.log_dirs:
            self._load_dir(log_dir)
        # Log compaction (klog.segment.cleaner); reads cleaner-offset-checkpoint.
        self.cleaner = LogCleaner(
            cleaner_config or CleanerConfig(),
            self.log_dirs,
            lambda: self._logs,
            self.log_dir_of,
            clock_ms,
            high_watermark,
        )

    # -- loading -------------------------------------------------------------------------

    def _load_dir(self, log_dir: Path) -> None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KafkaStorageError(f"cannot create log dir {log_dir}: {exc}") from exc
        marker = log_dir / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        recovery_points = _read_checkpoint(log_dir / RECOVERY_POINT_CHECKPOINT)
        start_offsets = _read_checkpoint(log_dir / LOG_START_OFFSET_CHECKPOINT)
        now = self._clock()
        loaded = 0
        for child in sorted(log_dir.iterdir()):
            if not child.is_dir():
                continue
            if child.name.endswith(DELETE_DIR_SUFFIX):
                self._pending_dirs.append((now, child))
                continue
            parsed = parse_partition_dir_name(child.name)
            if parsed is None:
                _log.warning("ignoring %s: not a <topic>-<partition> directory", child)
                continue
            tp = TopicPartition(*parsed)
            if tp.topic in self._skip_topics:
                continue
            if tp in self._logs:
                raise KafkaStorageError(
                    f"{tp.topic}-{tp.partition} exists in both {self._dir_of[tp]} and {log_dir}"
                )
            self._logs[tp] = Log.open(
                child,
                self.config_for(tp.topic),
                recovery_point=recovery_points.get(tp, 0),
                log_start_offset=start_offsets.get(tp, 0),
                had_clean_shutdown=clean,
                now_ms=now,
                on_change=self._log_changed,
                producer_id_expiration_ms=self._producer_id_expiration_ms,
            )
            self._dir_of[tp] = log_dir
            loaded += 1
        if loaded:
            # Kafka says the same at startup; operators look for it after a crash.
            outcome = (
                "clean shutdown marker found, skipped recovery of %d log(s)"
                if clean
                else "no clean shutdown marker, recovered %d log(s) from their recovery points"
            )
            _log.info("%s: " + outcome, log_dir, loaded)
        if clean:
            # Durably: a crash after new appends must not find a stale marker.
            marker.unlink()
            fsync_dir(log_dir)

    # -- logs ----------------------------------------------------------------------------

    def config_for(self, topic: str) -> LogConfig:
        return self._topic_configs.get(topic, self.default_config)

    @property
    def logs(self) -> dict[TopicPartition, Log]:
        return dict(self._logs)

    def get_log(self, tp: TopicPartition) -> Log | None:
        return self._logs.get(tp)

    def log_dir_of(self, tp: TopicPartition) -> Path:
        return self._dir_of[tp]

    def get_or_create_log(self, tp: TopicPartition, config: LogConfig | None = None) -> Log:
        """The log of ``tp``, created in the log dir holding the fewest partitions if
        it does not exist yet."""
        tp = TopicPartition(*tp)
        existing = self._logs.get(tp)
        if existing is not None:
            return existing
        if "/" in tp.topic or tp.topic in ("", ".", "..") or tp.partition < 0:
            raise ValueError(f"invalid topic partition {tp.topic!r}-{tp.partition}")
        counts = {d: 0 for d in self.log_dirs}
        for log_dir in self._dir_of.values():
            counts[log_dir] += 1
        log_dir = min(self.log_dirs, key=lambda d: counts[d])
        log = Log.open(
            log_dir / partition_dir_name(tp.topic, tp.partition),
            config or self.config_for(tp.topic),
            now_ms=self._clock(),
            on_change=self._log_changed,
            producer_id_expiration_ms=self._producer_id_expiration_ms,
        )
        self._logs[tp] = log
        self._dir_of[tp] = log_dir
        self._log_changed(log)
        return log

    def update_topic_config(self, topic: str, config: LogConfig) -> None:
        """Apply a topic's new configuration to its logs (and to logs created later)."""
        self._topic_configs[topic] = config
        for tp, log in self._logs.items():
            if tp.topic == topic:
                log.update_config(config)

    @property
    def producer_id_expiration_ms(self) -> int:
        """``producer.id.expiration.ms``. A dynamic config: setting it applies to every
        log from its next expiration check on."""
        return self._producer_id_expiration_ms

    @producer_id_expiration_ms.setter
    def producer_id_expiration_ms(self, value: int) -> None:
        self._producer_id_expiration_ms = value
        for log in self._logs.values():
            log.producer_id_expiration_ms = value

    def delete_log(self, tp: TopicPartition) -> None:
        """Forget ``tp``'s log: its directory is renamed ``...-delete`` now and removed
        after ``file.delete.delay.ms``. Callers drop their references to the ``Log``;
        slices already handed out stay readable."""
        tp = TopicPartition(*tp)
        log = self._logs.pop(tp)
        del self._dir_of[tp]
        self._flush_locks.pop(log, None)
        self.cleaner.forget(tp)
        target = log.dir.with_name(f"{log.dir.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        log.dir.rename(target)
        self._pending_dirs.append((self._clock() + log.config.file_delete_delay_ms, target))
        _log.info("deleted log %s-%d (removing %s later)", tp.topic, tp.partition, target)
        self._checkpoint_wakeup.set()
        self._deletion_wakeup.set()

    def _log_changed(self, log: Log) -> None:
        self._flush_wakeup.set()
        self._checkpoint_wakeup.set()
        self._deletion_wakeup.set()

    # -- flushing ------------------------------------------------------------------------

    async def flush_if_due(self, log: Log) -> bool:
        """After an append: fsync in a worker thread if the log's flush policy says so
        (``flush.messages``/``flush.ms``). Returns True if it flushed."""
        if not log.flush_due(self._clock()):
            return False
        await self.flush(log)
        return True

    async def flush(self, log: Log) -> None:
        """fsync everything appended to ``log`` so far, in a worker thread."""
        lock = self._flush_locks.setdefault(log, trio.Lock())
        async with lock:
            job = log.start_flush()
            try:
                await trio.to_thread.run_sync(job.run)
            except FileNotFoundError:
                # delete_log renamed the directory under the job: nothing left to make
                # durable. Any other log losing its files is a real storage failure.
                if any(managed is log for managed in self._logs.values()):
                    raise
                return
            log.finish_flush(job, self._clock())

    # -- checkpoints ---------------------------------------------------------------------

    def _checkpoint_snapshot(self) -> list[_DirCheckpoints]:
        snapshot = []
        for log_dir in self.log_dirs:
            here = [(tp, log) for tp, log in self._logs.items() if self._dir_of[tp] == log_dir]
            snapshot.append(
                (
                    log_dir,
                    {tp: log.recovery_point for tp, log in here},
                    {tp: log.log_start_offset for tp, log in here},
                )
            )
        return snapshot

    @staticmethod
    def _write_checkpoints(snapshot: list[_DirCheckpoints]) -> None:
        for log_dir, recovery_points, start_offsets in snapshot:
            OffsetCheckpointFile(log_dir / RECOVERY_POINT_CHECKPOINT).write(recovery_points)
            OffsetCheckpointFile(log_dir / LOG_START_OFFSET_CHECKPOINT).write(start_offsets)

    async def checkpoint(self) -> None:
        """Write the recovery point and log start offset checkpoints (worker thread)."""
        await trio.to_thread.run_sync(self._write_checkpoints, self._checkpoint_snapshot())

    # -- background schedules ------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run retention, flush, checkpoint, deletion and cleaner schedules until
        cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._retention_loop)
            nursery.start_soon(self._flush_loop)
            nursery.start_soon(self._checkpoint_loop)
            nursery.start_soon(self._deletion_loop)
            nursery.start_soon(self._producer_expiration_loop)
            if self.cleaner.config.enabled:
                nursery.start_soon(self.cleaner.run)
            task_status.started()

    def run_retention(self) -> tuple[int, int | None]:
        """One retention pass over every log: ``(segments deleted, earliest time in ms
        at which retention.ms will expire another segment, if any)``."""
        now = self._clock()
        deleted = 0
        deadlines = []
        for tp, log in list(self._logs.items()):
            bound = self._high_watermark(tp) if self._high_watermark else None
            plan = log.delete_old_segments(now, max_offset=bound)
            deleted += plan.delete_count
            if plan.next_deadline_ms is not None:
                deadlines.append(plan.next_deadline_ms)
        return deleted, min(deadlines, default=None)

    async def _retention_loop(self) -> None:
        while True:
            _, deadline = self.run_retention()
            wait = self._retention_interval
            if deadline is not None:
                wait = min(wait, max(0, deadline - self._clock()) / 1000)
            await trio.sleep(wait)

    async def _flush_loop(self) -> None:
        while True:
            with trio.move_on_after(self._flush_interval):
                await self._flush_wakeup.wait()
            self._flush_wakeup = trio.Event()
            for log in list(self._logs.values()):
                await self.flush_if_due(log)

    async def _checkpoint_loop(self) -> None:
        while True:
            with trio.move_on_after(self._checkpoint_interval):
                await self._checkpoint_wakeup.wait()
            self._checkpoint_wakeup = trio.Event()
            await self.checkpoint()

    def remove_expired_producers(self) -> int:
        """One producer expiration pass over every log; returns the producers removed."""
        now = self._clock()
        return sum(log.remove_expired_producers(now) for log in list(self._logs.values()))

    async def _producer_expiration_loop(self) -> None:
        while True:
            await trio.sleep(self._producer_expiry_interval)
            self.remove_expired_producers()

    def _due_paths(self, now: int) -> list[Path]:
        paths = [path for log in self._logs.values() for path in log.due_deletions(now)]
        paths.extend(path for due, path in self._pending_dirs if due <= now)
        self._pending_dirs = [(due, path) for due, path in self._pending_dirs if due > now]
        return paths

    def _next_deletion_ms(self) -> int | None:
        candidates = [log.next_deletion_ms for log in self._logs.values()]
        candidates.extend(due for due, _ in self._pending_dirs)
        return min((c for c in candidates if c is not None), default=None)

    async def _deletion_loop(self) -> None:
        while True:
            now = self._clock()
            paths = self._due_paths(now)
            if paths:
                await trio.to_thread.run_sync(_remove_paths, paths)
            upcoming = self._next_deletion_ms()
            wait = self._checkpoint_interval
            if upcoming is not None:
                wait = min(wait, max(0, upcoming - now) / 1000)
            with trio.move_on_after(wait):
                await self._deletion_wakeup.wait()
            self._deletion_wakeup = trio.Event()

    # -- shutdown ------------------------------------------------------------------------

    def close(self, broker_epoch: int = -1) -> None:
        """Blocking clean shutdown: flush and close every log, write the checkpoints,
        then the clean-shutdown marker of each dir. Cancel ``run`` first."""
        if self._closed:
            return
        self._closed = True
        for log in self._logs.values():
            log.flush(self._clock())
            log.close()
        self._write_checkpoints(self._checkpoint_snapshot())
        marker = json.dumps({"version": 0, "brokerEpoch": broker_epoch}).encode()
        for log_dir in self.log_dirs:
            write_atomically(log_dir / CLEAN_SHUTDOWN_FILE, marker)

    async def aclose(self, broker_epoch: int = -1) -> None:
        """``close`` in a worker thread (the caller must not touch the logs meanwhile)."""
        await trio.to_thread.run_sync(self.close, broker_epoch)


def _read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    try:
        return {
            TopicPartition(*tp): offset for tp, offset in OffsetCheckpointFile(path).read().items()
        }
    except CorruptCheckpointError as exc:
        # Kafka's choice: without trustworthy recovery points, recover everything.
        _log.warning("ignoring %s; treating its offsets as 0", exc)
        return {}


def _remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
