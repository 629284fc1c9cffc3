"""One klog node: storage, metadata, replicas, coordinators and listeners in one trio loop.

Startup order: format or check ``meta.properties`` in every log dir; open the logs
(recovery after an unclean stop runs here, in a worker thread, before anything is
served); replay the metadata log into the image; bind the listeners; register this
broker; then serve. Shutdown (``request_shutdown``): stop accepting, let in-flight
requests finish, flush and checkpoint every log, write the clean-shutdown markers.

The node owns every background task through its nursery; nothing outlives ``run``.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from klog import native
from klog.controller import Endpoint, MetadataLog, NewTopic, QuorumController
from klog.controller.image import (
    BROKER_RESOURCE,
    TOPIC_RESOURCE,
    MetadataDelta,
    MetadataImage,
)
from klog.replication import ReplicaManager
from klog.segment import METADATA_TOPIC, Log, LogManager, TopicPartition
from klog.segment.checkpoint import write_atomically
from klog.segment.cleaner import CleanerConfig
from klog.segment.log import wall_clock_ms
from klog.server import network
from klog.server.config import BrokerConfig, log_config
from klog.server.handlers import all_apis
from klog.server.handlers.groups import new_group_coordinator
from klog.server.router import Router, UnsupportedRequest
from klog.wire.errors import KafkaError

log = logging.getLogger(__name__)

META_PROPERTIES = "meta.properties"
SHUTDOWN_GRACE_S = 30.0
PLAINTEXT = 0  # Kafka's SecurityProtocol id


class StartupError(Exception):
    """The node cannot start (bad data directory, port in use...): one line for the user."""


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Node:
    """A klog node; see the module docstring."""

    def __init__(self, config: BrokerConfig, announce: Callable[[str], None] = print) -> None:
        self.config = config
        self._static_config = config
        self.node_id: int = config.node_id
        self._announce = announce
        self.cluster_id = ""
        self.image = MetadataImage()
        self.log_manager: LogManager | None = None
        self.replica_manager: ReplicaManager | None = None
        self.metadata_log: MetadataLog | None = None
        self.controller: QuorumController | None = None
        self.group_coordinator: Any = None
        self.router = Router([])
        # (listener name, host, port): as clients should dial, and as actually bound.
        self.endpoints: list[tuple[str, str, int]] = []
        self.bound: list[tuple[str, str, int]] = []
        self.shutdown_requested = False
        self._shutdown = trio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    def request_shutdown(self) -> None:
        self.shutdown_requested = True
        self._shutdown.set()

    def clock_ms(self) -> int:
        return wall_clock_ms()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log_dirs = [Path(d) for d in self.config.log_dirs]
        self.cluster_id = await trio.to_thread.run_sync(self._format_dirs, log_dirs)
        started = time.monotonic()
        self.log_manager = await trio.to_thread.run_sync(self._open_log_manager, log_dirs)
        metadata_dir = Path(self.config.metadata_log_dir or log_dirs[0])
        metadata = await trio.to_thread.run_sync(self._open_metadata_log, metadata_dir)
        log.info(
            "storage opened in %.2fs (record scanning: %s implementation)",
            time.monotonic() - started,
            native.IMPLEMENTATION,
        )
        self.metadata_log = MetadataLog(metadata)
        self.replica_manager = ReplicaManager(
            self.node_id, self.log_manager, self._log_config_for, self.clock_ms
        )
        for records, last_offset in self.metadata_log.replay():
            self.image.apply_batch(records, last_offset)
        self._publish(self._full_delta())
        self.controller = QuorumController(
            self.node_id,
            self.image,
            self.metadata_log,
            default_num_partitions=self.config["num.partitions"],
            default_replication_factor=self.config["default.replication.factor"],
            on_commit=self._publish,
        )
        self.group_coordinator = new_group_coordinator(self)
        self.router = Router(all_apis(self))
        listeners = await self._bind_listeners()
        await self.controller.bootstrap()
        await self.controller.register_broker(
            self.node_id,
            uuid.uuid4(),
            [Endpoint(name, host, port, PLAINTEXT) for name, host, port in self.endpoints],
            self.config["broker.rack"],
        )
        drain = network.Drain()
        async with trio.open_nursery() as services:
            await services.start(self.log_manager.run)
            await services.start(self.group_coordinator.run)
            async with trio.open_nursery() as connections:
                accept_scope = trio.CancelScope()

                async def accept() -> None:
                    with accept_scope:
                        await network.serve_listeners(
                            listeners,
                            self._handle,
                            max_frame_bytes=self.config["socket.request.max.bytes"],
                            idle_timeout_s=self.config["connections.max.idle.ms"] / 1000,
                            drain=drain,
                            connections=connections,
                        )

                connections.start_soon(accept)
                for (_, host, port), (_, adv_host, adv_port) in zip(
                    self.bound, self.endpoints, strict=True
                ):
                    advertised = (
                        ""
                        if (adv_host, adv_port) == (host, port)
                        else f" (advertised as {adv_host}:{adv_port})"
                    )
                    self._announce(f"klog listening on {host}:{port}{advertised}")
                self._announce(f"klog data in {', '.join(str(d.resolve()) for d in log_dirs)}")
                task_status.started()
                await self._shutdown.wait()
                log.info("shutting down: no new connections, draining in-flight requests")
                accept_scope.cancel()
                for listener in listeners:
                    await listener.aclose()
                drain.start()
                # Parked JoinGroup/SyncGroup answer NOT_COORDINATOR now instead of
                # holding the drain for the whole grace period.
                self.group_coordinator.close()
                connections.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE_S
            services.cancel_scope.cancel()
        await self.log_manager.aclose()
        await trio.to_thread.run_sync(metadata.flush)
        await trio.to_thread.run_sync(metadata.close)
        log.info("shutdown complete")

    async def _handle(self, request: Any, client: Any) -> Any:
        try:
            return await self.router(request, client)
        except UnsupportedRequest as exc:
            log.info("%s from %s:%s", exc, client.host, client.port)
            raise network.CloseConnection(str(exc)) from exc

    # -- storage -------------------------------------------------------------------------

    def _format_dirs(self, log_dirs: list[Path]) -> str:
        """Create or check meta.properties in every log dir; return the cluster id."""
        cluster_id = None
        found: list[tuple[Path, dict[str, str]]] = []
        for directory in log_dirs:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StartupError(f"cannot create log dir {directory}: {exc.strerror}") from exc
            path = directory / META_PROPERTIES
            if path.exists():
                props = _read_properties(path)
                found.append((directory, props))
                if props.get("node.id") != str(self.node_id):
                    raise StartupError(
                        f"{path} belongs to node.id={props.get('node.id')}, "
                        f"but this node is node.id={self.node_id}"
                    )
                if cluster_id is not None and props.get("cluster.id") != cluster_id:
                    raise StartupError(f"{path} belongs to another cluster")
                cluster_id = props.get("cluster.id")
        if cluster_id is None:
            cluster_id = self.config["klog.cluster.id"] or _new_cluster_id()
        for directory in log_dirs:
            path = directory / META_PROPERTIES
            if not path.exists():
                _write_properties(
                    path,
                    {
                        "version": "1",
                        "node.id": str(self.node_id),
                        "cluster.id": cluster_id,
                        "directory.id": _new_cluster_id(),
                    },
                )
        return cluster_id

    def _open_log_manager(self, log_dirs: list[Path]) -> LogManager:
        return LogManager(
            log_dirs,
            log_config(self.config, {}),
            clock_ms=self.clock_ms,
            high_watermark=self._high_watermark_of,
            cleaner_config=CleanerConfig(
                enabled=self.config["log.cleaner.enable"],
                backoff_ms=self.config["log.cleaner.backoff.ms"],
                dedupe_buffer_size=self.config["log.cleaner.dedupe.buffer.size"],
                io_buffer_size=self.config["log.cleaner.io.buffer.size"],
            ),
            retention_check_interval_ms=self.config["log.retention.check.interval.ms"],
            checkpoint_interval_ms=self.config["log.flush.offset.checkpoint.interval.ms"],
            producer_id_expiration_ms=self.config["producer.id.expiration.ms"],
            producer_id_expiration_check_interval_ms=self.config[
                "producer.id.expiration.check.interval.ms"
            ],
        )

    def _high_watermark_of(self, tp: TopicPartition) -> int:
        """Retention and compaction never reach past what consumers may read; a
        partition this node does not host is left alone entirely."""
        partition = self.replica_manager.get_partition(*tp) if self.replica_manager else None
        return partition.high_watermark if partition is not None else 0

    def _open_metadata_log(self, directory: Path) -> Log:
        directory.mkdir(parents=True, exist_ok=True)
        metadata_config = log_config(
            self.config,
            {
                "segment.bytes": str(self.config["metadata.log.segment.bytes"]),
                # Kafka's KRaft batch limit: one controller decision is one batch.
                "max.message.bytes": str(8 * 1024 * 1024),
            },
        )
        return Log.open(directory / f"{METADATA_TOPIC}-0", metadata_config, now_ms=self.clock_ms())

    def _log_config_for(self, topic: str) -> Any:
        return log_config(self.config, self.image.topic_configs(topic))

    # -- metadata ------------------------------------------------------------------------

    def _full_delta(self) -> MetadataDelta:
        delta = MetadataDelta()
        for name, topic in self.image.topics_by_name.items():
            delta.changed_partitions.update((name, index) for index in topic.partitions)
        return delta

    def _publish(self, delta: MetadataDelta) -> None:
        """Make local replicas and configs follow committed metadata."""
        replicas = self.replica_manager
        if replicas is None:
            return
        for tp in [
            tp for tp, p in replicas.partitions.items() if p.topic_id in delta.removed_topics
        ]:
            replicas.remove_partition(tp)
        for topic, index in sorted(delta.changed_partitions):
            state = self.image.partition(topic, index)
            if state is None:
                continue
            tp = TopicPartition(topic, index)
            if self.node_id in state.replicas:
                replicas.update_partition(tp, state.topic_id, state)
            else:
                replicas.remove_partition(tp)
        if any(resource_type == BROKER_RESOURCE for resource_type, _ in delta.changed_configs):
            self._apply_dynamic_broker_configs()
            changed_topics = set(self.image.topics_by_name)
        else:
            changed_topics = {
                name
                for resource_type, name in delta.changed_configs
                if resource_type == TOPIC_RESOURCE and self.image.topic(name) is not None
            }
        for name in sorted(changed_topics):
            replicas.topic_config_changed(name)

    def _apply_dynamic_broker_configs(self) -> None:
        """Cluster-wide dynamic defaults, then this broker's own, over the static config."""
        config = self._static_config
        cluster = self.image.configs_of(BROKER_RESOURCE, "")
        if cluster:
            config = config.with_dynamic(cluster, per_broker=False, replace=True)
        own = self.image.configs_of(BROKER_RESOURCE, str(self.node_id))
        if own:
            config = config.with_dynamic(own, per_broker=True, replace=True)
        self.config = config
        if self.log_manager is not None:
            self.log_manager.producer_id_expiration_ms = config["producer.id.expiration.ms"]

    async def auto_create_topic(self, name: str) -> None:
        """Create ``name`` with the broker's defaults (Metadata auto-creation)."""
        assert self.controller is not None
        result = (
            await self.controller.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=self.config["num.partitions"],
                        replication_factor=self.config["default.replication.factor"],
                    )
                ],
                validate_only=False,
            )
        )[0]
        if result.error_code:
            raise KafkaError(result.error_code, result.error_message)

    def broker_endpoints(self) -> list[tuple[int, str, int, str | None]]:
        """(node id, host, port, rack) of every live broker, as clients should dial them."""
        out = []
        for broker in self.image.live_brokers():
            endpoint = broker.endpoint()
            if endpoint is not None:
                out.append((broker.broker_id, endpoint.host, endpoint.port, broker.rack))
        return out

    # -- network -------------------------------------------------------------------------

    async def _bind_listeners(self) -> list[trio.SocketListener]:
        listeners: list[trio.SocketListener] = []
        advertised = {a.name: a for a in self.config.advertised_listeners}
        for listener in self.config.listeners:
            if listener.name in self.config.controller_listener_names:
                continue
            host = listener.host or None
            try:
                bound = await trio.open_tcp_listeners(listener.port, host=host)
            except OSError as exc:
                raise StartupError(
                    f"cannot listen on {listener.host}:{listener.port}: {exc.strerror}"
                ) from exc
            port = bound[0].socket.getsockname()[1]
            listeners.extend(bound)
            adv = advertised.get(listener.name)
            adv_host = adv.host if adv is not None and adv.host else listener.host
            if adv_host in ("", "0.0.0.0", "::"):
                adv_host = socket.gethostname()
            adv_port = adv.port if adv is not None and adv.port else port
            self.endpoints.append((listener.name, adv_host, adv_port))
            self.bound.append((listener.name, listener.host or "0.0.0.0", port))
        if not listeners:
            raise StartupError("no broker listener configured in listeners")
        return listeners


def _read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def _write_properties(path: Path, props: dict[str, str]) -> None:
    write_atomically(path, ("#\n" + "".join(f"{k}={v}\n" for k, v in props.items())).encode())
