"""Workers on several machines: two `qcluster`s and a web process sharing one PostgreSQL
database (and Redis, with that broker), the bucket and PHOTOS_ROOT, and nothing else.

Each "machine" runs from its own copy of the code in its own folder, with its own HOME and
temporary folder, so anything a process keeps in a local file stays on its machine, as it
would on separate computers. The bucket is moto's server over HTTP. Runs on the production
settings; skipped without PostgreSQL (and, for the Redis broker, without Redis).
"""

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from albums.schedule import SCHEDULE_NAME
from tests.conftest import S3_ENV, s3_client

PROJECT = Path(__file__).resolve().parent.parent
POSTGRES = "postgres://postgres@127.0.0.1:5432"
REDIS = ("127.0.0.1", 6379, 10)  # database 10: kept apart from anything else on this Redis
ALBUMS = [f"album-{number:02}" for number in range(1, 21)]
PHOTOS_PER_ALBUM = 3
SCHEDULED = "nightly"  # the one album synced on schedule
INTERVAL = 60  # seconds: ALBUMS_SYNC_INTERVAL_MINUTES=1

pytestmark = pytest.mark.timeout(480)
psycopg2 = pytest.importorskip("psycopg2")


def postgres_answers() -> bool:
    try:
        psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS[:2], timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


if not postgres_answers():
    pytest.skip("no PostgreSQL server answers on 127.0.0.1:5432", allow_module_level=True)


class Machine:
    """One computer: its own copy of photosite, HOME and temporary folder."""

    def __init__(self, root: Path, name: str, env: dict):
        self.name = name
        self.code = root / name / "photosite"
        self.code.mkdir(parents=True)
        for package in ("albums", "photosite"):
            shutil.copytree(
                PROJECT / package, self.code / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )  # fmt: skip
        shutil.copy(PROJECT / "manage.py", self.code)
        for folder in ("home", "tmp"):
            (root / name / folder).mkdir()
        self.env = {**env, "HOME": str(root / name / "home"), "TMPDIR": str(root / name / "tmp")}
        self.log = root / name / "qcluster.log"
        self.process = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.code, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def python(self, code: str) -> str:
        return self.manage("shell", "--verbosity", "0", "-c", code).strip()

    def start_cluster(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=self.code, env=self.env,
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def stop_cluster(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process and self.process.returncode
        self.process.send_signal(signal.SIGTERM)  # one signal: the cluster stops its workers
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def processed(self) -> list[str]:
        """Names of the queued (not scheduled) syncs this machine's cluster ran."""
        pattern = r"processing (sync (\S+) #\d+) 'albums\.tasks\.run_sync'"
        names = re.findall(pattern, self.log.read_text())
        return [name for name, slug in names if slug != SCHEDULED]

    def schedule_firings(self, since: datetime) -> list[datetime]:
        """When this machine's cluster created a task from the sync schedule (UTC; the log
        gives the time of day only, `since` the day)."""
        pattern = rf"^(\d\d):(\d\d):(\d\d) \[Q\] INFO .* created task .* from schedule \[{re.escape(SCHEDULE_NAME)}\]"
        found = []
        for hours, minutes, seconds in re.findall(pattern, self.log.read_text(), re.MULTILINE):
            moment = since.replace(hour=int(hours), minute=int(minutes), second=int(seconds))
            found.append(
                moment + timedelta(days=1) if moment < since - timedelta(hours=1) else moment
            )
        return found


WORKER_SEEN = "from albums.sync import worker_seen; print(worker_seen())"


class Deployment:
    """A database, a bucket, PHOTOS_ROOT, and three machines: web, worker-a and worker-b."""

    def __init__(self, root: Path, broker: str, endpoint: str):
        self.broker = broker
        self.database = f"photosite_machines_{broker}_{uuid.uuid4().hex[:8]}"
        self.bucket = f"machines-{broker}"
        self.photos = root / "shared" / "photos"  # mounted at the same path on every machine
        self.endpoint = endpoint
        admin = psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=2)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{self.database}"')
        admin.close()
        s3_client(endpoint_url=endpoint).create_bucket(Bucket=self.bucket)
        for slug in [*ALBUMS, SCHEDULED]:
            for number in range(PHOTOS_PER_ALBUM):
                path = self.photos / slug / f"{number}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(os.urandom(4096))
                os.utime(path, (1_700_000_000, 1_700_000_000))
        keep = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "ALBUMS_", "Q_", "DJANGO_", "REDIS_", "DATABASE_"))
        }
        env = {
            **keep,
            "TZ": "UTC",  # the clusters' log times, compared with the schedule's
            "DJANGO_SETTINGS_MODULE": "photosite.settings",
            "DJANGO_SECRET_KEY": "shared-by-every-machine",  # it signs the heartbeats
            "DATABASE_URL": f"{POSTGRES}/{self.database}",
            "PHOTOS_ROOT": str(self.photos),
            **S3_ENV,
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "Q_WORKERS": "2",
            "ALBUMS_SYNC_INTERVAL_MINUTES": "1",
        }
        if broker == "redis":
            env["REDIS_URL"] = "redis://{}:{}/{}".format(*REDIS)
        self.web, self.a, self.b = (
            Machine(root, name, env) for name in ("web", "worker-a", "worker-b")
        )

    def prepare(self) -> None:
        self.web.manage("migrate", "--verbosity", "0")
        self.web.python(
            "from albums.models import Album\n"
            f"for slug in {ALBUMS!r}:\n"
            "    Album.objects.create(name=slug, slug=slug, folder=slug, sync_on_schedule=False)\n"
            f"Album.objects.create(name={SCHEDULED!r}, slug={SCHEDULED!r}, folder={SCHEDULED!r})"
        )
        # The schedule's first slot, set by migrate: every later one is a whole interval on.
        next_run = self.query("SELECT next_run FROM django_q_schedule")[0][0]
        self.first_slot = next_run.astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def query(self, sql: str, *params) -> list[tuple]:
        connection = psycopg2.connect(f"{POSTGRES}/{self.database}", connect_timeout=2)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def wait_for(self, what: str, check, seconds: float):
        deadline = time.monotonic() + seconds
        while not (result := check()):
            if time.monotonic() > deadline:
                logs = "\n".join(m.log.read_text()[-3000:] for m in (self.a, self.b))
                pytest.fail(f"{self.broker}: no {what} after {seconds} s\n{logs}")
            time.sleep(0.5)
        return result

    def drop(self) -> None:
        admin = psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=2)
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        admin.close()


def flush_redis() -> None:
    import redis

    redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS[2]).flushdb()


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    """Both brokers deployed and their clusters started together, so the waits overlap."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://{}:{}".format(*server.get_host_and_port())
    brokers = ["orm", *(["redis"] if redis_answers() else [])]
    if "redis" in brokers:
        flush_redis()
    running = {}
    try:
        for broker in brokers:
            deployment = Deployment(tmp_path_factory.mktemp(broker), broker, endpoint)
            running[broker] = deployment
            deployment.prepare()
            deployment.a.start_cluster()
            deployment.b.start_cluster()
        yield running
    finally:
        for deployment in running.values():
            deployment.a.stop_cluster()
            deployment.b.stop_cluster()
            deployment.drop()
        if "redis" in brokers:
            flush_redis()
        server.stop()


def check_two_machines(site: Deployment) -> None:
    # The web machine runs no worker, yet sees the workers of the other two.
    site.wait_for("worker seen from the web", lambda: site.web.python(WORKER_SEEN) == "True", 90)

    # 20 albums queued at once: each synced exactly once, by one cluster or the other.
    site.web.manage("sync_albums", *ALBUMS, "--async")
    runs = (
        "SELECT a.slug, r.status, r.uploaded FROM albums_syncrun r "
        "JOIN albums_album a ON a.id = r.album_id WHERE a.slug <> %s ORDER BY a.slug, r.id"
    )

    def all_finished():
        rows = site.query(runs, SCHEDULED)
        return len(rows) >= len(ALBUMS) and not {"queued", "running"} & {row[1] for row in rows}

    site.wait_for("20 finished runs", all_finished, 150)
    assert site.query(runs, SCHEDULED) == [(slug, "success", PHOTOS_PER_ALBUM) for slug in ALBUMS]
    by_a, by_b = site.a.processed(), site.b.processed()
    assert sorted(by_a + by_b) == sorted(set(by_a + by_b)), "a task ran twice"
    assert len(by_a + by_b) == len(ALBUMS)
    assert by_a and by_b, f"all the work went to one cluster: {len(by_a)} / {len(by_b)}"
    pages = s3_client(endpoint_url=site.endpoint).get_paginator("list_objects_v2")
    keys = [
        o["Key"] for page in pages.paginate(Bucket=site.bucket) for o in page.get("Contents", ())
    ]
    assert len([key for key in keys if SCHEDULED not in key]) == len(ALBUMS) * PHOTOS_PER_ALBUM

    # The schedule: two slots fired (one interval apart at least), never one slot twice,
    # although both clusters run a scheduler every 30 seconds.
    def firings():
        first = site.first_slot
        return sorted(site.a.schedule_firings(first) + site.b.schedule_firings(first))

    site.wait_for("two schedule firings", lambda: len(firings()) >= 2, 3 * INTERVAL)
    time.sleep(35)  # the other cluster's scheduler has looked again since the last firing
    first = site.first_slot
    slots = [math.floor((when - first).total_seconds() / INTERVAL) for when in firings()]
    assert len(slots) == len(set(slots)), f"a slot fired twice: {firings()}, first slot {first}"
    scheduled_runs = site.query(
        "SELECT count(*) FROM albums_syncrun r JOIN albums_album a ON a.id = r.album_id "
        "WHERE a.slug = %s AND r.trigger = 'schedule' AND r.status = 'success'",
        SCHEDULED,
    )[0][0]
    assert scheduled_runs >= 2

    # With both clusters stopped, the web machine sees no worker (heartbeats expire in 3 s).
    assert site.a.stop_cluster() == 0, site.a.log.read_text()[-3000:]
    assert site.b.stop_cluster() == 0, site.b.log.read_text()[-3000:]
    site.wait_for("worker gone", lambda: site.web.python(WORKER_SEEN) == "False", 15)


def test_two_machines_with_the_orm_broker(deployments):
    check_two_machines(deployments["orm"])


@pytest.mark.skipif(not redis_answers(), reason="no Redis server answers on 127.0.0.1:6379")
def test_two_machines_with_redis(deployments):
    check_two_machines(deployments["redis"])
