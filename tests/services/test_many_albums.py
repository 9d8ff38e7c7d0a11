"""A run over many albums costs what its photos cost: one client, one listing of the common
prefix, the albums side by side, the bookkeeping in bulk; each album still ends on its own."""

import math
import os
import signal
from datetime import timedelta

import pytest
from botocore.exceptions import ConnectionClosedError
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf
from django_q.models import OrmQ

from albums.exceptions import (
    AlbumFolderMissing,
    StorageAccessDenied,
    SyncAlreadyRunning,
    SyncLeaseLost,
)
from albums.models import Album, Photo, SyncRun
from albums.storage import clients as bucket_module
from albums.sync import INTERRUPTED, queue_scheduled_syncs, queue_syncs, sync_albums
from albums.sync.records import photos as records
from albums.sync.records.lease import AlbumLease, AlbumLeases
from tests.conftest import s3_error, write_photo

pytestmark = pytest.mark.django_db
ALBUMS, PHOTOS = 40, 3


@pytest.fixture
def library(photos_root):
    """ALBUMS albums of PHOTOS photos each, a folder per event."""
    albums = []
    for number in range(ALBUMS):
        folder = f"event-{number:03}"
        for photo in range(PHOTOS):
            write_photo(photos_root / folder / f"{photo}.jpg", color=(number, photo, 9))
        albums.append(Album.objects.create(name=folder, slug=folder, folder=folder))
    return albums


def sync_all(albums, **options):
    """Each album's outcome, by slug; every album has exactly one."""
    outcomes = list(sync_albums(albums, **options))
    by_slug = {outcome.album.slug: outcome for outcome in outcomes}
    assert len(outcomes) == len(by_slug) == len(albums)
    return by_slug


def recorded_is_in_bucket(s3, *, refused=()) -> bool:
    """Every object of a photo is recorded, and every record has its object (`refused`:
    keys whose upload was answered with an error, which the mock stores all the same)."""
    recorded = {f"albums/{photo.album.slug}/{photo.path}" for photo in Photo.objects.all()}
    return recorded == set(s3.object_keys()) - set(refused)


def no_run_left_open() -> bool:
    return not SyncRun.objects.filter(finished_at__isnull=True).exists()


def test_every_album_is_synced_and_ends_on_its_own(library, s3):
    outcomes = sync_all(library)

    assert len(outcomes) == ALBUMS
    assert {o.result.status for o in outcomes.values()} == {"success"}
    assert {o.result.uploaded for o in outcomes.values()} == {PHOTOS}
    assert len(s3.object_keys()) == ALBUMS * PHOTOS == Photo.objects.count()
    runs = SyncRun.objects.all()
    assert {(run.status, run.uploaded, run.files_done) for run in runs} == {("success", 3, 3)}
    assert not Album.objects.filter(sync_lease_token__gt="").exists()  # every lease is free
    assert {album.last_sync_status for album in Album.objects.all()} == {"success"}


# Queries of a run over up to records.ALBUMS_AHEAD albums: their number does not grow with
# the albums (the leases, the runs started and finished, the records read and written).
FEW_QUERIES = 20


def test_a_no_op_over_many_albums_costs_one_listing_and_a_few_queries(library, s3, s3_requests):
    sync_all(library)
    s3_requests.reset()

    with CaptureQueriesContext(connection) as queries:
        outcomes = sync_all(library)

    assert {o.result.unchanged for o in outcomes.values()} == {PHOTOS}
    listings = math.ceil(ALBUMS * PHOTOS / 1000)
    assert dict(s3_requests.counts) == {"ListObjectsV2": listings}
    assert len(queries) <= FEW_QUERIES, [q["sql"][:80] for q in queries.captured_queries]


def test_a_first_run_over_many_albums_costs_a_few_queries(library, s3, s3_requests):
    with CaptureQueriesContext(connection) as queries:
        sync_all(library)

    assert s3_requests.counts["ListObjectsV2"] == 1
    assert s3_requests.counts["PutObject"] == ALBUMS * PHOTOS
    assert len(queries) <= FEW_QUERIES, [q["sql"][:80] for q in queries.captured_queries]


def test_albums_read_ahead_a_page_at_a_time_each_get_every_record(
    photos_root, s3, s3_requests, monkeypatch
):
    """Pages that stop inside albums, and albums whose ids run against the order they are
    synced in: each album still sees every record of its own, and only its own."""
    albums = []
    for number in reversed(range(12)):  # ids in the reverse order of the keys
        folder = f"trip-{number:02}"
        for photo in range(number % 4 + 1):
            write_photo(photos_root / folder / f"{photo}.jpg", color=(number, photo, 1))
        albums.append(Album.objects.create(name=folder, slug=folder, folder=folder))
    sync_all(albums)
    (photos_root / "trip-03" / "0.jpg").unlink()  # one photo gone
    write_photo(photos_root / "trip-07" / "new.jpg", color=(7, 7, 7))  # one new
    monkeypatch.setattr(records, "READ_CHUNK", 3)
    monkeypatch.setattr(records, "ALBUMS_AHEAD", 4)
    s3_requests.reset()

    outcomes = sync_all(albums)

    assert s3_requests.counts["PutObject"] == 1
    for number in range(12):
        result = outcomes[f"trip-{number:02}"].result
        recorded = number % 4 + 1
        assert result.status == "success"
        assert result.unchanged == recorded - (number == 3), number
        assert result.uploaded == (number == 7), number
        assert result.orphaned == result.removed == (number == 3), number
    assert recorded_is_in_bucket(s3, refused=["albums/trip-03/0.jpg"])


def test_a_database_without_insert_returning_still_starts_and_ends_every_run(
    library, s3, monkeypatch
):
    """SQLite before 3.35 (RHEL 9's) cannot return the ids of an INSERT of many rows: each
    run is then inserted on its own, and every one is found again to store its outcome."""
    features = type(connection.features)
    monkeypatch.setattr(features, "can_return_rows_from_bulk_insert", False)

    outcomes = sync_all(library[:5])

    runs = SyncRun.objects.filter(album__in=library[:5])
    assert sorted(run.album_id for run in runs) == sorted(album.pk for album in library[:5])
    assert {(run.status, run.uploaded) for run in runs} == {("success", PHOTOS)}
    assert {outcome.result.run_id for outcome in outcomes.values()} == {run.pk for run in runs}
    assert no_run_left_open()


def test_one_s3_client_serves_every_run_of_the_process(library, s3):
    sync_all(library[:2])
    clients = {client for client, _ in bucket_module._clients.values()}

    sync_all(library[2:4])

    assert len(clients) == 1
    assert {client for client, _ in bucket_module._clients.values()} == clients


def test_an_album_that_fails_fails_alone(library, s3, photos_root):
    (photos_root / "event-005").rename(photos_root / "elsewhere")

    outcomes = sync_all(library)

    failed = outcomes["event-005"]
    assert isinstance(failed.error, AlbumFolderMissing) and failed.result.status == "failed"
    assert SyncRun.objects.get(album__slug="event-005").status == "failed"
    others = [o for slug, o in outcomes.items() if slug != "event-005"]
    assert {o.result.status for o in others} == {"success"}
    assert len(s3.object_keys()) == (ALBUMS - 1) * PHOTOS


def test_an_album_another_sync_holds_is_left_alone(library, s3):
    lease = AlbumLease(library[7])
    lease.acquire()
    try:
        outcomes = sync_all(library)
    finally:
        lease.release()

    assert isinstance(outcomes["event-007"].error, SyncAlreadyRunning)
    assert not Photo.objects.filter(album=library[7]).exists()
    assert Photo.objects.count() == (ALBUMS - 1) * PHOTOS


def test_a_bucket_that_refuses_stops_every_album_with_what_to_fix(library, s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "ListObjectsV2" else None
    )

    outcomes = sync_all(library)

    assert {type(o.error) for o in outcomes.values()} == {StorageAccessDenied}
    assert {run.status for run in SyncRun.objects.all()} == {"failed"}
    assert "s3:ListBucket" in SyncRun.objects.first().message
    uploads = [url for op, url in s3_requests.keys if op == "PutObject" and "/albums/" in url]
    assert uploads == [] and not Photo.objects.exists()  # (the diagnosis probes elsewhere)
    assert not Album.objects.filter(sync_lease_token__gt="").exists()
    assert all(run.diagnosis for run in SyncRun.objects.all())


def test_the_schedule_queues_one_task_for_every_album(library, s3, monkeypatch, on_commit):
    monkeypatch.setattr(Conf, "SYNC", False)  # a real broker: the task waits for a worker

    with on_commit():
        queued = queue_scheduled_syncs()

    assert len(queued) == ALBUMS and {run.status for run in queued} == {"queued"}
    assert OrmQ.objects.count() == 1  # one task for all of them


def test_the_schedules_task_syncs_every_album_as_one_run(library, s3, s3_requests, on_commit):
    with on_commit():  # Q_CLUSTER sync mode: the task runs here, when the queue commits
        queued = queue_scheduled_syncs()

    runs = SyncRun.objects.filter(pk__in=[run.pk for run in queued])
    assert {(run.status, run.trigger) for run in runs} == {("success", "schedule")}
    assert s3_requests.counts["ListObjectsV2"] == 1
    assert len(s3.object_keys()) == ALBUMS * PHOTOS


def test_uploads_refused_midway_stop_every_album_not_ended_and_keep_what_went_up(
    library, s3, s3_requests
):
    puts = {"allowed": ALBUMS * PHOTOS // 2}
    refused = []

    def refuse_after_half(op, request):
        if op == "PutObject" and "/albums/" in request.url:
            if puts["allowed"] == 0:
                refused.append(request.url.split(".com/", 1)[1])
                return s3_error(request, 403, "AccessDenied")
            puts["allowed"] -= 1
        return None

    s3_requests.fault = refuse_after_half

    outcomes = sync_all(library, workers=2)

    statuses = {o.result.status for o in outcomes.values()}
    assert statuses == {"success", "failed"}
    stopped = [o for o in outcomes.values() if o.result.status == "failed"]
    assert {type(o.error) for o in stopped} == {StorageAccessDenied}
    assert "s3:PutObject" in stopped[0].result.message
    assert recorded_is_in_bucket(s3, refused=refused)
    assert Photo.objects.count() == ALBUMS * PHOTOS // 2
    assert no_run_left_open()
    assert not Album.objects.filter(sync_lease_token__gt="").exists()


def test_an_upload_without_an_answer_fails_alone_in_the_first_album(library, s3, s3_requests):
    """The run's listing was answered: a dropped upload, even the first of all, is that
    file's failure, not a sign that the endpoint is gone."""

    def drop_one(op, request):
        if op == "PutObject" and "/event-000/0.jpg" in request.url:
            raise ConnectionClosedError(endpoint_url=request.url)

    s3_requests.fault = drop_one

    outcomes = sync_all(library, workers=1)

    first = outcomes["event-000"]
    assert (first.result.status, first.result.failed, first.result.uploaded) == ("partial", 1, 2)
    run = SyncRun.objects.get(album__slug="event-000")  # as stored, and as the admin shows it
    assert (run.status, run.failed, run.uploaded, run.files_done) == ("partial", 1, 2, 3)
    assert [error["path"] for error in run.errors] == ["0.jpg"] and run.finished_at
    assert Album.objects.get(slug="event-000").last_sync_status == "partial"
    others = [o for slug, o in outcomes.items() if slug != "event-000"]
    assert {o.result.status for o in others} == {"success"}
    assert Photo.objects.count() == ALBUMS * PHOTOS - 1


def test_an_album_whose_lease_another_sync_took_stops_alone(library, s3, monkeypatch):
    """The run stalled past the lease's expiry and another sync took event-020 over: that
    album stops (what it sent is recorded), the others go on, and the other sync's lease and
    the album's last status are left to the other sync."""
    renew = AlbumLeases.renew_if_due
    calls = {"n": 0}

    def taken_over_midway(self):
        calls["n"] += 1
        if calls["n"] == 20:
            Album.objects.filter(slug="event-020").update(sync_lease_token="another-sync")
            self._renewed = 0.0  # due now
        renew(self)

    monkeypatch.setattr(AlbumLeases, "renew_if_due", taken_over_midway)

    outcomes = sync_all(library)

    lost = outcomes["event-020"]
    assert isinstance(lost.error, SyncLeaseLost) and lost.result.status == "failed"
    others = [o for slug, o in outcomes.items() if slug != "event-020"]
    assert {o.result.status for o in others} == {"success"}
    album = Album.objects.get(slug="event-020")
    assert (album.sync_lease_token, album.last_sync_status) == ("another-sync", "")
    assert recorded_is_in_bucket(s3) and no_run_left_open()


def test_ctrl_c_between_albums_ends_the_run_with_what_went_up_recorded(library, s3):
    def press_ctrl_c_at_event_010(album):
        if album.slug != "event-010":
            return None
        return lambda done, total: os.kill(os.getpid(), signal.SIGINT) if done == 1 else None

    seen = []
    with pytest.raises(KeyboardInterrupt):
        for outcome in sync_albums(library, progress=press_ctrl_c_at_event_010):
            seen.append(outcome.album.slug)

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert recorded_is_in_bucket(s3) and no_run_left_open()
    assert not Album.objects.filter(sync_lease_token__gt="").exists()
    interrupted = SyncRun.objects.filter(message=INTERRUPTED)
    assert interrupted.filter(album__slug="event-039").exists()  # never started
    assert not Photo.objects.filter(album__slug="event-039").exists()
    assert {run.status for run in interrupted} == {"failed"}
    assert "event-039" not in seen


def test_a_prune_over_many_albums_waits_for_every_album_before_deleting(
    library, photos_root, s3, s3_requests
):
    """Photos deleted from two albums and one moved from an album to a later one: the prune
    of the albums synced first waits, so the moved photo is copied, not uploaded again."""
    sync_all(library)
    (photos_root / "event-000/0.jpg").unlink()
    (photos_root / "event-020/1.jpg").unlink()
    (photos_root / "event-005/2.jpg").rename(photos_root / "event-030/moved.jpg")
    s3_requests.reset()

    outcomes = sync_all(library, prune=True)

    counts = {
        slug: (o.result.removed, o.result.pruned, o.result.moved, o.result.uploaded)
        for slug, o in outcomes.items()
        if slug in ("event-000", "event-005", "event-020", "event-030")
    }
    assert counts == {
        "event-000": (1, 1, 0, 0),
        "event-005": (1, 0, 0, 0),  # its record went with the photo to event-030
        "event-020": (1, 1, 0, 0),
        "event-030": (0, 1, 1, 0),  # the moved photo's old object
    }
    assert "PutObject" not in s3_requests.counts and s3_requests.counts["CopyObject"] == 1
    assert s3_requests.counts["DeleteObjects"] == 3  # one per album that prunes
    assert Photo.objects.count() == ALBUMS * PHOTOS - 2
    assert recorded_is_in_bucket(s3) and no_run_left_open()
    assert not Album.objects.filter(sync_lease_token__gt="").exists()


def test_ctrl_c_while_a_prune_waits_for_the_other_albums_deletes_nothing(
    library, photos_root, s3, s3_requests
):
    sync_all(library)
    (photos_root / "event-000/0.jpg").unlink()
    s3_requests.reset()

    def press_ctrl_c_at_event_010(album):
        if album.slug != "event-010":
            return None
        return lambda done, total: os.kill(os.getpid(), signal.SIGINT) if done == 1 else None

    with pytest.raises(KeyboardInterrupt):
        list(sync_albums(library, prune=True, progress=press_ctrl_c_at_event_010))

    run = SyncRun.objects.filter(album__slug="event-000").latest("pk")
    assert (run.status, run.message) == ("failed", INTERRUPTED)
    assert "DeleteObjects" not in s3_requests.counts
    assert "albums/event-000/0.jpg" in s3.object_keys()
    assert Photo.objects.filter(album__slug="event-000", path="0.jpg").exists()
    assert no_run_left_open() and not Album.objects.filter(sync_lease_token__gt="").exists()

    outcomes = sync_all(library, prune=True)  # the next prune deletes it

    assert outcomes["event-000"].result.pruned == 1
    assert recorded_is_in_bucket(s3)


def test_a_bad_setting_fails_the_queued_runs_of_a_task_instead_of_leaving_them(
    library, s3, settings, on_commit
):
    settings.ALBUMS_SYNC_WORKERS = "many"

    with on_commit():  # Q_CLUSTER sync mode: the task runs here, when the queue commits
        queued = queue_syncs(albums=library[:3], trigger=SyncRun.Trigger.ADMIN)

    runs = SyncRun.objects.filter(pk__in=[run.pk for run in queued])
    assert {run.status for run in runs} == {"failed"}
    assert all("ALBUMS_SYNC_WORKERS" in run.message for run in runs)
    assert not Photo.objects.exists()


def test_the_next_slot_finds_a_waiting_task_by_one_read_of_the_queue(
    library, s3, monkeypatch, on_commit
):
    """The schedule fires while its last task still waits for a worker: each album's run is
    handed back (its task will come), and the broker's queue is read once, not once an album."""
    monkeypatch.setattr(Conf, "SYNC", False)  # a real broker: the task waits for a worker
    with on_commit():
        first = queue_scheduled_syncs()
    SyncRun.objects.update(queued_at=F("queued_at") - timedelta(minutes=5))  # past the grace

    with CaptureQueriesContext(connection) as queries, on_commit():
        again = queue_scheduled_syncs()

    assert [run.pk for run in again] == [run.pk for run in first]
    assert OrmQ.objects.count() == 1
    reads = [q for q in queries.captured_queries if "django_q_ormq" in q["sql"]]
    assert len(reads) == 1, [q["sql"][:80] for q in reads]
