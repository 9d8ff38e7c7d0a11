import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

import boto3
import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from django.db import connections
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse
from moto.server import ThreadedMotoServer
from PIL import Image

from albums.models import Album
from albums.storage import forget_clients
from photosite.settings import photos_storage

PROJECT = Path(__file__).resolve().parent.parent
BUCKET = "photosite-test"
TEST_CLIENT_AGENT = "photosite-test-client"  # the tests' own requests are not counted
FAKE_SECRET = "FAKE-SECRET-Zq8xv2Lw9e"  # recognisable, so a test can prove it never leaks
S3_ENV = {
    "AWS_STORAGE_BUCKET_NAME": BUCKET,
    "AWS_ACCESS_KEY_ID": "FAKEACCESSKEY",
    "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    "AWS_S3_REGION_NAME": "us-east-1",
}


def pytest_configure(config):
    # A suite started in the background (`cmd &`, nohup, some CI runners) inherits SIGINT
    # ignored, as would every process its tests start: the tests of Ctrl-C need it delivered
    # as a terminal delivers it.
    signal.signal(signal.SIGINT, signal.default_int_handler)


class RequestLog:
    """S3 requests sent by any boto3 session created while it is installed, by operation.

    Installed as a botocore built-in handler (as moto installs its own), so it sees the
    per-thread sessions django-storages creates. A before-send handler may also return a
    response, which is how tests inject faults.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = Counter()
        self.keys = []
        self.fault = None  # callable(operation, request) -> AWSResponse | None

    def __call__(self, request, event_name, **kwargs):
        if TEST_CLIENT_AGENT in str(request.headers.get("User-Agent", "")):
            return None
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.counts[operation] += 1
            self.keys.append((operation, request.url))
        if self.fault is not None:
            return self.fault(operation, request)
        return None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self):
        with self._lock:
            self.counts.clear()
            self.keys.clear()


@pytest.fixture
def s3_requests():
    log = RequestLog()
    entry = ("before-send.s3", log)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    forget_clients()  # a client made before would not have the handler
    yield log
    botocore.handlers.BUILTIN_HANDLERS.remove(entry)
    forget_clients()


class Bucket:
    """The test's own view of the bucket, through a client the request log does not count."""

    def __init__(self, client, name):
        self.client = client
        self.name = name

    def object_keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


def s3_error(request, status: int, code: str = "") -> AWSResponse:
    """A response a fault hook returns: S3 answering `status` with error `code`."""
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>" if code else ""
    return AWSResponse(request.url, status, {}, MockRawResponse(body.encode()))


def s3_client(**kwargs):
    return boto3.client(
        "s3",
        region_name="us-east-1",
        config=Config(user_agent_extra=TEST_CLIENT_AGENT),
        aws_access_key_id="test",
        aws_secret_access_key="test",
        **kwargs,
    )


def run_manage(*args, env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` as an operator runs it: a new process, this environment only."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT, env={"PATH": os.environ["PATH"], **env},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def process_env(tmp_path: Path, endpoint: str, **extra) -> dict:
    """The environment of a manage.py process on a file database and the moto server."""
    return {
        "HOME": str(tmp_path),
        "DJANGO_SECRET_KEY": "e2e",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **S3_ENV,
        "AWS_S3_ENDPOINT_URL": endpoint,
        **extra,
    }


def use_s3(settings, **env):
    settings.STORAGES = {**settings.STORAGES, "photos": photos_storage({**S3_ENV, **env})}


@pytest.fixture
def s3(settings):
    """A moto bucket, in-process, as the "photos" storage; yields the test's view of it."""
    with mock_aws():
        client = s3_client()
        client.create_bucket(Bucket=BUCKET)
        use_s3(settings)
        yield Bucket(client, BUCKET)


@pytest.fixture
def moto_server():
    """A bucket behind moto's threaded server: real HTTP on 127.0.0.1; yields the endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: start every test from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    s3_client(endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def over_http(settings, moto_server):
    """The photos storage on moto's server: real HTTP, as in production. A fault hook's answer
    replaces the request, which the server then never sees (in-process, moto would carry it
    out all the same)."""
    use_s3(settings, AWS_S3_ENDPOINT_URL=moto_server)
    return Bucket(s3_client(endpoint_url=moto_server), BUCKET)


def closed_port() -> int:
    """A local port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_bucket(settings, tmp_path):
    """The embedded default: FileSystemStorage in a folder."""
    location = tmp_path / "bucket"
    settings.STORAGES = {
        **settings.STORAGES,
        "photos": photos_storage({"ALBUMS_LOCAL_BUCKET": str(location)}),
    }
    return location


@pytest.fixture
def photos_root(settings, tmp_path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    settings.PHOTOS_ROOT = str(root)
    return root


def write_photo(path: Path, *, color=(200, 120, 40), size=(48, 32), taken=None, mtime_ns=None):
    """A real JPEG (with an EXIF date if `taken`), dated in the past unless told otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
    image.save(path, "JPEG", exif=exif)
    mtime_ns = mtime_ns or 1_700_000_000_123_456_789
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


class Appender(threading.Thread):
    """A writer that keeps adding bytes to a file until told to stop, as a slow copy does."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            self.append()

    def append(self):
        with open(self.path, "ab") as file:
            file.write(b"\0" * 512)

    def __enter__(self):
        self.append()  # already being written when the block starts
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()


ALBUM_PHOTOS = ["photo1.jpg", "photo2.jpg", "day 2/100% fun #1.jpg"]


@pytest.fixture
def album(photos_root, db) -> Album:
    """'Summer 2024' with three photos, one in a subfolder with an awkward name."""
    folder = photos_root / "Summer 2024"
    for number, name in enumerate(ALBUM_PHOTOS):
        write_photo(
            folder / name, color=(40 * number, 80, 160), taken=datetime(2024, 7, number + 1, 12)
        )
    return Album.objects.create(name="Summer 2024", slug="summer-2024", folder="Summer 2024")


class OpenedFiles:
    """Files opened under a folder, seen through Python's audit hooks (nothing is mocked)."""

    active = None

    def __init__(self, root: Path):
        self.root = str(root)
        self.paths = []

    @classmethod
    def hook(cls, event, args):
        watcher = cls.active
        path = args[0] if event == "open" and args else None
        if watcher is not None and isinstance(path, str) and path.startswith(watcher.root):
            watcher.paths.append(path)


sys.addaudithook(OpenedFiles.hook)


@pytest.fixture
def opened_files(photos_root):
    watcher = OpenedFiles(photos_root)
    OpenedFiles.active = watcher
    yield watcher
    OpenedFiles.active = None


# Users for the doors that check permissions (admin, API) -------------------------------

PASSWORD = "correct horse battery staple"
VIEW_PERMISSIONS = ["view_album", "change_album", "view_syncrun", "view_photo"]


def make_staff(django_user_model, username: str, *codenames: str):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="albums", codename__in=codenames)
    )
    return user


@pytest.fixture
def syncer(db, django_user_model):
    """Staff who may see albums, runs and photos, and sync."""
    return make_staff(django_user_model, "syncer", *VIEW_PERMISSIONS, "sync_album")


@pytest.fixture
def viewer(db, django_user_model):
    """Staff who may see and edit albums, but not sync."""
    return make_staff(django_user_model, "viewer", *VIEW_PERMISSIONS)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (the enqueue of a run) as the block ends, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# A real browser for the admin's and the site's browser tests (tests/browser.py) ---------


@pytest.fixture
def browser_page():
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_api

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            yield page
        finally:
            # Queries made while Playwright's event loop runs get a connection of their own
            # (Django's connections are context-local): close it here, or it outlives the
            # test and PostgreSQL refuses to drop the test database.
            connections.close_all()
            browser.close()
