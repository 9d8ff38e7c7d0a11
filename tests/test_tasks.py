"""The worker side: albums.tasks, queue_sync, the schedule and `sync_albums --async`."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from albums.management.commands import sync_albums as sync_command
from albums.models import Album, SyncRun, SyncStatus
from albums.schedule import SCHEDULE_FUNC, SCHEDULE_NAME, ensure_sync_schedule
from albums.sync import queue_sync, sync_album, worker_seen
from albums.sync.records.lease import AlbumLease
from albums.sync.usecases.queue import broker_name
from albums.tasks import run_sync, sync_due_albums
from tests.conftest import write_photo


def queued_run(album, **fields) -> SyncRun:
    fields = {
        "trigger": SyncRun.Trigger.ADMIN,
        "status": SyncStatus.QUEUED,
        "queued_at": timezone.now(),
        **fields,
    }
    return SyncRun.objects.create(album=album, **fields)


def test_run_sync_runs_the_queued_run(album, local_bucket):
    run = queued_run(album)

    result = run_sync(run.pk)

    run.refresh_from_db()
    assert result["status"] == run.status == SyncStatus.SUCCESS
    assert result["run_id"] == run.pk
    assert (run.uploaded, run.files_done, run.files_total) == (3, 3, 3)
    assert run.trigger == SyncRun.Trigger.ADMIN
    assert len(list(local_bucket.rglob("*.jpg"))) == 3


def test_run_sync_passes_the_runs_options(album, local_bucket):
    run = queued_run(album, dry_run=True)

    result = run_sync(run.pk)

    assert result["dry_run"] is True
    assert result["uploaded"] == 3
    assert not local_bucket.exists() or not any(local_bucket.rglob("*.jpg"))


def test_a_task_delivered_twice_syncs_once(album, local_bucket):
    run = queued_run(album)
    run_sync(run.pk)
    run.refresh_from_db()
    finished_at = run.finished_at
    (album.path / "photo1.jpg").unlink()
    write_photo(album.path / "late.jpg")

    assert run_sync(run.pk) is None  # re-delivered: the run is no longer queued

    run.refresh_from_db()
    assert run.finished_at == finished_at
    assert album.photos.count() == 3
    assert SyncRun.objects.count() == 1


def test_run_sync_leaves_a_running_run_alone(album, local_bucket):
    run = queued_run(album, status=SyncStatus.RUNNING)

    assert run_sync(run.pk) is None

    run.refresh_from_db()
    assert run.status == SyncStatus.RUNNING
    assert album.photos.count() == 0


def test_a_run_of_a_locked_album_is_skipped_not_run(album, local_bucket):
    lease = AlbumLease(album)
    lease.acquire()
    run = queued_run(album)

    try:
        result = run_sync(run.pk)
    finally:
        lease.release()

    run.refresh_from_db()
    assert result["status"] == run.status == SyncStatus.SKIPPED
    assert "is running" in run.message
    assert album.photos.count() == 0


def test_a_failed_run_is_recorded_and_returned(album, local_bucket, photos_root):
    (photos_root / "Summer 2024").rename(photos_root / "elsewhere")
    run = queued_run(album)

    result = run_sync(run.pk)

    run.refresh_from_db()
    assert result["status"] == run.status == SyncStatus.FAILED
    assert "does not exist" in run.message
    assert run.finished_at is not None


def test_an_unexpected_error_does_not_leave_the_run_running(album, local_bucket, settings):
    settings.ALBUMS_SYNC_WORKERS = "many"
    run = queued_run(album)

    with pytest.raises(ImproperlyConfigured):
        run_sync(run.pk)

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert "ALBUMS_SYNC_WORKERS" in run.message


def test_queue_sync_enqueues_after_commit(album, local_bucket, on_commit):
    with on_commit() as callbacks:
        run = queue_sync(album=album, trigger=SyncRun.Trigger.API)
        assert SyncRun.objects.get(pk=run.pk).status == SyncStatus.QUEUED

    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCESS  # Q_CLUSTER sync mode: it ran on commit
    assert run.trigger == SyncRun.Trigger.API
    assert run.queued_at <= run.started_at <= run.finished_at


def test_queue_sync_reuses_a_waiting_run(album, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = queue_sync(album=album, trigger=SyncRun.Trigger.SCHEDULE)
        second = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN)
        dry = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, dry_run=True)

    assert second.pk == first.pk
    assert dry.pk != first.pk
    assert len(callbacks) == 2


def test_queue_sync_does_not_reuse_a_stale_waiting_run(
    album, settings, django_capture_on_commit_callbacks
):
    stale = queued_run(album, queued_at=timezone.now() - timedelta(days=1))

    with django_capture_on_commit_callbacks():
        run = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN)

    assert run.pk != stale.pk


def test_queue_sync_returns_the_running_sync(album, django_capture_on_commit_callbacks):
    running = queued_run(album, status=SyncStatus.RUNNING, trigger=SyncRun.Trigger.COMMAND)
    lease = AlbumLease(album)
    lease.acquire()
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            run = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN)
            dry = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, dry_run=True)
    finally:
        lease.release()

    assert run.pk == running.pk
    assert dry.pk != running.pk  # a dry run takes no lease: it may run beside a sync
    assert len(callbacks) == 1


def test_sync_due_albums_queues_scheduled_free_albums(album, photos_root, local_bucket, on_commit):
    write_photo(photos_root / "Busy" / "a.jpg")
    write_photo(photos_root / "Manual" / "a.jpg")
    busy = Album.objects.create(name="Busy", slug="busy", folder="Busy")
    Album.objects.create(name="Manual", slug="manual", folder="Manual", sync_on_schedule=False)
    lease = AlbumLease(busy)
    lease.acquire()
    try:
        with on_commit():
            run_ids = sync_due_albums()
    finally:
        lease.release()

    runs = list(SyncRun.objects.filter(pk__in=run_ids))
    assert [run.album.slug for run in runs] == ["summer-2024"]
    assert runs[0].trigger == SyncRun.Trigger.SCHEDULE
    assert runs[0].status == SyncStatus.SUCCESS


def test_the_schedule_exists_once_however_often_it_is_made(db):
    call_command("migrate", verbosity=0)
    call_command("sync_schedule", stdout=StringIO())
    call_command("sync_schedule", stdout=StringIO())
    ensure_sync_schedule()

    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == SCHEDULE_FUNC
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        60,
        -1,
    )


def test_an_edited_schedule_is_kept_unless_reset(db, settings):
    settings.ALBUMS_SYNC_INTERVAL_MINUTES = "15"
    Schedule.objects.filter(name=SCHEDULE_NAME).update(minutes=5)

    call_command("migrate", verbosity=0)
    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 5

    out = StringIO()
    call_command("sync_schedule", "--reset", stdout=out)
    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 15
    assert "every 15 minutes" in out.getvalue()


def test_a_new_schedule_takes_the_interval_setting(db, settings):
    settings.ALBUMS_SYNC_INTERVAL_MINUTES = "30"
    Schedule.objects.filter(name=SCHEDULE_NAME).delete()

    out = StringIO()
    call_command("sync_schedule", stdout=out)

    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 30
    assert out.getvalue().startswith("Created schedule")


def test_a_bad_interval_is_reported(db, settings):
    settings.ALBUMS_SYNC_INTERVAL_MINUTES = "hourly"
    Schedule.objects.filter(name=SCHEDULE_NAME).delete()

    with pytest.raises(ImproperlyConfigured, match="ALBUMS_SYNC_INTERVAL_MINUTES"):
        call_command("sync_schedule", stdout=StringIO())


def test_sync_albums_async_queues_and_prints_ids(album, local_bucket, photos_root, on_commit):
    write_photo(photos_root / "Winter" / "a.jpg")
    Album.objects.create(name="Winter", slug="winter", folder="Winter")
    out = StringIO()

    with on_commit():
        call_command("sync_albums", "--async", stdout=out, stderr=StringIO())

    runs = SyncRun.objects.order_by("album__slug")
    assert out.getvalue().splitlines() == [
        sync_command.QUEUED.format(album=run.album.slug, run_id=run.pk) for run in runs
    ]
    assert {run.trigger for run in runs} == {SyncRun.Trigger.COMMAND}
    assert {run.status for run in runs} == {SyncStatus.SUCCESS}


def test_sync_albums_async_json_and_no_worker_note(album, monkeypatch, on_commit):
    monkeypatch.setattr(Conf, "SYNC", False)  # a real broker: nothing runs the task here
    Album.objects.create(name="Winter", slug="winter", folder="Winter")  # not named: not queued
    out, err = StringIO(), StringIO()

    with on_commit():
        call_command(
            "sync_albums", "summer-2024", "--async", "--dry-run", "--json", stdout=out, stderr=err
        )

    run = SyncRun.objects.get()
    assert json.loads(out.getvalue()) == {"album": "summer-2024", "run_id": run.pk}
    assert (run.status, run.dry_run) == (SyncStatus.QUEUED, True)
    assert OrmQ.objects.count() == 1  # waiting in the ORM broker for a qcluster
    assert sync_command.NO_WORKER in err.getvalue()


def test_worker_seen_reads_the_cluster_heartbeat(db, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)
    assert worker_seen() is False

    status = Status(pid=1, cluster_id="test-cluster")
    status.status = Conf.IDLE
    broker = get_broker()
    broker.set_stat(Stat.get_key(status.cluster_id), SignedPackage.dumps(status, True), 3)
    try:
        assert worker_seen() is True
    finally:
        broker.cache.clear()


def test_a_run_taken_by_a_worker_is_not_closed_as_abandoned(album, local_bucket):
    run = SyncRun.objects.create(album=album, trigger="admin", status=SyncStatus.RUNNING)
    seen = []

    def look_at_the_record(done, total):
        seen.append(SyncRun.objects.values("status", "finished_at", "message").get(pk=run.pk))

    sync_album(album=album, run=run, progress=look_at_the_record)

    assert seen[0] == {"status": "running", "finished_at": None, "message": ""}
    run.refresh_from_db()
    assert (run.status, run.message) == ("success", "")


def test_the_task_queue_is_named_without_its_password(monkeypatch):
    monkeypatch.setattr(Conf, "REDIS", "redis://:s3cret-pass@redis.internal:6380/2")

    assert broker_name() == "Redis at redis.internal:6380"
