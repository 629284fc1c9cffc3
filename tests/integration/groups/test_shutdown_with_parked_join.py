"""A graceful stop answers parked group requests instead of waiting for them."""

from __future__ import annotations

import threading

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic


def test_sigterm_does_not_wait_for_a_parked_join_group(klog_node_factory, wait_for) -> None:
    # A 60 s initial rebalance delay parks the first JoinGroup for 60 s; the node's
    # shutdown grace period is 30 s, so only answering it early lets the stop finish
    # inside the 15 s allowed below.
    node = klog_node_factory({"group.initial.rebalance.delay.ms": "60000"}).start()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic("parked", num_partitions=1)])["parked"].result(30)
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": node.bootstrap, "group.id": "parked-group"}
    )
    consumer.subscribe(["parked"])
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            consumer.poll(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        wait_for(
            lambda: "JoinGroup" in node.log_text() or _group_exists(admin),
            timeout=30,
            what="the consumer's JoinGroup to reach the coordinator",
        )
        assert node.stop(timeout=15) == 0
        assert "shutdown complete" in node.log_text()
    finally:
        stop.set()
        poller.join(10)
        consumer.close()


def _group_exists(admin: AdminClient) -> bool:
    result = admin.list_consumer_groups().result(10)
    return any(g.group_id == "parked-group" for g in result.valid)
