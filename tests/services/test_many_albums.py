"""A run over many albums costs what its photos cost: one client, one listing of the common
prefix, the albums side by side, the bookkeeping in bulk; each album still ends on its own."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf
from django_q.models import OrmQ

from albums.exceptions import AlbumFolderMissing, StorageAccessDenied, SyncAlreadyRunning
from albums.models import Album, Photo, SyncRun
from albums.storage import bucket as bucket_module
from albums.sync import queue_scheduled_syncs, sync_albums
from albums.sync.lease import AlbumLease
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


def sync_all(albums):
    return {outcome.album.slug: outcome for outcome in sync_albums(albums)}


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


def test_a_no_op_over_many_albums_costs_one_listing_and_a_query_an_album(library, s3, s3_requests):
    sync_all(library)
    s3_requests.reset()

    with CaptureQueriesContext(connection) as queries:
        outcomes = sync_all(library)

    assert {o.result.unchanged for o in outcomes.values()} == {PHOTOS}
    listings = math.ceil(ALBUMS * PHOTOS / 1000)
    assert dict(s3_requests.counts) == {"ListObjectsV2": listings}
    assert len(queries) <= 2 * ALBUMS + 30, [q["sql"][:80] for q in queries.captured_queries]


def test_a_first_run_over_many_albums_stays_within_its_query_budget(library, s3, s3_requests):
    with CaptureQueriesContext(connection) as queries:
        sync_all(library)

    assert s3_requests.counts["ListObjectsV2"] == 1
    assert s3_requests.counts["PutObject"] == ALBUMS * PHOTOS
    assert len(queries) <= 2 * ALBUMS + 30, [q["sql"][:80] for q in queries.captured_queries]


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
