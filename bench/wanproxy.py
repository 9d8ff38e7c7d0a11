"""A far link in front of a local server: a TCP proxy that adds a round trip and can cap the uplink.

A byte-stream proxy (it never parses HTTP) on 127.0.0.1, forwarding every connection to
`--upstream` (the bench's moto server):

- each direction waits half the round trip: every chunk read from one side is written to
  the other RTT/2 after it arrived, in order, through a per-connection delay line (a queue
  of stamped chunks), so a connection carries as much as its window allows while each byte
  arrives late, rather than one chunk per round trip;
- a new connection costs one round trip (the TCP handshake) before its first byte is
  forwarded: the first request on a fresh connection takes two round trips, later ones one;
- with `--uplink-mbit`, the client-to-server bytes of ALL connections share one link of that
  rate (one virtual clock: each chunk is sent when the link is free, takes size / rate, and
  only then starts its RTT/2). The downlink is not capped.

Not modelled: TCP slow start and congestion control, loss, and a window smaller than
WINDOW bytes a direction (so a single connection can fill any link here at once), and TLS
(one more round trip a connection on a real endpoint).

The settings can change while it runs: it reads one JSON object a line on standard input
(`{"rtt_ms": 50, "uplink_mbit": 100}` sets, `{"stats": true, "reset": true}` reads and zeroes
the counters) and answers each with one JSON line on standard output: its settings and the
counters (connections opened, the most open at once, bytes each way). It exits when its
standard input closes.

Run: python bench/wanproxy.py --upstream 127.0.0.1:PORT [--rtt-ms 50] [--uplink-mbit 100]
[--port 0]; it prints {"port": N} on its first line. `--selftest` checks it instead: the
round trips a request sees, its throughput against a direct connection, and the cap.
"""

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import suppress

CHUNK = 256 * 1024  # the largest read; a capped uplink reads less, to share the link finely
CAPPED_CHUNK = 32 * 1024
# A sleep overshoots by a millisecond or so: the uplink may catch up on that much idle time,
# or one connection alone could never fill it (one chunk, 2.6 ms at 100 Mbit/s, at a time).
UPLINK_SLACK = 0.005
WINDOW = 16 * 1024 * 1024  # bytes a direction holds in its delay line before it stops reading


class Link:
    """What every connection shares: the round trip, the uplink's clock, the counters."""

    def __init__(self, rtt_ms: float, uplink_mbit: float | None):
        self.rtt = 0.0
        self.rate: float | None = None  # uplink bytes a second
        self.free_at = 0.0  # when the uplink has sent every byte given to it so far
        self.configure(rtt_ms, uplink_mbit)
        self.reset()

    def configure(self, rtt_ms: float, uplink_mbit: float | None) -> None:
        self.rtt = rtt_ms / 1000
        self.rate = uplink_mbit * 1e6 / 8 if uplink_mbit else None
        self.free_at = 0.0

    def reset(self) -> None:
        self.opened = 0
        self.peak_open = 0
        self.open = 0
        self.up = 0
        self.down = 0

    def settings(self) -> dict:
        mbit = self.rate * 8 / 1e6 if self.rate else None
        return {"rtt_ms": self.rtt * 1000, "uplink_mbit": mbit}

    def stats(self) -> dict:
        return {"opened": self.opened, "peak_open": self.peak_open, "open": self.open,
                "up_bytes": self.up, "down_bytes": self.down}  # fmt: skip

    async def send_up(self, size: int) -> None:
        """Wait until the shared uplink has sent `size` more bytes after all queued before."""
        if self.rate is None:
            return
        now = asyncio.get_running_loop().time()
        self.free_at = max(now - UPLINK_SLACK, self.free_at) + size / self.rate
        if self.free_at > now:
            await asyncio.sleep(self.free_at - now)


class Window:
    """The bytes one direction holds in flight; its reader waits while it is full."""

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self.freed = asyncio.Event()

    async def take(self, size: int) -> None:
        while self.held and self.held + size > self.limit:
            self.freed.clear()
            await self.freed.wait()
        self.held += size

    def give(self, size: int) -> None:
        self.held -= size
        self.freed.set()


async def pump(link: Link, reader, writer, *, upstream: bool, opened: float) -> None:
    """One direction of one connection: read, stamp, and write each chunk RTT/2 later."""
    loop = asyncio.get_running_loop()
    line: deque[tuple[float, bytes]] = deque()
    arrived = asyncio.Event()
    window = Window(WINDOW)

    async def feed() -> None:
        if upstream:  # the handshake: nothing reaches the server before one round trip
            wait = opened + link.rtt - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        while True:
            chunk = await reader.read(CAPPED_CHUNK if upstream and link.rate else CHUNK)
            if upstream:
                await link.send_up(len(chunk))
                link.up += len(chunk)
            else:
                link.down += len(chunk)
            await window.take(len(chunk))
            line.append((loop.time() + link.rtt / 2, chunk))
            arrived.set()
            if not chunk:  # end of stream, forwarded in its turn
                return

    async def deliver() -> None:
        while True:
            while not line:
                arrived.clear()
                await arrived.wait()
            due, chunk = line.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()
            window.give(len(chunk))

    async with asyncio.TaskGroup() as group:
        group.create_task(feed())
        group.create_task(deliver())


class Proxy:
    def __init__(self, link: Link, upstream: tuple[str, int]):
        self.link = link
        self.upstream = upstream
        # The connections' tasks, held: once a client has half-closed, its socket is out of
        # the event loop's selector and asyncio's streams hold their readers only weakly, so
        # nothing else would keep a connection still answering alive.
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, client_reader, client_writer) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        link = self.link
        opened = asyncio.get_running_loop().time()
        link.opened += 1
        link.open += 1
        link.peak_open = max(link.peak_open, link.open)
        server_writer = None
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    pump(link, client_reader, server_writer, upstream=True, opened=opened)
                )
                group.create_task(
                    pump(link, server_reader, client_writer, upstream=False, opened=opened)
                )
        except* (ConnectionError, OSError):
            pass  # one side went away: close both
        except* asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            link.open -= 1
            for writer in (client_writer, server_writer):
                if writer is not None:
                    writer.close()
                    with suppress(ConnectionError, OSError):
                        await writer.wait_closed()


async def control(link: Link, server: asyncio.Server) -> None:
    """Commands on standard input, one JSON object a line; the answer on standard output."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line.strip() or b"{}")
        if "rtt_ms" in command:
            link.configure(float(command["rtt_ms"]), command.get("uplink_mbit"))
        answer = link.settings() | link.stats()
        if command.get("reset"):
            link.reset()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    server.close()


async def serve(args) -> None:
    host, _, port = args.upstream.rpartition(":")
    link = Link(args.rtt_ms, args.uplink_mbit)
    proxy = Proxy(link, (host or "127.0.0.1", int(port)))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, backlog=1024)
    sys.stdout.write(json.dumps({"port": server.sockets[0].getsockname()[1]}) + "\n")
    sys.stdout.flush()
    async with server:
        await control(link, server)


class WanProxy:
    """The proxy in its own process (its own GIL), driven through its standard input."""

    def __init__(self, upstream: str, *, rtt_ms: float = 0, uplink_mbit: float | None = None,
                 python: str = sys.executable):  # fmt: skip
        argv = [python, __file__, "--upstream", upstream, "--rtt-ms", str(rtt_ms)]
        if uplink_mbit:
            argv += ["--uplink-mbit", str(uplink_mbit)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.port = json.loads(self.process.stdout.readline())["port"]
        self.url = f"http://127.0.0.1:{self.port}"

    def _ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def configure(self, rtt_ms: float, uplink_mbit: float | None = None) -> dict:
        return self._ask({"rtt_ms": rtt_ms, "uplink_mbit": uplink_mbit})

    def stats(self, reset: bool = False) -> dict:
        return self._ask({"stats": True, "reset": reset})

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The self-test: a local echo/sink server, the proxy in front of it, and timings.


def _sink_server() -> int:
    """A thread serving: `e` + line echoes the line; `s` + N reads N bytes and answers `k`."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)

    def serve_one(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            while kind := stream.read(1):
                line = stream.readline()
                if kind == b"e":
                    conn.sendall(line)
                    continue
                left = int(line)
                while left:
                    left -= len(stream.read1(min(left, 1 << 20)))
                conn.sendall(b"k\n")

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _echo(conn: socket.socket) -> None:
    conn.sendall(b"eping\n")
    conn.recv(64)


def _send(port: int, size: int) -> float:
    """Seconds to send `size` bytes on a new connection until the server says it has them."""
    block = b"\0" * (1 << 20)
    start = time.perf_counter()
    with _connect(port) as conn:
        conn.sendall(b"s%d\n" % size)
        left = size
        while left:
            left -= conn.send(block[: min(left, len(block))])
        conn.recv(8)
    return time.perf_counter() - start


def selftest(sizes_mib: int = 512) -> None:
    sink = _sink_server()
    proxy = WanProxy(f"127.0.0.1:{sink}")
    try:
        for rtt in (20, 50, 100):
            proxy.configure(rtt)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                with _connect(proxy.port) as conn:
                    _echo(conn)
                    first = time.perf_counter() - start
                    again = time.perf_counter()
                    _echo(conn)
                    times.append((first, time.perf_counter() - again))
            first = statistics.median(t[0] for t in times) * 1000
            later = statistics.median(t[1] for t in times) * 1000
            print(f"RTT {rtt} ms: first request on a new connection {first:.1f} ms "
                  f"(expected {2 * rtt}), a later one {later:.1f} ms (expected {rtt})")  # fmt: skip
        proxy.configure(0)
        size = sizes_mib * 1024 * 1024
        direct = min(_send(sink, size) for _ in range(3))
        through = min(_send(proxy.port, size) for _ in range(3))
        print(f"{sizes_mib} MiB on one connection: direct {size * 8 / direct / 1e6:,.0f} Mbit/s, "
              f"through the proxy (no delay, no cap) {size * 8 / through / 1e6:,.0f} Mbit/s")  # fmt: skip
        for connections in (1, 8):
            proxy.configure(50, 100)
            each = 40 * 1024 * 1024 // connections
            start = time.perf_counter()
            threads = [threading.Thread(target=_send, args=(proxy.port, each))
                       for _ in range(connections)]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            expected = each * connections * 8 / 100e6 + 0.1  # the bytes at 100 Mbit/s + 2 RTT
            print(f"40 MiB over {connections} connection(s), 50 ms, 100 Mbit/s cap: "
                  f"{elapsed:.2f} s (expected {expected:.2f} s)")  # fmt: skip
    finally:
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", help="host:port of the server behind the link")
    parser.add_argument("--port", type=int, default=0, help="where to listen (default: any)")
    parser.add_argument("--rtt-ms", type=float, default=0, help="round trip added (ms)")
    parser.add_argument("--uplink-mbit", type=float, help="uplink cap, Mbit/s (none)")
    parser.add_argument("--selftest", action="store_true", help="check the proxy and exit")
    args = parser.parse_args()
    if args.selftest:
        selftest()
        return
    if not args.upstream:
        parser.error("--upstream is required")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
