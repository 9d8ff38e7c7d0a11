"""A fault-injecting HTTP proxy on 127.0.0.1, between photosite and moto's server.

The standard library's ThreadingHTTPServer takes each request (keep-alive, `Expect:
100-continue` and all); a test's `fault(request)` says what to do with it: forward it
(None), or one of the actions below. Every request is logged with when it came and whether
it was answered, so a test can time how long a process took to give up after the first
request it got no answer to.

Also here: `black_hole()`, a listening socket whose backlog is full, so that SYNs go
unanswered (the kernel drops them) and a connection times out.
"""

import http.client
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "expect", "transfer-encoding", "proxy-connection"}


@dataclass
class Seen:
    """A request as the proxy received it."""

    method: str
    path: str  # with the query
    at: float  # time.monotonic() when its headers were read
    size: int = 0  # bytes of body
    body_read_at: float = 0.0  # when the whole body had been read
    answered: bool = False
    in_flight: int = 0  # requests the proxy was handling when this one came, itself included

    @property
    def key(self) -> str:
        """The object key the request is about, '' for a bucket-level request."""
        parts = self.path.split("?", 1)[0].lstrip("/").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def operation(self) -> str:
        query = self.path.partition("?")[2]
        if self.method == "GET" and not self.key:
            return "ListMultipartUploads" if "uploads" in query else "ListObjectsV2"
        if self.method == "PUT" and "partNumber=" in query:
            return "UploadPart"
        if self.method == "POST":
            return "CompleteMultipartUpload" if "uploadId=" in query else "CreateMultipartUpload"
        return {"PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            self.method, "GetObject"
        )


# What a fault returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class Silent:
    """Take the request, then never answer (the connection stays open)."""


@dataclass(frozen=True)
class Reset:
    """Take the request, then (`after` seconds later) reset the connection (TCP RST)."""

    after: float = 0


@dataclass(frozen=True)
class StallBody:
    """Forward it, then send the status, the headers and half the body, and nothing more."""


@dataclass(frozen=True)
class Answer:
    """Answer with an S3 error instead of forwarding."""

    status: int
    code: str
    extra: str = ""  # more XML elements inside <Error>, e.g. "<Region>eu-west-1</Region>"


@dataclass(frozen=True)
class Throttle:
    """Read the request body at `rate` bytes a second, then forward it."""

    rate: int


@dataclass
class FaultProxy:
    upstream: str  # http://host:port of the real server
    fault: object = None  # callable(Seen) -> None | Silent | Reset | StallBody | Answer | Throttle
    log: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._active = 0  # requests being handled
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # releases the connections held silent
        self._server.shutdown()
        self._server.server_close()

    def seen(self, operation: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.log if operation is None or r.operation == operation]

    @property
    def first_unanswered(self) -> float | None:
        """When the first request that got no (whole) answer came in."""
        return next((r.at for r in self.seen() if not r.answered), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def server_bind(self):
        # A small receive buffer, inherited by every connection, so that a throttled read
        # holds the sender back instead of the kernel taking megabytes on its behalf.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_any(self):
        owner = self.owner
        seen = Seen(self.command, self.path, time.monotonic())
        with owner._lock:
            owner.log.append(seen)
            owner._active += 1
            seen.in_flight = owner._active
        try:
            self._handle(owner, seen)
        finally:
            with owner._lock:
                owner._active -= 1

    def _handle(self, owner: FaultProxy, seen: Seen):
        action = owner.fault(seen) if owner.fault is not None else None
        length = int(self.headers.get("Content-Length") or 0)
        seen.size = length
        body = self._read_body(length, action.rate if isinstance(action, Throttle) else None)
        seen.body_read_at = time.monotonic()
        match action:
            case Silent():
                owner._closing.wait()
                self.close_connection = True
            case Reset(after):
                owner._closing.wait(after)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
            case Answer(status, code, extra):
                xml = f"<Error><Code>{code}</Code><Message>injected</Message>{extra}</Error>"
                self._reply(status, {"Content-Type": "application/xml"}, xml.encode())
                seen.answered = True
            case StallBody():
                status, headers, payload = self._forward(body)
                self._reply(status, headers, payload[: len(payload) // 2], length=len(payload))
                owner._closing.wait()
                self.close_connection = True
            case _:
                self._reply(*self._forward(body))
                seen.answered = True

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_any

    def _read_body(self, length: int, rate: int | None) -> bytes:
        if rate is None:
            return self.rfile.read(length)
        chunks, started, taken = [], time.monotonic(), 0
        while taken < length:
            chunk = self.rfile.read(min(16 * 1024, length - taken))
            chunks.append(chunk)
            taken += len(chunk)
            ahead = taken / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        return b"".join(chunks)

    def _forward(self, body: bytes) -> tuple[int, dict, bytes]:
        target = urlsplit(self.owner.upstream)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in HOP_BY_HOP | {"content-length"}
            }
            if self.command == "HEAD":
                kept["Content-Length"] = response.getheader("Content-Length", "0")
            return response.status, kept, payload
        finally:
            upstream.close()

    def _reply(self, status: int, headers: dict, payload: bytes, *, length: int | None = None):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


def black_hole() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket nobody accepts on, its backlog already full: the kernel drops
    further SYNs, so connecting to it times out (as a firewall that drops packets would)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    time.sleep(0.1)
    return listener, fillers
