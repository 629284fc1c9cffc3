"""advertised.listeners: clients are told the advertised address; the log says both."""

from __future__ import annotations

from klog.wire import MetadataRequest
from tests.integration.wire_client import WireConnection


def test_metadata_advertises_the_configured_address(klog_node_factory) -> None:
    node = klog_node_factory({"advertised.listeners": "PLAINTEXT://broker.example:19999"}).start()
    # The harness dials the address from "klog listening on HOST:PORT": the bound one.
    assert node.host == "127.0.0.1" and node.port != 19999
    assert "(advertised as broker.example:19999)" in node.log_text()
    wire = WireConnection(node.bootstrap)
    try:
        metadata = wire.request(MetadataRequest(topics=[]), 12)
    finally:
        wire.close()
    assert [(b.host, b.port) for b in metadata.brokers] == [("broker.example", 19999)]
