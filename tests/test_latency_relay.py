"""The latency relay of the scan benchmark, in front of a plain TCP echo server on 127.0.0.1:
bytes intact, the delay applied each way, half close, a refused upstream, and clean stopping."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from pathlib import Path

import pytest

from benchmarks.latency_relay import HOST, relayed

ONE_WAY_MS = 40.0
# What the echo server sends after the client's EOF, before it closes: proof it saw the EOF.
EOF_REPLY = b"<eof seen>"
TIMEOUT = 5.0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(TIMEOUT)
        while data := connection.recv(65536):
            connection.sendall(data)
        connection.sendall(EOF_REPLY)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    with _EchoServer((HOST, 0), _EchoHandler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        yield int(server.server_address[1])
        server.shutdown()
        thread.join(TIMEOUT)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def closed_port() -> int:
    return _unused_port()


@pytest.fixture(scope="module")
def relay_ports(echo_port: int, closed_port: int) -> Iterator[dict[int, int]]:
    with relayed([echo_port, closed_port], ONE_WAY_MS) as ports:
        yield ports


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection((HOST, port), timeout=TIMEOUT)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _read_to_eof(connection: socket.socket) -> bytes:
    received = bytearray()
    while chunk := connection.recv(1 << 20):
        received += chunk
    return bytes(received)


def _exchange(port: int, chunks: Sequence[bytes]) -> bytes:
    """Send ``chunks`` then half-close (from a thread, so a large echo cannot deadlock);
    return everything received up to the server's EOF."""
    with _connect(port) as connection:

        def send() -> None:
            for chunk in chunks:
                connection.sendall(chunk)
            connection.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = _read_to_eof(connection)
        sender.join(TIMEOUT)
    return received


def _relay_processes() -> set[int]:
    """The latency relays this process started that are still running (or unreaped)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"benchmarks.latency_relay" in command:
            found.add(int(entry.name))
    return found


def test_bytes_come_back_intact(relay_ports: dict[int, int], echo_port: int) -> None:
    chunks = [b"hello", bytes(range(256)) * 4, os.urandom(1024 * 1024), b"", b"last"]
    received = _exchange(relay_ports[echo_port], chunks)
    assert received == b"".join(chunks) + EOF_REPLY


def test_a_round_trip_costs_at_least_twice_the_one_way_delay(
    relay_ports: dict[int, int], echo_port: int
) -> None:
    with _connect(relay_ports[echo_port]) as connection:
        started = time.monotonic()
        connection.sendall(b"ping")
        received = b""
        while len(received) < 4:
            chunk = connection.recv(4 - len(received))
            assert chunk, "the relay closed the connection"
            received += chunk
        elapsed = time.monotonic() - started
    assert received == b"ping"
    # A lower bound only: the delay is applied. How fast the relay is, is not tested here.
    assert elapsed >= 2 * ONE_WAY_MS / 1000


def test_half_close_reaches_the_server_and_the_reply_still_comes_back(
    relay_ports: dict[int, int], echo_port: int
) -> None:
    with _connect(relay_ports[echo_port]) as connection:
        connection.sendall(b"question")
        connection.shutdown(socket.SHUT_WR)
        assert _read_to_eof(connection) == b"question" + EOF_REPLY
        assert connection.recv(1) == b""


def test_a_refused_upstream_closes_the_client_connection(
    relay_ports: dict[int, int], closed_port: int
) -> None:
    # A reset is as good as an EOF: either way the client is not left hanging.
    with _connect(relay_ports[closed_port]) as connection, suppress(ConnectionResetError):
        assert connection.recv(1) == b""


def test_the_relay_process_is_gone_after_the_block(
    echo_port: int, capfd: pytest.CaptureFixture[str]
) -> None:
    before = _relay_processes()
    with relayed([echo_port], 0) as ports:
        running = _relay_processes() - before
        assert len(running) == 1
        assert _exchange(ports[echo_port], [b"x"]) == b"x" + EOF_REPLY
    assert not running & _relay_processes()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, ports[echo_port]), timeout=TIMEOUT).close()
    # Stopped by SIGTERM, quietly: no traceback on its stderr (which is the test's).
    assert capfd.readouterr().err == ""


def test_the_relay_process_is_gone_after_an_exception(echo_port: int) -> None:
    before = _relay_processes()
    with pytest.raises(RuntimeError, match="inside the block"), relayed([echo_port], 0):
        running = _relay_processes() - before
        raise RuntimeError("inside the block")
    assert len(running) == 1
    assert not running & _relay_processes()
