"""Real processes: a sync killed mid-run, and two syncs of one album started together."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import BUCKET, S3_ENV, s3_client

PROJECT = Path(__file__).resolve().parent.parent
PHOTOS = 300
LEASE_SECONDS = 8
POSTGRES = "postgres://postgres@127.0.0.1:5432"


def write_album(root: Path, count: int = PHOTOS) -> None:
    folder = root / "Big Trip"
    for number in range(count):
        path = folder / f"day{number % 6}" / f"{number:04}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(2048))
        os.utime(path, (1_700_000_000, 1_700_000_000))


def environment(tmp_path: Path, endpoint: str, database_url: str) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SECRET_KEY": "processes",
        "DATABASE_URL": database_url,
        "PHOTOS_ROOT": str(tmp_path / "photos"),
        "ALBUMS_SYNC_WORKERS": "2",
        # Long enough for a second process to start (and be refused) on a loaded machine,
        # short enough to wait out.
        "ALBUMS_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        **S3_ENV,
        "AWS_S3_ENDPOINT_URL": endpoint,
    }


def manage(env, *args, prefix=(), **kwargs):
    return subprocess.Popen(
        [*prefix, sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def finish(process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def bucket_keys(endpoint: str) -> list[str]:
    pages = s3_client(endpoint_url=endpoint).get_paginator("list_objects_v2")
    return [o["Key"] for page in pages.paginate(Bucket=BUCKET) for o in page.get("Contents", ())]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"photosite_processes_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=2)
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL server answers on 127.0.0.1:5432")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES}/{name}"
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def env(tmp_path, moto_server, database_url):
    write_album(tmp_path / "photos")
    env = environment(tmp_path, moto_server, database_url)
    assert finish(manage(env, "migrate", "-v0"))[0] == 0
    discover = finish(manage(env, "sync_albums", "--discover", "--dry-run", "-v0"))
    assert discover[0] == 0, discover[2]
    return env


def test_two_syncs_started_together_run_once(env, moto_server):
    first = manage(env, "sync_albums", "--json")
    second = manage(env, "sync_albums", "--json")
    outcomes = [finish(first), finish(second)]

    refused = [o for o in outcomes if o[0] == 1]
    ran = [o for o in outcomes if o[0] == 0]
    assert len(refused) == 1 and len(ran) == 1, outcomes
    assert "Another sync of album 'Big Trip' is running" in refused[0][2]
    assert json.loads(ran[0][1])["uploaded"] == PHOTOS
    assert len(bucket_keys(moto_server)) == PHOTOS


def settled_key_count(server) -> int:
    """The bucket's object count once it stops changing: an upload whose body was all sent
    before its process was killed may still be stored by the server a moment later."""
    count = len(bucket_keys(server))
    while True:
        time.sleep(0.5)
        now = len(bucket_keys(server))
        if now == count:
            return count
        count = now


def test_a_killed_sync_frees_its_album_and_the_next_run_completes(env, moto_server, tmp_path):
    victim = manage(env, "sync_albums")
    deadline = time.monotonic() + 60
    while len(bucket_keys(moto_server)) < 50:  # well into its uploads
        assert time.monotonic() < deadline and victim.poll() is None
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    uploaded_before = settled_key_count(moto_server)

    too_soon = finish(manage(env, "sync_albums"))
    assert too_soon[0] == 1 and "is running" in too_soon[2]  # the dead run's lease holds

    time.sleep(LEASE_SECONDS + 0.5)
    code, out, err = finish(manage(env, "sync_albums", "--json"))

    assert code == 0, err
    result = json.loads(out)
    # Only what the killed run had not sent is sent now: nothing goes up twice.
    assert result["uploaded"] + result["reuploaded"] == PHOTOS - uploaded_before
    assert len(bucket_keys(moto_server)) == PHOTOS
    rerun = json.loads(finish(manage(env, "sync_albums", "--json"))[1])
    assert (rerun["unchanged"], rerun["uploaded"]) == (PHOTOS, 0)
    if env["DATABASE_URL"].startswith("sqlite"):
        database = sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"))
        statuses = [row[0] for row in database.execute("SELECT status FROM albums_syncrun")]
        assert "running" not in statuses  # the killed run is closed as failed
        assert statuses.count("failed") == 1
        # The run after it says that it resumed it, and what the killed run had recorded.
        (killed,) = database.execute("SELECT id FROM albums_syncrun WHERE status = 'failed'")
        resumed = database.execute(
            "SELECT follows_id, resumed_photos FROM albums_syncrun WHERE id = ?",
            (result["run_id"],),
        ).fetchone()
        assert resumed == (killed[0], result["unchanged"])


def test_an_unreadable_folder_is_reported_and_its_photos_kept(moto_server, tmp_path):
    """A subfolder that cannot be listed fails the run as partial; its photos are neither
    forgotten nor deleted, and they are all there again once it can be read."""
    write_album(tmp_path / "photos", count=12)
    env = environment(tmp_path, moto_server, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert finish(manage(env, "migrate", "-v0"))[0] == 0
    assert finish(manage(env, "sync_albums", "--discover"))[0] == 0
    keys_before = sorted(bucket_keys(moto_server))
    locked = tmp_path / "photos" / "Big Trip" / "day1"
    locked.chmod(0o000)
    prefix = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
    try:
        code, out, err = finish(
            manage(env, "sync_albums", "--prune", "--json", "--max-delete", "100", prefix=prefix)
        )
    finally:
        locked.chmod(0o755)

    result = json.loads(out.splitlines()[-1])
    assert code == 1, err
    assert (result["status"], result["removed"], result["pruned"]) == ("partial", 0, 0)
    assert result["failures"] == [{"path": "day1", "error": "Permission denied"}]
    assert sorted(bucket_keys(moto_server)) == keys_before
    rerun = json.loads(finish(manage(env, "sync_albums", "--json"))[1].splitlines()[-1])
    assert (rerun["status"], rerun["unchanged"], rerun["uploaded"]) == ("success", 12, 0)


def test_an_unreadable_file_is_reported_and_the_rest_synced(moto_server, tmp_path):
    """Real permissions: as root, the sync runs without the capability to ignore them."""
    write_album(tmp_path / "photos", count=5)
    locked = tmp_path / "photos" / "Big Trip" / "day0" / "0000.jpg"
    locked.chmod(0o000)
    env = environment(tmp_path, moto_server, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    prefix = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
    try:
        assert finish(manage(env, "migrate", "-v0"))[0] == 0
        code, out, err = finish(manage(env, "sync_albums", "--discover", "--json", prefix=prefix))
    finally:
        locked.chmod(0o644)

    result = json.loads(out.splitlines()[-1])
    assert code == 1, err  # a partial run is not a clean one
    assert (result["status"], result["uploaded"], result["failed"]) == ("partial", 4, 1)
    assert result["failures"] == [{"path": "day0/0000.jpg", "error": "Permission denied"}]
    assert "Traceback" not in err


def test_a_killed_restore_leaves_no_partial_photo_and_the_next_run_completes(
    env, moto_server, tmp_path
):
    assert finish(manage(env, "sync_albums", "-v0"))[0] == 0
    folder = tmp_path / "photos" / "Big Trip"
    originals = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.jpg")}
    for path in originals:
        (folder / path).unlink()

    victim = manage(env, "restore_album", "big-trip")
    deadline = time.monotonic() + 60
    while sum(1 for _ in folder.rglob("*.jpg")) < 50:  # well into its downloads
        assert time.monotonic() < deadline and victim.poll() is None
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    for path in folder.rglob("*.jpg"):  # under its real name, a photo is whole or absent
        assert path.read_bytes() == originals[path.relative_to(folder)]
    time.sleep(LEASE_SECONDS + 0.5)  # the dead restore's lease runs out
    code, out, err = finish(manage(env, "restore_album", "big-trip"))
    assert code == 0, err
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.jpg")} == originals
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")]
    code, out, _ = finish(manage(env, "sync_albums", "--json"))
    assert (code, json.loads(out)["unchanged"], json.loads(out)["uploaded"]) == (0, PHOTOS, 0)
