"""Cluster view shared by one client object: broker connections and the metadata cache.

Lives on the client's trio loop (``LoopThread``). Connections are opened lazily, one per
broker node id (bootstrap addresses get negative ids until the first Metadata response
names the real brokers). ``refresh_metadata`` asks any broker for the topics of
interest and replaces the cached ``TopicMeta`` objects wholesale, so the synchronous
facade may read ``topics`` from another thread without locks (a reader sees either the
old or the new object, never a half-updated one). A background task refreshes the
cache when someone calls ``request_update()`` (after NOT_LEADER_OR_FOLLOWER,
UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE or a lost connection) and every
``metadata_max_age_ms``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from klog.client._conn import BrokerConnection, seconds
from klog.client._loop import LoopThread
from klog.client.errors import (
    KafkaConnectionError,
    KafkaError,
    LeaderNotAvailableError,
    NoBrokersAvailableError,
    UnknownTopicOrPartitionError,
    error_for,
    raise_for,
)
from klog.client.types import OffsetAndTimestamp, TopicPartition
from klog.wire import FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest

log = logging.getLogger("klog.client")


@dataclass(frozen=True, slots=True)
class PartitionMeta:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...]
    error_code: int


@dataclass(frozen=True, slots=True)
class TopicMeta:
    name: str
    topic_id: Any
    is_internal: bool
    partitions: dict[int, PartitionMeta]
    # Partitions with a live leader, for the sticky partitioner.
    available: tuple[int, ...]

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)


@dataclass(frozen=True, slots=True)
class BrokerMeta:
    node_id: int
    host: str
    port: int
    rack: str | None


class Cluster:
    def __init__(
        self, loop: LoopThread, bootstrap: list[tuple[str, int]], settings: dict[str, Any]
    ) -> None:
        self.loop = loop
        self.bootstrap = bootstrap
        self.client_id: str = settings["client_id"]
        self.request_timeout = seconds(settings["request_timeout_ms"])
        self.connect_timeout = seconds(settings["socket_connection_setup_timeout_ms"])
        self.retry_backoff = seconds(settings["retry_backoff_ms"])
        self.max_age = seconds(settings["metadata_max_age_ms"])
        self.brokers: dict[int, BrokerMeta] = {}
        self.topics: dict[str, TopicMeta] = {}
        self.cluster_id: str | None = None
        self.controller_id = -1
        # Topics to keep fresh; None means every topic in the cluster.
        self.interest: set[str] | None = set()
        self.allow_auto_create = False
        self._conns: dict[int, BrokerConnection] = {}
        self._connect_locks: dict[int, trio.Lock] = {}
        self._update_wanted = trio.Event()
        self._updated = trio.Event()
        self.updates = 0

    # -- connections ---------------------------------------------------------------------

    def _address(self, node_id: int) -> tuple[str, int]:
        if node_id < 0:
            return self.bootstrap[-node_id - 1]
        broker = self.brokers.get(node_id)
        if broker is None:
            raise KafkaConnectionError(f"broker {node_id} is not in the cluster metadata")
        return broker.host, broker.port

    async def connection(self, node_id: int) -> BrokerConnection:
        conn = self._conns.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        lock = self._connect_locks.setdefault(node_id, trio.Lock())
        async with lock:
            conn = self._conns.get(node_id)
            if conn is not None and not conn.closed:
                return conn
            host, port = self._address(node_id)
            conn = BrokerConnection(node_id, host, port, self.client_id, self.request_timeout)
            await conn.connect(self.loop.nursery, self.connect_timeout)
            self._conns[node_id] = conn
            return conn

    async def any_connection(self) -> BrokerConnection:
        """An open connection with the fewest requests in flight, else a new one to a
        known broker, else to a bootstrap server."""
        live = [c for c in self._conns.values() if not c.closed and c.node_id >= 0]
        if live:
            return min(live, key=lambda c: c.in_flight)
        candidates = list(self.brokers)
        random.shuffle(candidates)
        candidates += [-(i + 1) for i in range(len(self.bootstrap))]
        errors = []
        for node_id in candidates:
            try:
                return await self.connection(node_id)
            except KafkaConnectionError as exc:
                errors.append(str(exc))
        raise NoBrokersAvailableError("no broker reachable: " + "; ".join(errors))

    async def request(self, node_id: int, body: Any) -> Any:
        conn = await self.connection(node_id)
        try:
            return await conn.request(body)
        except KafkaConnectionError:
            self.request_update()
            raise

    async def request_any(self, body: Any) -> Any:
        conn = await self.any_connection()
        return await conn.request(body)

    async def controller_connection(self) -> BrokerConnection:
        if self.controller_id < 0 or self.controller_id not in self.brokers:
            await self.refresh_metadata()
        if self.controller_id in self.brokers:
            return await self.connection(self.controller_id)
        return await self.any_connection()

    async def find_coordinator(self, group_id: str) -> int:
        """The node id of ``group_id``'s group coordinator (FindCoordinator v0-v6)."""
        conn = await self.any_connection()
        request = FindCoordinatorRequest(key=group_id, key_type=0, coordinator_keys=[group_id])
        version = conn.version_for(FindCoordinatorRequest.API_KEY)
        response = await conn.request(request, version=version)
        if version >= 4:
            [found] = response.coordinators
            code, message = found.error_code, found.error_message
            node_id, host, port = found.node_id, found.host, found.port
        else:
            code, message = response.error_code, response.error_message
            node_id, host, port = response.node_id, response.host, response.port
        raise_for(code, f"coordinator of group {group_id!r}: {message or ''}".rstrip(": "))
        known = self.brokers.get(node_id)
        if known is None or (known.host, known.port) != (host, port):
            self.brokers = {**self.brokers, node_id: BrokerMeta(node_id, host, port, None)}
        return node_id

    async def leaders_for(self, partitions: Iterable[TopicPartition]) -> dict[int, list[Any]]:
        """Group ``partitions`` by leader node, refreshing metadata for unknown ones."""
        partitions = list(partitions)
        missing = {tp.topic for tp in partitions if self.leader(*tp) < 0}
        if missing:
            self.add_interest(missing)
            await self.refresh_metadata(missing)
        by_node: dict[int, list[Any]] = {}
        for tp in partitions:
            leader = self.leader(*tp)
            if leader < 0:
                meta = self.topics.get(tp.topic)
                if meta is None or tp.partition not in meta.partitions:
                    raise UnknownTopicOrPartitionError(detail=f"{tp.topic}-{tp.partition}")
                raise LeaderNotAvailableError(detail=f"{tp.topic}-{tp.partition}")
            by_node.setdefault(leader, []).append(tp)
        return by_node

    async def list_offsets(
        self, specs: Mapping[TopicPartition, int], isolation_level: int = 0
    ) -> dict[TopicPartition, OffsetAndTimestamp]:
        """ListOffsets for each partition: spec -1 latest, -2 earliest, -3 max timestamp,
        else the first offset whose timestamp is >= spec. Retries leader changes until
        ``default_api_timeout_ms``."""
        result: dict[TopicPartition, OffsetAndTimestamp] = {}
        pending = dict(specs)
        while pending:
            retry: dict[TopicPartition, int] = {}
            for node, tps in (await self.leaders_for(pending)).items():
                topics: dict[str, list[Any]] = {}
                for tp in tps:
                    topics.setdefault(tp.topic, []).append(
                        ListOffsetsRequest.ListOffsetsPartition(
                            partition_index=tp.partition, timestamp=pending[tp]
                        )
                    )
                request = ListOffsetsRequest(
                    replica_id=-1,
                    isolation_level=isolation_level,
                    topics=[
                        ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=ps)
                        for t, ps in topics.items()
                    ],
                    timeout_ms=int(self.request_timeout * 1000),
                )
                response = await self.request(node, request)
                for t in response.topics:
                    for p in t.partitions:
                        tp = TopicPartition(t.name, p.partition_index)
                        if p.error_code and error_for(p.error_code).retriable:
                            retry[tp] = pending[tp]
                        else:
                            raise_for(p.error_code, f"ListOffsets {t.name}-{p.partition_index}")
                            result[tp] = OffsetAndTimestamp(p.offset, p.timestamp, p.leader_epoch)
            if retry:
                await self.refresh_metadata({tp.topic for tp in retry})
                await trio.sleep(self.retry_backoff)
            pending = retry
        return result

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # -- metadata ------------------------------------------------------------------------

    def add_interest(self, topics: Iterable[str]) -> bool:
        """Track ``topics``; True if any was new (a refresh is then needed)."""
        if self.interest is None:
            return False
        new = set(topics) - self.interest
        self.interest |= new
        return bool(new)

    def request_update(self) -> None:
        self._update_wanted.set()

    async def wait_for_update(self, since: int) -> None:
        """Wait until a refresh after update number ``since`` has completed."""
        while self.updates <= since:
            await self._updated.wait()

    async def refresh_metadata(self, topics: Iterable[str] | None = ()) -> Any:
        """Fetch metadata for ``topics`` (default: the topics of interest; None: all)."""
        wanted: set[str] | None
        if topics is None:
            wanted = None
        else:
            wanted = set(topics) or (None if self.interest is None else set(self.interest))
        request = MetadataRequest(
            topics=None
            if wanted is None
            else [MetadataRequest.MetadataRequestTopic(name=t) for t in sorted(wanted)],
            allow_auto_topic_creation=self.allow_auto_create,
        )
        response = await self.request_any(request)
        self._apply(response, wanted)
        return response

    def _apply(self, response: Any, wanted: set[str] | None) -> None:
        self.brokers = {
            b.node_id: BrokerMeta(b.node_id, b.host, b.port, b.rack) for b in response.brokers
        }
        self.cluster_id = response.cluster_id
        self.controller_id = response.controller_id
        topics = {} if wanted is None else dict(self.topics)
        for t in response.topics:
            if t.error_code or t.name is None:
                topics.pop(t.name, None)
                continue
            parts = {
                p.partition_index: PartitionMeta(
                    p.partition_index,
                    p.leader_id,
                    p.leader_epoch,
                    tuple(p.replica_nodes),
                    tuple(p.isr_nodes),
                    tuple(p.offline_replicas),
                    p.error_code,
                )
                for p in t.partitions
            }
            available = tuple(sorted(p for p, m in parts.items() if m.leader >= 0))
            topics[t.name] = TopicMeta(t.name, t.topic_id, t.is_internal, parts, available)
        self.topics = topics
        self.updates += 1
        self._updated.set()
        self._updated = trio.Event()

    def leader(self, topic: str, partition: int) -> int:
        meta = self.topics.get(topic)
        if meta is None:
            return -1
        part = meta.partitions.get(partition)
        return -1 if part is None else part.leader

    async def refresher(self) -> None:
        """Background task: refresh on demand and every metadata_max_age_ms."""
        while True:
            with trio.move_on_after(self.max_age):
                await self._update_wanted.wait()
            self._update_wanted = trio.Event()
            if self.interest is not None and not self.interest:
                continue
            try:
                await self.refresh_metadata(None if self.interest is None else ())
            except KafkaError as exc:
                log.debug("metadata refresh failed: %s", exc)
                self._update_wanted.set()
            await trio.sleep(self.retry_backoff)
