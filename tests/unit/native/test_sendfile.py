"""sendfile_slice against real non-blocking sockets whose reader is slower than the writer."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Iterator

import pytest

SIZE = 4 << 20  # far more than the socket buffers hold, so writes must come back partial


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bytes]]:
    data = os.urandom(SIZE)
    path = tmp_path_factory.mktemp("sendfile") / "segment.log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    return client, peer


@pytest.fixture(params=["unix", "tcp"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    writer, reader = socket.socketpair() if request.param == "unix" else tcp_pair()
    writer.setblocking(False)
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    yield writer, reader
    writer.close()
    reader.close()


def wait_writable(sock: socket.socket, deadline: float) -> None:
    while time.monotonic() < deadline:
        if select.select([], [sock], [], 0.2)[1]:
            return
    raise AssertionError("socket never became writable")


def test_partial_writes_and_eagain_then_continuation_sends_exact_bytes(
    impl, data_file, pair
) -> None:
    fd, data = data_file
    writer, reader = pair
    offset, count = 12_345, SIZE - 20_000
    deadline = time.monotonic() + 60
    sent = 0
    received = bytearray()
    short_returns = zero_returns = 0
    while sent < count:
        n = impl.sendfile_slice(writer.fileno(), fd, offset + sent, count - sent)
        assert 0 <= n <= count - sent
        sent += n
        if sent == count:
            break
        short_returns += 1
        # The socket is full: an immediate retry must report 0, not block or raise.
        if impl.sendfile_slice(writer.fileno(), fd, offset + sent, count - sent) == 0:
            zero_returns += 1
        # A slow reader: small bites until the writer may continue.
        while not select.select([], [writer], [], 0)[1]:
            assert time.monotonic() < deadline, "socket never became writable"
            if select.select([reader], [], [], 0.2)[0]:
                received += reader.recv(16 * 1024)
    writer.shutdown(socket.SHUT_WR)
    while chunk := reader.recv(1 << 20):
        received += chunk
    assert received == data[offset : offset + count]
    assert short_returns > 0
    assert zero_returns > 0


def test_zero_count_sends_nothing(impl, data_file, pair) -> None:
    fd, _ = data_file
    writer, _reader = pair
    assert impl.sendfile_slice(writer.fileno(), fd, 0, 0) == 0


def test_slice_past_end_of_file_raises_enodata(impl, data_file, pair) -> None:
    fd, data = data_file
    writer, reader = pair
    with pytest.raises(OSError) as info:
        impl.sendfile_slice(writer.fileno(), fd, SIZE - 10, 100)
    assert info.value.errno == errno.ENODATA
    assert info.value.strerror == (
        f"file ends at offset {SIZE}, inside the slice [{SIZE - 10}, {SIZE + 90})"
    )
    # The bytes that did exist went out before the error.
    reader.settimeout(30)
    assert reader.recv(100) == data[SIZE - 10 :]


def test_peer_gone_raises_oserror(impl, data_file, pair) -> None:
    fd, _ = data_file
    writer, reader = pair
    reader.close()
    deadline = time.monotonic() + 30
    with pytest.raises(OSError) as info:
        # The first write after the close may still be accepted (TCP learns of the reset
        # from the peer's answer), so keep sending until the error arrives.
        while time.monotonic() < deadline:
            if impl.sendfile_slice(writer.fileno(), fd, 0, 1 << 16) == 0:
                wait_writable(writer, deadline)
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)


def test_bad_file_descriptor_raises_oserror(impl, pair) -> None:
    writer, _reader = pair
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as info:
        impl.sendfile_slice(writer.fileno(), fd, 0, 10)
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((-1, 0, 0, 1), ValueError, "sock_fd -1 out of fd range"),
        ((0, 1 << 31, 0, 1), ValueError, f"file_fd {1 << 31} out of fd range"),
        ((0, 0, -5, 1), ValueError, "offset -5 out of non-negative int64 range"),
        ((0, 0, 0, -1), ValueError, "count -1 out of non-negative int64 range"),
        ((0, 0, 0, 1.5), TypeError, "count must be int"),
        ((0, 0, 1 << 62, 1 << 62), ValueError, f"slice end {1 << 63} out of int64 range"),
    ],
)
def test_argument_errors(impl, args, exc, message) -> None:
    with pytest.raises(exc) as info:
        impl.sendfile_slice(*args)
    assert str(info.value) == message
