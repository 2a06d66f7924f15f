"""A TCP relay that puts emulated network distance between a client and local servers.

The scan benchmark compares scanning one TLS host with scanning twenty at once. On loopback an
exchange costs next to nothing, which hides what concurrency buys against a real network; this
relay makes each local server look ``one_way_ms`` away. The kernel here has no netem qdisc, so
the delay is applied in user space.

For every upstream port the relay listens on a free port of 127.0.0.1. Each connection it
accepts is joined to a new connection to 127.0.0.1:<upstream>, and every chunk read from either
side is written to the other ``one_way_ms`` after it was read. Each direction is a delay line (a
queue of chunks with their due times): order is kept, and a burst is not delayed cumulatively.
An EOF is forwarded as a half close after the same delay; a reset or error closes the other side
once the data read before it has been delivered; a refused upstream closes the client's
connection.

The TCP handshake cannot be delayed in user space: ``connect()`` completes in the kernel against
the relay's listening socket. The relay adds ``one_way_ms`` to each direction of every byte
stream, so a request/response exchange costs 2 x ``one_way_ms`` more than on loopback, while
opening a connection costs no more (on a real network it costs one more round trip).

The relay runs in a process of its own, so it never shares a GIL with the servers or scanners
of the process that starts it:

    with relayed([server.port for server in servers], one_way_ms=20) as relay_port:
        scan(f"127.0.0.1:{relay_port[servers[0].port]}")

or by hand; it prints one JSON line, ``{"ports": {"<upstream>": <relay port>}}``, once it
listens, and runs until SIGTERM or SIGINT:

    .venv/bin/python -m benchmarks.latency_relay --one-way-ms 20 --upstream 8443

Only 127.0.0.1 is bound or contacted. Standard library only (plain asyncio, no uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
# The scan benchmark opens hundreds of short connections a second (sslyze: one per cipher suite).
BACKLOG = 1024
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parent.parent

# A direction stops reading its source while more than this is waiting in its delay line, so a
# fast sender cannot grow the relay without bound (it caps one stream at 8 MiB per one_way_ms).
_QUEUE_HIGH = 8 * 1024 * 1024
_QUEUE_LOW = _QUEUE_HIGH // 4
# asyncio runs a timer up to one clock tick early; a chunk that due is delivered with it.
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class _Signal(enum.Enum):
    """What ends one direction of a link, after its last chunk."""

    EOF = "eof"  # the source half-closed: half-close the sink
    CLOSE = "close"  # the source was reset, failed or closed: close the sink


class _Side(asyncio.Protocol):
    """One socket of a link: the accepted client's or the upstream server's."""

    # Set by the link: the direction that reads this socket, and the one that writes to it.
    outgoing: _Pipe
    incoming: _Pipe

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.link.side_connected(self)

    def data_received(self, data: bytes) -> None:
        self.outgoing.push(data)

    def eof_received(self) -> bool:
        self.outgoing.push(_Signal.EOF)
        return True  # keep the socket open: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.outgoing.push(_Signal.CLOSE)
        self.incoming.drop()
        self.link.side_lost()

    def pause_writing(self) -> None:
        self.incoming.set_sink_full(True)

    def resume_writing(self) -> None:
        self.incoming.set_sink_full(False)


class _Pipe:
    """One direction of a link: a delay line from the source socket to the sink socket."""

    def __init__(self, link: _Link, source: _Side, sink: _Side) -> None:
        self._link = link
        self._loop = link.loop
        self._delay = link.delay
        self._source = source
        self._sink = sink
        self._queue: deque[tuple[float, bytes | _Signal]] = deque()
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sink_full = False
        self._source_paused = False
        self.ended = False  # the end is queued: nothing more is taken from the source
        self.finished = False  # the end was delivered, or the sink is gone

    def push(self, item: bytes | _Signal) -> None:
        """Queue what was just read from the source, due ``delay`` from now."""
        if self.ended or self.finished:
            return
        if isinstance(item, bytes):
            self._queued_bytes += len(item)
        else:
            self.ended = True
        self._queue.append((self._loop.time() + self._delay, item))
        if self._timer is None:
            if self._delay > 0:
                self._timer = self._loop.call_at(self._queue[0][0], self._deliver)
            else:
                self._deliver()
        self._throttle()

    def drop(self) -> None:
        """The sink is gone: forget what is queued and take nothing more."""
        self.finished = True
        self._queue.clear()
        self._queued_bytes = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def set_sink_full(self, full: bool) -> None:
        self._sink_full = full
        self._throttle()

    def _deliver(self) -> None:
        """Write every chunk now due, in one go, and wait for the next one's due time."""
        self._timer = None
        now = self._loop.time() + _CLOCK_RESOLUTION
        queue = self._queue
        chunks: list[bytes] = []
        end: _Signal | None = None
        while queue and queue[0][0] <= now:
            item = queue.popleft()[1]
            if isinstance(item, bytes):
                chunks.append(item)
            else:
                end = item
        transport = self._sink.transport
        writable = transport is not None and not transport.is_closing()
        if chunks:
            self._queued_bytes -= sum(map(len, chunks))
            if transport is not None and writable:
                transport.writelines(chunks)
        if end is not None:
            self.finished = True
            if transport is not None and writable:
                try:
                    if end is _Signal.EOF and transport.can_write_eof():
                        transport.write_eof()
                    else:
                        transport.close()
                except OSError:  # the peer went away meanwhile
                    transport.close()
            self._link.pipe_finished()
        elif queue:
            self._timer = self._loop.call_at(queue[0][0], self._deliver)
        self._throttle()

    def _throttle(self) -> None:
        """Stop reading the source while the sink or the delay line is full."""
        transport = self._source.transport
        if transport is None or self.ended:
            return
        if self._source_paused:
            if not self._sink_full and self._queued_bytes <= _QUEUE_LOW:
                self._source_paused = False
                transport.resume_reading()
        elif self._sink_full or self._queued_bytes > _QUEUE_HIGH:
            self._source_paused = True
            transport.pause_reading()


class _Link:
    """One relayed connection: the client's socket, the upstream's, and a pipe each way."""

    def __init__(self, relay: _Relay, upstream_port: int) -> None:
        self.loop = relay.loop
        self.delay = relay.delay
        self._relay = relay
        self._upstream_port = upstream_port
        self._connecting: asyncio.Task[None] | None = None
        self.client = _Side(self)
        self.upstream = _Side(self)
        forward = _Pipe(self, self.client, self.upstream)
        backward = _Pipe(self, self.upstream, self.client)
        self.client.outgoing = self.upstream.incoming = forward
        self.upstream.outgoing = self.client.incoming = backward

    def side_connected(self, side: _Side) -> None:
        if side is self.client and side.transport is not None:
            self._relay.links.add(self)
            # Nothing is read from the client until there is somewhere to send it.
            side.transport.pause_reading()
            self._connecting = self.loop.create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        client = self.client.transport
        assert client is not None
        try:
            await self.loop.create_connection(lambda: self.upstream, HOST, self._upstream_port)
        except OSError:
            client.close()
            return
        if client.is_closing():
            self.abort()
        else:
            client.resume_reading()

    def pipe_finished(self) -> None:
        if self.client.outgoing.finished and self.upstream.outgoing.finished:
            for side in (self.client, self.upstream):
                if side.transport is not None:
                    side.transport.close()

    def side_lost(self) -> None:
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            self._relay.links.discard(self)

    def abort(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()


class _Relay:
    """The listening sockets, one per upstream port, and the links they accepted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, one_way_ms: float) -> None:
        self.loop = loop
        self.delay = one_way_ms / 1000
        self.links: set[_Link] = set()
        self.servers: dict[int, asyncio.Server] = {}

    async def listen(self, upstream_ports: Sequence[int]) -> dict[int, int]:
        """Listen for every upstream port; return upstream port -> relay port."""
        for upstream_port in dict.fromkeys(upstream_ports):
            self.servers[upstream_port] = await self.loop.create_server(
                self._links_to(upstream_port), HOST, 0, backlog=BACKLOG
            )
        return {
            upstream_port: int(server.sockets[0].getsockname()[1])
            for upstream_port, server in self.servers.items()
        }

    def _links_to(self, upstream_port: int) -> Callable[[], _Side]:
        return lambda: _Link(self, upstream_port).client

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        for link in list(self.links):
            link.abort()


class _StdinWatch(asyncio.Protocol):
    """Stops the relay when its standard input closes: the process that started it is gone."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def serve(upstream_ports: Sequence[int], one_way_ms: float, watch_stdin: bool) -> None:
    """Relay until SIGTERM or SIGINT (or, with ``watch_stdin``, until stdin closes)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    relay = _Relay(loop, one_way_ms)
    ports = await relay.listen(upstream_ports)
    if watch_stdin:
        await loop.connect_read_pipe(lambda: _StdinWatch(stop), sys.stdin)
    print(json.dumps({"ports": {str(upstream): port for upstream, port in ports.items()}}))
    sys.stdout.flush()
    await stop.wait()
    relay.close()


def _read_ports(
    process: subprocess.Popen[bytes], upstream_ports: Sequence[int], timeout: float
) -> dict[int, int]:
    """The relay's readiness line, read without blocking past ``timeout`` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError(f"the latency relay did not report its ports in {timeout:g} s")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(
                    f"the latency relay stopped before reporting its ports "
                    f"(exit status {process.poll()}; see its stderr)"
                )
            line += chunk
    ports = {int(upstream): int(port) for upstream, port in json.loads(line)["ports"].items()}
    if missing := set(upstream_ports) - ports.keys():
        raise RuntimeError(f"the latency relay reported no port for {sorted(missing)}")
    return ports


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


@contextmanager
def relayed(upstream_ports: Sequence[int], one_way_ms: float) -> Iterator[dict[int, int]]:
    """A relay process in front of ``upstream_ports`` on 127.0.0.1, adding ``one_way_ms`` to
    each direction; yields upstream port -> relay port, and stops the process on exit."""
    command = [sys.executable, "-m", "benchmarks.latency_relay"]
    command += ["--one-way-ms", repr(float(one_way_ms)), "--exit-on-stdin-eof"]
    for port in upstream_ports:
        command += ["--upstream", str(port)]
    # Its own process group, so a Ctrl-C meant for the caller does not interrupt the relay
    # mid-start; the caller stops it here, and it stops by itself if the caller dies.
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
        process_group=0,
    )
    try:
        yield _read_ports(process, upstream_ports, READY_TIMEOUT)
    finally:
        _stop(process)


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return port


def _delay(text: str) -> float:
    milliseconds = float(text)
    if not 0 <= milliseconds < 60_000:
        raise argparse.ArgumentTypeError(f"not a one-way delay in milliseconds: {text}")
    return milliseconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--one-way-ms", type=_delay, required=True, help="delay added to each direction"
    )
    parser.add_argument(
        "--upstream",
        type=_port,
        action="append",
        required=True,
        help="a port on 127.0.0.1 to relay (repeatable)",
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when standard input closes (how relayed() outlives no caller)",
    )
    options = parser.parse_args(argv)
    asyncio.run(serve(options.upstream, options.one_way_ms, options.exit_on_stdin_eof))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
