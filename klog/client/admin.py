"""``Admin``: topics, partitions, configs, consumer groups, records and cluster metadata.

Each method is synchronous: it runs one coroutine on the client's trio thread and
returns typed values (``klog.client.types``) or raises typed errors
(``klog.client.errors``): a single-item call raises that item's error
(``TopicAlreadyExistsError``...), a several-item call raises ``AdminOperationError``
whose ``errors`` maps every failed item to its error after the others were applied.
Every call is bounded by ``default_api_timeout_ms`` (or its ``timeout`` argument, in
seconds) and raises ``KafkaTimeoutError`` past it.

Topic-level requests go to the controller when the broker names one (any broker
forwards them in KRaft mode); group requests go to the group's coordinator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import trio

from klog.client._cluster import Cluster
from klog.client._conn import seconds
from klog.client._group import commit_offsets, fetch_committed
from klog.client._loop import LoopThread
from klog.client.assignors import decode_assignment
from klog.client.config import parse_bootstrap, resolve
from klog.client.errors import (
    AdminOperationError,
    KafkaError,
    KafkaTimeoutError,
    error_for,
    raise_for,
)
from klog.client.types import (
    AlterConfigOp,
    BrokerDescription,
    ClusterDescription,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConfigSource,
    ConfigSynonym,
    GroupDescription,
    GroupListing,
    GroupOffset,
    MemberDescription,
    NewTopic,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    OffsetSpec,
    PartitionDescription,
    TopicDescription,
    TopicPartition,
    as_topic_partitions,
)
from klog.wire import (
    CreatePartitionsRequest,
    CreateTopicsRequest,
    DeleteGroupsRequest,
    DeleteRecordsRequest,
    DeleteTopicsRequest,
    DescribeClusterRequest,
    DescribeConfigsRequest,
    DescribeGroupsRequest,
    IncrementalAlterConfigsRequest,
    ListGroupsRequest,
    OffsetDeleteRequest,
)

T = TypeVar("T")


def _raise_collected(errors: dict[Any, KafkaError], single: bool) -> None:
    if not errors:
        return
    if single and len(errors) == 1:
        raise next(iter(errors.values()))
    raise AdminOperationError(errors)


class Admin:
    """``Admin("host:9092")``; settings: ``client_id``, ``request_timeout_ms``,
    ``default_api_timeout_ms``, ``retry_backoff_ms``, ... (``klog.client.config.ADMIN``)."""

    def __init__(self, bootstrap_servers: str | list[str] = "localhost:9092", **config: Any):
        self.config = resolve("Admin", config)
        self._loop = LoopThread("klog-admin")
        self._cluster = Cluster(self._loop, parse_bootstrap(bootstrap_servers), self.config)
        self._closed = False
        self._loop.start()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._loop.closed:
            self._loop.call_soon(self._cluster.close)
        self._loop.stop()

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
        self._loop.check()
        limit = seconds(self.config["default_api_timeout_ms"]) if timeout is None else timeout
        return self._loop.run(self._bounded, fn, args, limit)

    async def _bounded(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], limit: float):
        with trio.move_on_after(limit) as scope:
            return await fn(*args)
        assert scope.cancelled_caught
        raise KafkaTimeoutError(f"{getattr(fn, '__name__', 'admin call')} timed out after {limit}s")

    async def _controller_request(self, body: Any) -> Any:
        conn = await self._cluster.controller_connection()
        return await conn.request(body)

    # -- cluster -------------------------------------------------------------------------

    def describe_cluster(self, timeout: float | None = None) -> ClusterDescription:
        return self._run(self._describe_cluster, timeout=timeout)

    async def _describe_cluster(self) -> ClusterDescription:
        conn = await self._cluster.any_connection()
        if conn.supports(DescribeClusterRequest.API_KEY):
            response = await conn.request(DescribeClusterRequest(endpoint_type=1))
            raise_for(response.error_code, response.error_message)
            brokers = [
                BrokerDescription(b.broker_id, b.host, b.port, b.rack) for b in response.brokers
            ]
            return ClusterDescription(response.cluster_id, response.controller_id, brokers)
        await self._cluster.refresh_metadata(None)
        return ClusterDescription(
            self._cluster.cluster_id,
            self._cluster.controller_id,
            [
                BrokerDescription(b.node_id, b.host, b.port, b.rack)
                for b in self._cluster.brokers.values()
            ],
        )

    # -- topics --------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        configs: Mapping[str, str] | None = None,
        *,
        validate_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Create one topic; -1 partitions / replication factor take the broker's
        defaults. Raises ``TopicAlreadyExistsError`` etc."""
        topic = NewTopic(name, num_partitions, replication_factor, dict(configs or {}))
        self._run(self._create_topics, [topic], validate_only, True, timeout=timeout)

    def create_topics(
        self,
        topics: Sequence[NewTopic],
        *,
        validate_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        self._run(self._create_topics, list(topics), validate_only, False, timeout=timeout)

    async def _create_topics(
        self, topics: list[NewTopic], validate_only: bool, single: bool
    ) -> None:
        request = CreateTopicsRequest(
            topics=[
                CreateTopicsRequest.CreatableTopic(
                    name=t.name,
                    num_partitions=t.num_partitions if not t.replica_assignment else -1,
                    replication_factor=t.replication_factor if not t.replica_assignment else -1,
                    assignments=[
                        CreateTopicsRequest.CreatableReplicaAssignment(
                            partition_index=p, broker_ids=list(brokers)
                        )
                        for p, brokers in sorted((t.replica_assignment or {}).items())
                    ],
                    configs=[
                        CreateTopicsRequest.CreatableTopicConfig(name=k, value=str(v))
                        for k, v in t.configs.items()
                    ],
                )
                for t in topics
            ],
            timeout_ms=self.config["request_timeout_ms"],
            validate_only=validate_only,
        )
        response = await self._controller_request(request)
        errors = {
            t.name: error_for(
                t.error_code, f"topic {t.name!r}: {t.error_message or ''}".rstrip(": ")
            )
            for t in response.topics
            if t.error_code
        }
        _raise_collected(errors, single)

    def delete_topic(self, name: str, timeout: float | None = None) -> None:
        self._run(self._delete_topics, [name], True, timeout=timeout)

    def delete_topics(self, names: Iterable[str], timeout: float | None = None) -> None:
        self._run(self._delete_topics, list(names), False, timeout=timeout)

    async def _delete_topics(self, names: list[str], single: bool) -> None:
        request = DeleteTopicsRequest(
            topics=[DeleteTopicsRequest.DeleteTopicState(name=n) for n in names],
            topic_names=names,
            timeout_ms=self.config["request_timeout_ms"],
        )
        response = await self._controller_request(request)
        errors = {
            r.name: error_for(
                r.error_code, f"topic {r.name!r}: {r.error_message or ''}".rstrip(": ")
            )
            for r in response.responses
            if r.error_code
        }
        _raise_collected(errors, single)

    def list_topics(
        self, include_internal: bool = False, timeout: float | None = None
    ) -> list[str]:
        return sorted(
            t.name
            for t in self.describe_topics(timeout=timeout)
            if include_internal or not t.is_internal
        )

    def describe_topics(
        self, names: Iterable[str] | None = None, timeout: float | None = None
    ) -> list[TopicDescription]:
        """Partitions with leader, replicas and ISR, sorted by topic. ``names=None``
        describes every topic; a missing named topic raises
        ``UnknownTopicOrPartitionError``."""
        wanted = None if names is None else list(names)
        return self._run(self._describe_topics, wanted, timeout=timeout)

    async def _describe_topics(self, names: list[str] | None) -> list[TopicDescription]:
        response = await self._cluster.refresh_metadata(names)
        out = []
        errors = {}
        for t in response.topics:
            if t.error_code:
                errors[t.name] = error_for(t.error_code, f"topic {t.name!r}")
                continue
            partitions = [
                PartitionDescription(
                    partition=p.partition_index,
                    leader=p.leader_id,
                    replicas=list(p.replica_nodes),
                    isr=list(p.isr_nodes),
                    offline_replicas=list(p.offline_replicas),
                    leader_epoch=p.leader_epoch,
                    error_code=p.error_code,
                )
                for p in sorted(t.partitions, key=lambda p: p.partition_index)
            ]
            topic_id = str(t.topic_id) if t.topic_id is not None and t.topic_id.int else None
            out.append(TopicDescription(t.name, partitions, t.is_internal, topic_id))
        _raise_collected(errors, names is not None and len(names) == 1)
        return sorted(out, key=lambda t: t.name)

    def create_partitions(
        self,
        topic: str,
        total_count: int,
        *,
        validate_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Grow ``topic`` to ``total_count`` partitions."""
        self._run(self._create_partitions, {topic: total_count}, validate_only, timeout=timeout)

    async def _create_partitions(self, counts: dict[str, int], validate_only: bool) -> None:
        request = CreatePartitionsRequest(
            topics=[
                CreatePartitionsRequest.CreatePartitionsTopic(name=t, count=c, assignments=None)
                for t, c in counts.items()
            ],
            timeout_ms=self.config["request_timeout_ms"],
            validate_only=validate_only,
        )
        response = await self._controller_request(request)
        errors = {
            r.name: error_for(
                r.error_code, f"topic {r.name!r}: {r.error_message or ''}".rstrip(": ")
            )
            for r in response.results
            if r.error_code
        }
        _raise_collected(errors, len(counts) == 1)

    # -- configs -------------------------------------------------------------------------

    def describe_configs(
        self,
        resources: Sequence[ConfigResource],
        *,
        include_synonyms: bool = False,
        timeout: float | None = None,
    ) -> dict[ConfigResource, dict[str, ConfigEntry]]:
        return self._run(self._describe_configs, list(resources), include_synonyms, timeout=timeout)

    def describe_topic_config(self, topic: str) -> dict[str, ConfigEntry]:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        return self.describe_configs([resource])[resource]

    def describe_broker_config(self, broker_id: int) -> dict[str, ConfigEntry]:
        resource = ConfigResource(ConfigResourceType.BROKER, str(broker_id))
        return self.describe_configs([resource])[resource]

    async def _describe_configs(
        self, resources: list[ConfigResource], include_synonyms: bool
    ) -> dict[ConfigResource, dict[str, ConfigEntry]]:
        result: dict[ConfigResource, dict[str, ConfigEntry]] = {}
        errors = {}
        for resource in resources:
            request = DescribeConfigsRequest(
                resources=[
                    DescribeConfigsRequest.DescribeConfigsResource(
                        resource_type=int(resource.type),
                        resource_name=resource.name,
                        configuration_keys=None,
                    )
                ],
                include_synonyms=include_synonyms,
                include_documentation=False,
            )
            response = await self._config_request(resource, request)
            for r in response.results:
                if r.error_code:
                    errors[resource] = error_for(
                        r.error_code, f"{resource.name}: {r.error_message or ''}".rstrip(": ")
                    )
                    continue
                result[resource] = {
                    c.name: ConfigEntry(
                        name=c.name,
                        value=c.value,
                        source=_config_source(c.config_source, c.is_default),
                        read_only=c.read_only,
                        is_sensitive=c.is_sensitive,
                        synonyms=[
                            ConfigSynonym(s.name, s.value, _config_source(s.source, False))
                            for s in c.synonyms
                        ],
                        documentation=c.documentation,
                    )
                    for c in r.configs
                }
        _raise_collected(errors, len(resources) == 1)
        return result

    async def _config_request(self, resource: ConfigResource, request: Any) -> Any:
        # Broker resources must be answered by that broker; topics by anyone.
        if (
            resource.type in (ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER)
            and resource.name
        ):
            if int(resource.name) not in self._cluster.brokers:
                await self._cluster.refresh_metadata(None)
            if int(resource.name) in self._cluster.brokers:
                return await self._cluster.request(int(resource.name), request)
        return await self._controller_request(request)

    def alter_configs(
        self,
        resource: ConfigResource,
        ops: Sequence[AlterConfigOp],
        *,
        validate_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Incremental alter (IncrementalAlterConfigs): SET/DELETE/APPEND/SUBTRACT."""
        self._run(self._alter_configs, resource, list(ops), validate_only, timeout=timeout)

    def alter_topic_config(
        self, topic: str, set: Mapping[str, str] | None = None, delete: Iterable[str] = ()
    ) -> None:
        ops = [AlterConfigOp(k, str(v)) for k, v in (set or {}).items()]
        ops += [AlterConfigOp(k, None, op=1) for k in delete]  # type: ignore[arg-type]
        self.alter_configs(ConfigResource(ConfigResourceType.TOPIC, topic), ops)

    async def _alter_configs(
        self, resource: ConfigResource, ops: list[AlterConfigOp], validate_only: bool
    ) -> None:
        request = IncrementalAlterConfigsRequest(
            resources=[
                IncrementalAlterConfigsRequest.AlterConfigsResource(
                    resource_type=int(resource.type),
                    resource_name=resource.name,
                    configs=[
                        IncrementalAlterConfigsRequest.AlterableConfig(
                            name=op.name, config_operation=int(op.op), value=op.value
                        )
                        for op in ops
                    ],
                )
            ],
            validate_only=validate_only,
        )
        response = await self._config_request(resource, request)
        for r in response.responses:
            raise_for(r.error_code, f"{resource.name}: {r.error_message or ''}".rstrip(": "))

    # -- records and offsets -------------------------------------------------------------

    def list_offsets(
        self,
        specs: Mapping[TopicPartition, int | OffsetSpec],
        *,
        isolation_level: str = "read_uncommitted",
        timeout: float | None = None,
    ) -> dict[TopicPartition, OffsetAndTimestamp]:
        """Offsets by ``OffsetSpec.EARLIEST``/``LATEST``/``MAX_TIMESTAMP`` or a timestamp
        in ms (the first offset whose timestamp is at or after it; -1 if none)."""
        normalised = {TopicPartition(*tp): int(spec) for tp, spec in specs.items()}
        level = 1 if isolation_level == "read_committed" else 0
        return self._run(self._cluster.list_offsets, normalised, level, timeout=timeout)

    def delete_records(
        self, before: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> dict[TopicPartition, int]:
        """Delete records below each offset (-1 = the high watermark); returns each
        partition's new low watermark."""
        normalised = {TopicPartition(*tp): o for tp, o in before.items()}
        return self._run(self._delete_records, normalised, timeout=timeout)

    async def _delete_records(self, before: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        result: dict[TopicPartition, int] = {}
        errors = {}
        for node, tps in (await self._cluster.leaders_for(before)).items():
            topics: dict[str, list[Any]] = {}
            for tp in tps:
                topics.setdefault(tp.topic, []).append(
                    DeleteRecordsRequest.DeleteRecordsPartition(
                        partition_index=tp.partition, offset=before[tp]
                    )
                )
            request = DeleteRecordsRequest(
                topics=[
                    DeleteRecordsRequest.DeleteRecordsTopic(name=t, partitions=ps)
                    for t, ps in topics.items()
                ],
                timeout_ms=self.config["request_timeout_ms"],
            )
            response = await self._cluster.request(node, request)
            for t in response.topics:
                for p in t.partitions:
                    tp = TopicPartition(t.name, p.partition_index)
                    if p.error_code:
                        errors[tp] = error_for(p.error_code, f"{t.name}-{p.partition_index}")
                    else:
                        result[tp] = p.low_watermark
        _raise_collected(errors, len(before) == 1)
        return result

    # -- groups --------------------------------------------------------------------------

    def list_groups(
        self, states: Iterable[str] = (), timeout: float | None = None
    ) -> list[GroupListing]:
        """Every group on every broker, optionally only those in ``states``."""
        return self._run(self._list_groups, list(states), timeout=timeout)

    async def _list_groups(self, states: list[str]) -> list[GroupListing]:
        await self._cluster.refresh_metadata(None)
        out: dict[str, GroupListing] = {}
        for node in sorted(self._cluster.brokers):
            response = await self._cluster.request(node, ListGroupsRequest(states_filter=states))
            raise_for(response.error_code, f"ListGroups on broker {node}")
            for g in response.groups:
                state = g.group_state or None
                if states and state is not None and state not in states:
                    continue
                out[g.group_id] = GroupListing(
                    g.group_id, g.protocol_type, state, getattr(g, "group_type", None) or None
                )
        return sorted(out.values(), key=lambda g: g.group_id)

    def describe_groups(
        self, group_ids: Iterable[str], timeout: float | None = None
    ) -> list[GroupDescription]:
        return self._run(self._describe_groups, list(group_ids), timeout=timeout)

    def describe_group(self, group_id: str, timeout: float | None = None) -> GroupDescription:
        [description] = self.describe_groups([group_id], timeout=timeout)
        return description

    async def _describe_groups(self, group_ids: list[str]) -> list[GroupDescription]:
        out = []
        errors = {}
        for group_id in group_ids:
            node = await self._cluster.find_coordinator(group_id)
            response = await self._cluster.request(node, DescribeGroupsRequest(groups=[group_id]))
            for g in response.groups:
                if g.error_code:
                    errors[g.group_id] = error_for(g.error_code, f"group {g.group_id!r}")
                    continue
                consumer = g.protocol_type == "consumer"
                members = [
                    MemberDescription(
                        member_id=m.member_id,
                        group_instance_id=m.group_instance_id,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        assignment=decode_assignment(bytes(m.member_assignment))
                        if consumer and m.member_assignment
                        else [],
                    )
                    for m in g.members
                ]
                out.append(
                    GroupDescription(
                        g.group_id, g.group_state, g.protocol_type, g.protocol_data, members, node
                    )
                )
        _raise_collected(errors, len(group_ids) == 1)
        return out

    def delete_groups(self, group_ids: Iterable[str], timeout: float | None = None) -> None:
        ids = list(group_ids)
        self._run(self._delete_groups, ids, timeout=timeout)

    async def _delete_groups(self, group_ids: list[str]) -> None:
        errors = {}
        for group_id in group_ids:
            node = await self._cluster.find_coordinator(group_id)
            response = await self._cluster.request(
                node, DeleteGroupsRequest(groups_names=[group_id])
            )
            for r in response.results:
                if r.error_code:
                    errors[r.group_id] = error_for(r.error_code, f"group {r.group_id!r}")
        _raise_collected(errors, len(group_ids) == 1)

    def list_group_offsets(
        self,
        group_id: str,
        partitions: Iterable[tuple[str, int]] | None = None,
        timeout: float | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (all of them when ``partitions`` is None)."""
        wanted = None if partitions is None else as_topic_partitions(partitions)
        return self._run(self._fetch_offsets, group_id, wanted, timeout=timeout)

    async def _fetch_offsets(
        self, group_id: str, partitions: list[TopicPartition] | None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        node = await self._cluster.find_coordinator(group_id)
        conn = await self._cluster.connection(node)
        return await fetch_committed(conn, group_id, partitions)

    def describe_group_offsets(
        self, group_id: str, timeout: float | None = None
    ) -> list[GroupOffset]:
        """Committed offset, log end offset and lag of every partition the group has
        committed, sorted by topic and partition."""
        return self._run(self._group_offsets, group_id, timeout=timeout)

    async def _group_offsets(self, group_id: str) -> list[GroupOffset]:
        committed = await self._fetch_offsets(group_id, None)
        ends = await self._cluster.list_offsets({tp: OffsetSpec.LATEST for tp in committed})
        out = []
        for tp, om in sorted(committed.items()):
            end = ends[tp].offset
            lag = max(0, end - om.offset) if om.offset >= 0 else end
            out.append(GroupOffset(tp.topic, tp.partition, om.offset, end, lag, om.metadata))
        return out

    def alter_group_offsets(
        self, group_id: str, offsets: Mapping[TopicPartition, int], timeout: float | None = None
    ) -> None:
        """Commit ``offsets`` for an inactive group (the coordinator rejects it while the
        group has members: ``UnknownMemberIdError``/``RebalanceInProgressError``)."""
        normalised = {TopicPartition(*tp): o for tp, o in offsets.items()}
        self._run(self._alter_offsets, group_id, normalised, timeout=timeout)

    async def _alter_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        node = await self._cluster.find_coordinator(group_id)
        conn = await self._cluster.connection(node)
        errors = await commit_offsets(
            conn, group_id, -1, "", None, {tp: OffsetAndMetadata(o) for tp, o in offsets.items()}
        )
        _raise_collected(errors, len(offsets) == 1)

    def reset_group_offsets(
        self,
        group_id: str,
        partitions: Iterable[tuple[str, int]],
        to: int | OffsetSpec,
        *,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> dict[TopicPartition, int]:
        """Move the group's offsets of ``partitions`` to ``OffsetSpec.EARLIEST``/``LATEST``
        or to the first offset at or after a timestamp (ms); returns the new offsets
        (committed unless ``dry_run``)."""
        tps = as_topic_partitions(partitions)
        found = self.list_offsets({tp: to for tp in tps}, timeout=timeout)
        ends = self.list_offsets({tp: OffsetSpec.LATEST for tp in tps}, timeout=timeout)
        plan = {tp: found[tp].offset if found[tp].offset >= 0 else ends[tp].offset for tp in tps}
        if not dry_run:
            self.alter_group_offsets(group_id, plan, timeout=timeout)
        return plan

    def delete_group_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]], timeout: float | None = None
    ) -> None:
        """OffsetDelete: forget the group's committed offsets of ``partitions``."""
        self._run(self._delete_offsets, group_id, as_topic_partitions(partitions), timeout=timeout)

    async def _delete_offsets(self, group_id: str, partitions: list[TopicPartition]) -> None:
        node = await self._cluster.find_coordinator(group_id)
        topics: dict[str, list[Any]] = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(
                OffsetDeleteRequest.OffsetDeleteRequestPartition(partition_index=tp.partition)
            )
        request = OffsetDeleteRequest(
            group_id=group_id,
            topics=[
                OffsetDeleteRequest.OffsetDeleteRequestTopic(name=t, partitions=ps)
                for t, ps in topics.items()
            ],
        )
        response = await self._cluster.request(node, request)
        raise_for(response.error_code, f"group {group_id!r}")
        errors = {
            TopicPartition(t.name, p.partition_index): error_for(
                p.error_code, f"{t.name}-{p.partition_index}"
            )
            for t in response.topics
            for p in t.partitions
            if p.error_code
        }
        _raise_collected(errors, len(partitions) == 1)


def _config_source(source: int, is_default: bool) -> ConfigSource:
    if source < 0:  # DescribeConfigs v0 has no source, only is_default
        return ConfigSource.DEFAULT_CONFIG if is_default else ConfigSource.UNKNOWN
    try:
        return ConfigSource(source)
    except ValueError:
        return ConfigSource.UNKNOWN
