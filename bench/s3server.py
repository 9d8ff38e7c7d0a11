"""moto's S3 server in its own process, counting the requests it serves by S3 operation.

The same server as `moto_server` (moto's WSGI app on werkzeug's threaded server, with moto's
request handler), plus a counter in front of it. Counting at the server sees every
contender alike, whatever its language or client library. `GET /_bench/requests` returns the
counts as JSON; `?reset=1` also zeroes them (and the byte counts). `GET /_bench/bytes` returns
the request body bytes of every upload (PutObject and UploadPart, by operation): what a tool
sent of its photos, which a copy inside the bucket (CopyObject) does not count in.

`--keep-alive` serves the same app from gunicorn's threaded worker (one process, keep-alive
connections) instead: werkzeug's server answers every request with "Connection: close", so
each request costs a new TCP connection, which loopback hides but a far client pays a round
trip for (bench/wan.py). `GET /_bench/pid` returns the serving process's id (gunicorn's
worker, not the arbiter the harness started), for its CPU time.

Two options make a ListObjectsV2 page cost the server about what it costs S3, a few
milliseconds whatever the bucket holds, rather than more than a far link's round trip:
`--indexed-listing` answers it (without a delimiter) from a sorted index of the bucket's key
names (bench/moto_listing.py), where moto sorts every key of the bucket for every page;
`--direct-list-xml` writes its XML with a few string joins (bench/moto_list_xml.py), where
moto's generic serializer takes about 0.25 s for 1,000 keys. `--self-check` first compares
each one given with moto's own (pages of awkward names; whole responses) and stops the
server (exit 1) if anything differs.

Run: python bench/s3server.py [--port 0] [--keep-alive] [--indexed-listing]
[--direct-list-xml] [--self-check]; it prints {"port": N, "listing": "..."} on its first
line (`listing`: how ListObjectsV2 is served, with the self-checks' results).
"""

import argparse
import json
import logging
import os
import sys
import threading
from collections import Counter
from urllib.parse import parse_qs

import moto_list_xml
import moto_listing
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

COUNTS_PATH = "/_bench/requests"
BYTES_PATH = "/_bench/bytes"
PID_PATH = "/_bench/pid"
KEEP_ALIVE_SECONDS = 120  # longer than any pause of a run between two requests
KEEP_ALIVE_THREADS = 64  # requests served at once (one GIL: this is not a speed setting)
UPLOADS = ("PutObject", "UploadPart")


def bucket_operation(method: str, query: set[str], has_bucket: bool) -> str:
    if method == "GET":
        if "list-type" in query:
            return "ListObjectsV2"
        for name, operation in (
            ("location", "GetBucketLocation"),
            ("uploads", "ListMultipartUploads"),
            ("versions", "ListObjectVersions"),
        ):
            if name in query:
                return operation
        return "ListObjects" if has_bucket else "ListBuckets"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    simple = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
    return simple.get(method, f"{method} bucket")


def object_operation(method: str, query: set[str], copy: bool) -> str:
    multipart = "uploadId" in query
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        return "CompleteMultipartUpload" if multipart else "CreateMultipartUpload"
    if method == "GET":
        return "ListParts" if multipart else "GetObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if multipart else "DeleteObject"
    return "HeadObject" if method == "HEAD" else f"{method} object"


def body_bytes(environ: dict) -> int:
    """The payload bytes of a request: aws-chunked bodies declare the decoded length."""
    declared = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH")
    return int(declared) if declared and declared.isdigit() else 0


def classify(environ: dict) -> str:
    """The S3 operation of a path-style request (every contender here uses path style)."""
    method = environ["REQUEST_METHOD"]
    query = set(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    bucket, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
    if key:
        return object_operation(method, query, "HTTP_X_AMZ_COPY_SOURCE" in environ)
    return bucket_operation(method, query, bool(bucket))


class CountingApp:
    def __init__(self, app):
        self.app = app
        self.counts: Counter[str] = Counter()
        self.uploaded: Counter[str] = Counter()  # request body bytes by upload operation
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == COUNTS_PATH:
            return self.report(environ, start_response)
        if path == BYTES_PATH:
            with self.lock:
                return self._json(start_response, dict(self.uploaded))
        if path == PID_PATH:
            return self._json(start_response, {"pid": os.getpid()})
        if not path.startswith("/moto-api"):  # the harness's own resets are not counted
            operation = classify(environ)
            size = body_bytes(environ) if operation in UPLOADS else 0
            with self.lock:
                self.counts[operation] += 1
                self.uploaded[operation] += size
        return self.app(environ, start_response)

    def report(self, environ, start_response):
        with self.lock:
            body = json.dumps(dict(self.counts)).encode()
            if "reset=1" in environ.get("QUERY_STRING", ""):
                self.counts.clear()
                self.uploaded.clear()
        return self._json(start_response, body)

    @staticmethod
    def _json(start_response, body):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def announce(port: int, listing: str) -> None:
    sys.stdout.write(json.dumps({"port": port, "listing": listing}) + "\n")
    sys.stdout.flush()


def serve_keep_alive(app, port: int, listing: str) -> None:
    """The app on gunicorn's gthread worker: one process (the counts live in it), threads,
    and connections kept open between requests."""
    from gunicorn.app.base import BaseApplication

    def ready(arbiter) -> None:
        announce(arbiter.LISTENERS[0].sock.getsockname()[1], listing)

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": f"127.0.0.1:{port}", "workers": 1, "worker_class": "gthread",
                "threads": KEEP_ALIVE_THREADS, "keepalive": KEEP_ALIVE_SECONDS,
                "worker_connections": 2048, "backlog": 2048, "timeout": 0,
                "graceful_timeout": 1, "loglevel": "warning", "when_ready": ready,
            }  # fmt: skip
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    Gunicorn().run()


def set_up_listing(args) -> str:
    """Install the listing options asked for, self-check them, and say how lists are served.

    Before the first request, in this process: gunicorn's worker is forked from it."""
    done = []
    if args.indexed_listing:
        moto_listing.install()
        done.append("pages from a sorted index of the bucket's names when no delimiter is "
                    "given (bench/moto_listing.py), not every key sorted for every page")  # fmt: skip
    if args.direct_list_xml:
        moto_list_xml.install()
        done.append("its XML written directly (bench/moto_list_xml.py), not by moto's "
                    "serializer")  # fmt: skip
    checks = []
    if args.self_check:
        chosen = [(args.indexed_listing, moto_listing), (args.direct_list_xml, moto_list_xml)]
        for module in (module for wanted, module in chosen if wanted):
            identical, result = module.self_check()
            if not identical:
                sys.exit(f"--self-check of {module.__name__}: {result}")
            checks.append(f"{module.__name__}: {result}")
    if not done:
        return "moto's own (every key of the bucket sorted for every page, its serializer)"
    return "; ".join(done) + (f" (self-check: {'; '.join(checks)})" if checks else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep-alive", action="store_true", help="gunicorn, keep-alive")
    parser.add_argument("--indexed-listing", action="store_true",
                        help="ListObjectsV2 without a delimiter from a sorted index of names")  # fmt: skip
    parser.add_argument("--direct-list-xml", action="store_true",
                        help="ListObjectsV2's XML written directly, not by moto's serializer")  # fmt: skip
    parser.add_argument("--self-check", action="store_true",
                        help="compare the two above (those given) with moto's own first")  # fmt: skip
    args = parser.parse_args()
    listing = set_up_listing(args)
    print(f"ListObjectsV2: {listing}", file=sys.stderr, flush=True)
    # One log line per request on stderr would cost the server time during every run.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    if args.keep_alive:
        serve_keep_alive(app, args.port, listing)
        return
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    announce(server.server_port, listing)
    server.serve_forever()


if __name__ == "__main__":
    main()
