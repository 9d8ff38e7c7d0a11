"""`scripts/serve` as an operator runs it: gunicorn, WhiteNoise and a worker, DEBUG off.

The script is started as a process with the production settings and a fresh SQLite file;
the test talks to it over HTTP only, as a browser behind a TLS proxy would.
"""

import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import closed_port

PROJECT = Path(__file__).resolve().parent.parent
STARTUP = 120  # migrate and collectstatic on a fresh database, on a busy 2-core machine

pytestmark = pytest.mark.timeout(240)


def get(port: int, path: str, headers=None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


PROXIED = {"X-Forwarded-Proto": "https"}  # what the TLS proxy in front adds


@pytest.fixture
def served(tmp_path):
    """scripts/serve on a free port; yields (port, process); stops it if the test did not."""
    port = closed_port()
    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "ALBUMS_", "Q_", "DJANGO_", "REDIS_", "DATABASE_"))
    }
    env = {
        **keep,
        "HOME": str(tmp_path),
        "DJANGO_SECRET_KEY": "serve-test-secret-key",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_BEHIND_PROXY": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "PHOTOS_ROOT": str(tmp_path / "photos"),
        "ALBUMS_LOCAL_BUCKET": str(tmp_path / "bucket"),
        "ALBUMS_THUMBNAIL_DIR": str(tmp_path / "thumbnails"),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PHOTOSITE_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "Q_WORKERS": "1",
    }
    env.pop("DJANGO_DEBUG", None)
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        ["scripts/serve"], cwd=PROJECT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives it
    )  # fmt: skip
    process.log = log
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            assert process.poll() is None, log.read_text()
            try:
                get(port, "/api/health/")
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        yield port, process
    finally:
        if process.poll() is None:  # the test failed before stopping it
            leftovers = children(process.pid)
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in [process.pid, *leftovers]:
                    os.killpg(pid, signal.SIGKILL)
                process.wait()


def test_serve_runs_the_site_with_static_files_and_a_worker_and_ctrl_c_stops_it(served):
    port, process = served

    status, _, body = get(port, "/admin/login/", PROXIED)
    assert status == 200, process.log.read_text()
    page = body.decode()
    assert "<title>Log in | photosite</title>" in page
    stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, "the stylesheet has no hashed name: no manifest storage"

    # The stylesheet, served by WhiteNoise: compressed, cached for good (its name is its hash).
    status, headers, body = get(port, stylesheet.group(1), {**PROXIED, "Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert headers["Content-Encoding"] == "gzip"
    assert "immutable" in headers["Cache-Control"]
    assert b"--body-fg" in gzip.decompress(body)

    # DEBUG is off: a missing page is a plain 404, not Django's technical page.
    status, _, body = get(port, "/no-such-page/", PROXIED)
    assert status == 404 and b"DEBUG = True" not in body and b"urlpatterns" not in body
    # HTTPS by default: a plain-HTTP request to a page is sent to https.
    status, headers, _ = get(port, "/admin/login/")
    assert (status, headers["Location"]) == (301, "https://127.0.0.1/admin/login/")

    # The worker started beside gunicorn reports in; the health check sees it.
    deadline = time.monotonic() + 30
    while not json.loads(get(port, "/api/health/")[2])["worker_seen"]:
        assert time.monotonic() < deadline, process.log.read_text()
        time.sleep(0.5)

    # Ctrl-C in a terminal signals the foreground process group: everything stops.
    started = children(process.pid)
    assert len(started) == 2  # gunicorn and qcluster
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130, process.log.read_text()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in started):
        assert time.monotonic() < deadline, "gunicorn or qcluster outlived scripts/serve"
        time.sleep(0.2)
    with pytest.raises(OSError):
        get(port, "/api/health/")
    assert "Q Cluster" in process.log.read_text() and "has stopped" in process.log.read_text()


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
