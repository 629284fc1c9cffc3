"""Fixtures for controller tests: a real metadata log in a tmp dir, replayed into an image.

Tests drive async code with ``trio.run`` (no pytest-trio plugin needed)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from klog.controller import (
    Endpoint,
    MetadataDelta,
    MetadataImage,
    MetadataLog,
    QuorumController,
)
from klog.segment import Log, LogConfig

NODE_ID = 1


@dataclass
class Cluster:
    """A controller over a metadata log in ``directory``, as a node opens it at startup."""

    directory: Path
    log: Log
    metadata_log: MetadataLog
    image: MetadataImage
    controller: QuorumController
    deltas: list[MetadataDelta] = field(default_factory=list)

    def close(self) -> None:
        self.log.flush()
        self.log.close()

    async def start(self, brokers: int = 1) -> None:
        """Bootstrap and register brokers 1..brokers (all unfenced)."""
        await self.controller.bootstrap()
        for broker_id in range(1, brokers + 1):
            await self.controller.register_broker(
                broker_id,
                uuid.uuid4(),
                [Endpoint("PLAINTEXT", "127.0.0.1", 9090 + broker_id, 0)],
                None,
            )

    async def write(self, records: list[Any]) -> None:
        """Commit records the controller has no decision for (fencing...), the way it does."""
        last = await self.metadata_log.append(records)
        self.image.apply_batch(records, last)


def open_cluster(
    directory: Path,
    *,
    seed: int = 0,
    config: LogConfig | None = None,
    clean: bool = False,
    **controller_options: Any,
) -> Cluster:
    log = Log.open(directory, config, had_clean_shutdown=clean)
    metadata_log = MetadataLog(log)
    image = MetadataImage()
    for records, last_offset in metadata_log.replay():
        image.apply_batch(records, last_offset)
    deltas: list[MetadataDelta] = []
    controller = QuorumController(
        NODE_ID,
        image,
        metadata_log,
        rng=random.Random(seed),
        on_commit=deltas.append,
        **controller_options,
    )
    return Cluster(directory, log, metadata_log, image, controller, deltas)


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    return tmp_path / "__cluster_metadata-0"


@pytest.fixture
def cluster_factory(metadata_dir: Path) -> Callable[..., Cluster]:
    """``cluster_factory(**options)`` opens (or reopens) the cluster in one tmp dir."""

    def factory(**options: Any) -> Cluster:
        return open_cluster(metadata_dir, **options)

    return factory


def _image_state(image: MetadataImage) -> tuple[Any, ...]:
    return (
        image.topics_by_name,
        {topic_id: topic.name for topic_id, topic in image.topics_by_id.items()},
        image.brokers,
        image.configs,
        image.features,
        image.last_offset,
    )


@pytest.fixture
def image_state() -> Callable[[MetadataImage], tuple[Any, ...]]:
    """``image_state(image)``: everything an image holds, comparable with ==."""
    return _image_state
