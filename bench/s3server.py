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

Run: python bench/s3server.py [--port 0] [--keep-alive]; it prints {"port": N} on its first
line.
"""

import argparse
import json
import logging
import os
import sys
import threading
from collections import Counter
from urllib.parse import parse_qs

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


def serve_keep_alive(app, port: int) -> None:
    """The app on gunicorn's gthread worker: one process (the counts live in it), threads,
    and connections kept open between requests."""
    from gunicorn.app.base import BaseApplication

    def ready(arbiter) -> None:
        sys.stdout.write(json.dumps({"port": arbiter.LISTENERS[0].sock.getsockname()[1]}) + "\n")
        sys.stdout.flush()

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep-alive", action="store_true", help="gunicorn, keep-alive")
    args = parser.parse_args()
    # One log line per request on stderr would cost the server time during every run.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    if args.keep_alive:
        serve_keep_alive(app, args.port)
        return
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    sys.stdout.write(json.dumps({"port": server.server_port}) + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
