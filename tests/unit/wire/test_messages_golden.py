"""Golden bytes: the first requests real clients send decode and re-encode byte for byte.

Fixtures were recorded by ``scripts/capture_fixtures.py`` from confluent-kafka
(librdkafka 2.16), kafka-python, aiokafka and kcat (librdkafka 2.0.2); each file holds one
request payload (header + body, no size prefix) as hex, named
``<client>_<Request>_v<version>.hex``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from klog.wire import Request, ServerConnection, request_header_version

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wire"
FILES = sorted(FIXTURES.glob("*.hex"))
CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka", "kcat")


def received(path: Path) -> Request:
    frame = bytes.fromhex(path.read_text())
    server = ServerConnection()
    server.receive_data(struct.pack(">i", len(frame)) + frame)
    request = server.next_event()
    assert isinstance(request, Request)
    return request


def test_every_client_has_fixtures() -> None:
    names = {p.stem.rsplit("_v", 1)[0] for p in FILES}
    for client in CLIENTS:
        assert f"{client}_ApiVersionsRequest" in names
        assert f"{client}_MetadataRequest" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_captured_request_decodes_and_reencodes_byte_for_byte(path: Path) -> None:
    _client, api, version = path.stem.replace("_v", "_").split("_")
    request = received(path)
    assert request.error is None and request.body is not None
    assert (type(request.body).__name__, request.api_version) == (api, int(version))
    header_version = request_header_version(request.api_key, request.api_version)
    again = request.header.encode(header_version) + request.body.encode(request.api_version)
    assert again == bytes(request.frame)


def test_captured_requests_carry_what_the_clients_sent() -> None:
    kcat = received(FIXTURES / "kcat_ApiVersionsRequest_v3.hex")
    assert kcat.header.client_id == "rdkafka"
    assert (kcat.body.client_software_name, kcat.body.client_software_version) == (
        "librdkafka",
        "2.0.2",
    )
    confluent = received(FIXTURES / "confluent-kafka_MetadataRequest_v12.hex")
    assert confluent.body.topics == []  # librdkafka opens with a brokers-only request
    assert received(FIXTURES / "aiokafka_ApiVersionsRequest_v0.hex").body.encode(0) == b""
