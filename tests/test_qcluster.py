"""A real `manage.py qcluster` picks up queued syncs and runs the schedule, and syncs an album
that needs longer than its task timeout.

The test settings force django-q2's sync mode, so these tests run every command in a
subprocess on the production settings (photosite.settings) with a file SQLite database,
and read the outcome straight from that file.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from albums.schedule import SCHEDULE_NAME
from tests.conftest import S3_ENV, write_photo
from tests.faultproxy import FaultProxy, Throttle

ROOT = Path(__file__).resolve().parent.parent
# django-q2 runs the scheduler every 30 s of the cluster's guard loop: allow for one pass.
SCHEDULER_WAIT = 75
RUN_WAIT = 45
REDIS_ADDRESS = ("127.0.0.1", 6379)
REDIS_DB = (
    11  # kept apart from anything else using the local Redis (its queue has its own name too)
)

pytestmark = pytest.mark.timeout(240)


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS_ADDRESS, timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Site:
    """photosite as deployed: its own database, photos, bucket and environment."""

    def __init__(self, tmp_path: Path, **env):
        self.db = tmp_path / "db.sqlite3"
        self.photos = tmp_path / "photos"
        self.bucket = tmp_path / "bucket"
        self.log = tmp_path / "qcluster.log"
        keep = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "ALBUMS_", "Q_", "DJANGO_", "REDIS_", "DATABASE_"))
        }
        self.env = {
            **keep,
            "DJANGO_SETTINGS_MODULE": "photosite.settings",
            "DJANGO_SECRET_KEY": "qcluster-test-secret",
            "DATABASE_URL": f"sqlite:///{self.db}",
            "PHOTOS_ROOT": str(self.photos),
            "ALBUMS_LOCAL_BUCKET": str(self.bucket),
            "ALBUMS_THUMBNAIL_DIR": str(tmp_path / "thumbnails"),
            "Q_WORKERS": "1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **env,
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def python(self, code: str) -> str:
        return self.manage("shell", "--verbosity", "0", "-c", code)

    def query(self, sql: str, *params):
        with sqlite3.connect(self.db, timeout=20) as connection:
            return connection.execute(sql, params).fetchall()

    def wait_for(self, sql: str, *params, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = self.query(sql, *params)
            if rows:
                return rows
            time.sleep(0.5)
        pytest.fail(f"Nothing after {seconds} s for: {sql} {params}")


def start_cluster(site: Site) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT, env=site.env, stdout=site.log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so nothing is left behind
    )  # fmt: skip


def stop_cluster(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the cluster stops its own workers
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def prepare(site: Site) -> int:
    """Two albums, one synced on schedule; one run queued with `sync_albums --async`."""
    for name in ("a.jpg", "b.jpg"):
        write_photo(site.photos / "Summer" / name)
    write_photo(site.photos / "Winter" / "c.jpg")
    site.manage("migrate", "--verbosity", "0")
    site.manage("migrate", "--verbosity", "0")  # twice: still one schedule
    site.python(
        "from albums.models import Album; "
        "Album.objects.create(name='Summer', slug='summer', folder='Summer', sync_on_schedule=False); "
        "Album.objects.create(name='Winter', slug='winter', folder='Winter')"
    )
    queued = site.manage("sync_albums", "summer", "--async").strip()
    return int(queued.rsplit(" ", 1)[1])


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """A running cluster per broker, started together so their scheduler waits overlap."""
    brokers = {"orm": {}}
    if redis_answers():
        brokers["redis"] = {
            "REDIS_URL": "redis://{}:{}/{}".format(*REDIS_ADDRESS, REDIS_DB),
            # A queue of this test run's own: another run on the same Redis never takes its tasks.
            "Q_CLUSTER_NAME": f"photosite-test-{uuid.uuid4().hex[:8]}",
        }
    running = {}
    try:
        for name, env in brokers.items():
            site = Site(tmp_path_factory.mktemp(name), **env)
            run_id = prepare(site)
            assert site.query("SELECT status FROM albums_syncrun WHERE id = ?", run_id) == [
                ("queued",)
            ]
            site.next_run = site.query(NEXT_RUN, SCHEDULE_NAME)
            running[name] = (site, run_id, start_cluster(site), time.monotonic())
        yield running
    finally:
        for _, _, process, _ in running.values():
            stop_cluster(process)


NEXT_RUN = "SELECT next_run FROM django_q_schedule WHERE name = ?"


def check_cluster(site: Site, run_id: int, process: subprocess.Popen, started: float) -> None:
    assert site.query("SELECT count(*) FROM django_q_schedule WHERE name = ?", SCHEDULE_NAME) == [
        (1,)
    ]
    # The queued run: picked up and finished in bounded time.
    rows = site.wait_for(
        "SELECT status, uploaded FROM albums_syncrun WHERE id = ? AND finished_at IS NOT NULL",
        run_id, seconds=RUN_WAIT,
    )  # fmt: skip
    assert rows == [("success", 2)], site.log.read_text()
    # (The scheduled run of "winter" may have finished too, depending on timing.)
    assert sorted(p.name for p in (site.bucket / "albums" / "summer").iterdir()) == [
        "a.jpg",
        "b.jpg",
    ]
    # The web side sees the worker's heartbeat.
    assert site.python(WORKER_SEEN).strip() == "True"
    # The schedule fires and queues a run of the scheduled album only, which finishes.
    rows = site.wait_for(
        "SELECT r.status FROM albums_syncrun r JOIN albums_album a ON a.id = r.album_id "
        "WHERE r.trigger = 'schedule' AND a.slug = 'winter' AND r.finished_at IS NOT NULL",
        seconds=max(SCHEDULER_WAIT - (time.monotonic() - started), 5),
    )
    assert rows == [("success",)], site.log.read_text()
    assert site.query("SELECT count(*) FROM albums_syncrun WHERE trigger = 'schedule'") == [(1,)]
    assert site.query(NEXT_RUN, SCHEDULE_NAME) > site.next_run  # moved on to its next slot
    stop_cluster(process)
    assert process.returncode == 0, site.log.read_text()
    assert site.python(WORKER_SEEN).strip() == "False"


WORKER_SEEN = "from albums.sync import worker_seen; print(worker_seen())"


def test_orm_broker(clusters):
    check_cluster(*clusters["orm"])


@pytest.mark.skipif(not redis_answers(), reason="no Redis server answers on 127.0.0.1:6379")
def test_redis_broker(clusters):
    check_cluster(*clusters["redis"])


# A sync longer than the task timeout (issue 28) --------------------------------------------

LONG_PHOTOS = 120
PHOTO_BYTES = 2048
UPLOAD_SECONDS = 0.125  # each upload, the proxy reading its body that slowly
TASK_TIMEOUT = 4  # Q_TIMEOUT: the album needs about twice as long (two uploads at a time)


def test_a_sync_longer_than_the_task_timeout_is_never_killed_and_ends_synced(tmp_path, moto_server):
    """A real cluster, Q_TIMEOUT 4 s, an album whose uploads take about 7.5 s: each task
    stops its sync at its budget (3 s) and queues the rest, until the album is synced; no
    task is killed, no photo is sent twice, no run is left open."""
    proxy = FaultProxy(
        moto_server,
        fault=lambda seen: (
            Throttle(int(PHOTO_BYTES / UPLOAD_SECONDS)) if seen.operation == "PutObject" else None
        ),
    ).start()
    site = Site(
        tmp_path, **S3_ENV, AWS_S3_ENDPOINT_URL=proxy.endpoint, Q_TIMEOUT=str(TASK_TIMEOUT),
        ALBUMS_SYNC_WORKERS="2", ALBUMS_RENDITIONS="0",
    )  # fmt: skip
    for number in range(LONG_PHOTOS):
        path = site.photos / "Big" / f"{number:03}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(PHOTO_BYTES))
        os.utime(path, (1_700_000_000, 1_700_000_000))
    site.manage("migrate", "--verbosity", "0")
    site.python(
        "from albums.models import Album; "
        "Album.objects.create(name='Big', slug='big', folder='Big', sync_on_schedule=False)"
    )
    site.manage("sync_albums", "big", "--async")
    cluster = start_cluster(site)
    try:
        site.wait_for("SELECT id FROM albums_syncrun WHERE status = 'success'", seconds=LONG_PHOTOS)
    finally:
        stop_cluster(cluster)
        proxy.stop()

    log = site.log.read_text()
    runs = site.query(
        "SELECT id, status, follows_id, uploaded, "
        "(julianday(finished_at) - julianday(started_at)) * 86400 FROM albums_syncrun ORDER BY id"
    )
    assert [run[1] for run in runs] == ["continued"] * (len(runs) - 1) + ["success"], log
    assert len(runs) >= 2
    assert [run[2] for run in runs] == [None, *(run[0] for run in runs[:-1])]  # each follows
    assert max(run[4] for run in runs) < TASK_TIMEOUT  # each stopped itself in time
    assert "reincarnated" not in log and "timeout" not in log.lower(), log
    assert site.query("SELECT count(*), min(success) FROM django_q_task") == [(len(runs), 1)]
    sent = [seen.key for seen in proxy.seen("PutObject")]
    assert len(sent) == len(set(sent)) == sum(run[3] for run in runs) == LONG_PHOTOS
    assert site.query("SELECT count(*) FROM albums_photo") == [(LONG_PHOTOS,)]
