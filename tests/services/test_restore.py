"""restore_album: photos brought back from the bucket, checked, without breaking the next sync."""

import hashlib
import os
import unicodedata
from datetime import date
from io import StringIO

import botocore.handlers
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from albums.exceptions import SyncAlreadyRunning
from albums.models import Album, Photo, SyncRun
from albums.storage import forget_clients
from albums.storage.bucket import OBJECT_CHANGED
from albums.sync import restore_album, restore_from_bucket, sync_album
from albums.sync.records.lease import AlbumLease
from albums.sync.recovery import restore as restore_module
from tests.conftest import ALBUM_PHOTOS, make_staff, write_photo

pytestmark = pytest.mark.django_db
KEY = "albums/summer-2024/{}"


def snapshot(folder):
    """Every file under `folder`: its bytes and modification time, by relative path."""
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_half_lost_album_comes_back_as_it_was_and_the_next_sync_sends_nothing(
    photos_root, over_http, s3_requests, opened_files
):
    folder = photos_root / "Trip"
    for number in range(20):
        write_photo(
            folder / f"day {number % 3}" / f"{number:02}.jpg",
            color=(number * 10, 40, 90),
            mtime_ns=1_690_000_000_123_456_789 + number * 1_000_000_007,
        )
    album = Album.objects.create(name="Trip", slug="trip", folder="Trip")
    sync_album(album=album)
    before = snapshot(folder)
    for path in sorted(folder.rglob("*.jpg"))[::2]:
        path.unlink()

    result = restore_album(album=album)

    assert (result.status, result.restored, result.already_present) == ("success", 10, 10)
    assert snapshot(folder) == before  # bytes and times, to the nanosecond
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")]  # no partial file
    opened_files.paths.clear()
    s3_requests.reset()
    again = sync_album(album=album)
    assert (again.unchanged, again.uploaded, again.reuploaded) == (20, 0, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1} and opened_files.paths == []
    run = SyncRun.objects.get(pk=result.run_id)
    assert (run.kind, run.restored, run.bytes_downloaded) == (
        "restore",
        10,
        result.bytes_downloaded,
    )


def test_a_restore_elsewhere_leaves_the_album_and_its_records_alone(album, s3, tmp_path):
    sync_album(album=album)
    records = list(Photo.objects.values_list("path", "size", "mtime_ns"))
    elsewhere = tmp_path / "elsewhere"

    result = restore_album(album=album, to=elsewhere)

    assert result.restored == 3
    assert snapshot(elsewhere) == snapshot(album.path)
    assert list(Photo.objects.values_list("path", "size", "mtime_ns")) == records


def test_a_bucket_copy_that_is_not_what_was_uploaded_is_not_written(album, s3):
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    key = KEY.format("photo1.jpg")
    s3.put(key, bytes(reversed(s3.body(key))))  # same size, other bytes

    result = restore_album(album=album)

    assert (result.status, result.bucket_differs, result.restored) == ("partial", 1, 0)
    assert [(p.path, p.error) for p in result.problems] == [
        ("photo1.jpg", restore_module.BUCKET_DIFFERS)
    ]
    assert not (album.path / "photo1.jpg").exists()


def test_a_download_that_does_not_match_its_record_is_not_written(album, s3):
    """The same check after the download itself, for a copy whose ETag told nothing."""
    sync_album(album=album)
    (album.path / "photo2.jpg").unlink()
    key = KEY.format("photo2.jpg")
    s3.put(key, bytes(reversed(s3.body(key))))
    Photo.objects.filter(path="photo2.jpg").update(etag="")  # recorded before ETags

    result = restore_album(album=album)

    assert (result.bucket_differs, result.restored) == (1, 0)
    assert not (album.path / "photo2.jpg").exists()
    assert not [p for p in album.path.iterdir() if p.name.startswith(".")]


def test_a_local_file_that_differs_is_kept_unless_overwrite_then_kept_aside(album, s3):
    sync_album(album=album)
    edited = album.path / "photo1.jpg"
    write_photo(edited, color=(1, 2, 3), mtime_ns=1_700_000_999_000_000_000)
    mine = edited.read_bytes()

    kept = restore_album(album=album)

    assert (kept.local_differs, kept.restored, kept.status) == (1, 0, "partial")
    assert edited.read_bytes() == mine

    overwritten = restore_album(album=album, overwrite=True)

    assert (overwritten.kept_aside, overwritten.restored, overwritten.status) == (1, 1, "success")
    aside = album.path / f"photo1.local-{date.today().isoformat()}.jpg"
    assert aside.read_bytes() == mine
    assert hashlib.md5(edited.read_bytes()).hexdigest() == Photo.objects.get(path="photo1.jpg").md5


def test_a_restore_never_runs_beside_a_sync(album, s3):
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    lease = AlbumLease(album)
    lease.acquire()
    try:
        with pytest.raises(SyncAlreadyRunning):
            restore_album(album=album)
    finally:
        lease.release()
    assert not (album.path / "photo1.jpg").exists()  # nothing was written


def test_from_the_bucket_alone_with_an_empty_database(
    album, over_http, s3_requests, opened_files, settings
):
    sync_album(album=album)
    before = snapshot(album.path)
    for path in list(album.path.rglob("*.jpg")):
        path.unlink()
    Album.objects.all().delete()  # the database is gone too

    result = restore_from_bucket(slug="summer-2024", folder="Summer 2024")

    assert (result.status, result.recorded, result.restored) == ("success", 3, 3)
    assert snapshot(album.path) == before  # the times came back from the objects' metadata
    restored = Album.objects.get(slug="summer-2024")
    assert restored.photos.count() == 3
    opened_files.paths.clear()
    s3_requests.reset()
    again = sync_album(album=restored)
    assert (again.unchanged, again.uploaded, again.reuploaded) == (3, 0, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1} and opened_files.paths == []


def test_renames_reach_the_disk_a_folder_at_a_time_and_before_their_records(album, s3, monkeypatch):
    """Each folder the restored photos were renamed in is flushed to disk once for the
    batch, not once per photo, and a photo restored from the bucket alone is recorded only
    after its folder was flushed: no record names a file a power cut could take back."""
    sync_album(album=album)
    for path in list(album.path.rglob("*.jpg")):
        path.unlink()
    Album.objects.all().delete()
    events = []
    flush_folder = restore_module._sync_folder
    record = restore_module.RunRecords.restored

    def flushing(folder):
        events.append(("flush", folder))
        flush_folder(folder)

    def recording(self, *, path, **fields):
        events.append(("record", path))
        record(self, path=path, **fields)

    monkeypatch.setattr(restore_module, "_sync_folder", flushing)
    monkeypatch.setattr(restore_module.RunRecords, "restored", recording)

    result = restore_from_bucket(slug="summer-2024", folder="Summer 2024")

    assert result.restored == 3
    flushed = [folder for kind, folder in events if kind == "flush"]
    assert sorted(flushed) == sorted({(album.path / name).parent for name in ALBUM_PHOTOS})
    assert [kind for kind, _ in events] == ["flush"] * len(flushed) + ["record"] * 3
    assert Album.objects.get(slug="summer-2024").photos.count() == 3


LARGE = 9 * 1024 * 1024  # over the 8 MiB multipart threshold: two parts up, two ranges down


@pytest.fixture
def large_album(photos_root, over_http):
    """An album of one small photo and one file large enough to go up in parts, synced."""
    folder = photos_root / "Raw"
    write_photo(folder / "small.jpg", color=(9, 9, 9))
    large = folder / "large.dng"
    large.write_bytes(os.urandom(LARGE))
    os.utime(large, ns=(1_690_000_000_123_456_789, 1_690_000_000_123_456_789))
    album = Album.objects.create(name="Raw", slug="raw", folder="Raw")
    sync_album(album=album)
    return album


def test_a_large_file_comes_down_in_ranges_side_by_side_without_a_head(
    large_album, over_http, s3_requests
):
    before = snapshot(large_album.path)
    (large_album.path / "large.dng").unlink()
    s3_requests.reset()

    result = restore_album(album=large_album)

    assert (result.status, result.restored, result.bytes_downloaded) == ("success", 1, LARGE)
    assert snapshot(large_album.path) == before  # bytes and time
    # One ranged GET per part; size and ETag came from the listing, so no HEAD.
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1, "GetObject": 2}


def test_a_large_download_that_does_not_match_its_record_is_not_written(large_album, over_http):
    (large_album.path / "large.dng").unlink()
    key = "albums/raw/large.dng"
    over_http.put(key, os.urandom(LARGE))  # same size, other bytes
    Photo.objects.filter(path="large.dng").update(etag="")  # only the MD5 can tell

    result = restore_album(album=large_album)

    assert (result.status, result.bucket_differs, result.restored) == ("partial", 1, 0)
    assert sorted(p.name for p in large_album.path.iterdir()) == ["small.jpg"]  # no partial


def test_a_large_copy_replaced_during_its_download_is_not_mixed_and_fails_alone(
    large_album, over_http
):
    """Every range asks for the listed ETag: a copy replaced after the listing fails that
    file (412), never a file made of two objects' ranges; the other photos come back."""
    (large_album.path / "large.dng").unlink()
    (large_album.path / "small.jpg").unlink()
    replaced = []

    def replace_once(**kwargs):
        if not replaced and kwargs["params"].get("Key", "").endswith("large.dng"):
            replaced.append(True)
            over_http.put("albums/raw/large.dng", os.urandom(LARGE))

    entry = ("before-parameter-build.s3.GetObject", replace_once)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    forget_clients()
    try:
        result = restore_album(album=large_album)
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        forget_clients()

    assert replaced and (result.status, result.restored) == ("partial", 1)
    assert [f.path for f in result.failures] == ["large.dng"]
    assert result.failures[0].error == OBJECT_CHANGED
    assert sorted(p.name for p in large_album.path.iterdir()) == ["small.jpg"]


def test_a_large_file_from_the_bucket_alone_gets_its_time_from_one_head(
    large_album, over_http, s3_requests
):
    before = snapshot(large_album.path)
    for path in list(large_album.path.iterdir()):
        path.unlink()
    Album.objects.all().delete()
    s3_requests.reset()

    result = restore_from_bucket(slug="raw", folder="Raw")

    assert (result.status, result.restored) == ("success", 2)
    assert snapshot(large_album.path) == before
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1, "GetObject": 3, "HeadObject": 1}


HARD_NAMES = [
    "with space.jpg",
    "100% #1 +plus.jpg",
    unicodedata.normalize("NFC", "café.jpg"),
    unicodedata.normalize("NFD", "café.jpg"),
    "日本/写真.jpg",
    "a&b?c.jpg",
]


def test_names_that_were_hard_to_upload_come_back_byte_for_byte(photos_root, over_http):
    folder = photos_root / "Hard"
    for number, name in enumerate(HARD_NAMES):
        write_photo(folder / name, color=(number * 30, 1, 1))
    album = Album.objects.create(name="Hard", slug="hard", folder="Hard")
    sync_album(album=album)
    before = snapshot(folder)
    for name in HARD_NAMES:
        (folder / name).unlink()

    result = restore_album(album=album)

    assert result.restored == len(HARD_NAMES)
    assert sorted(os.fsencode(p) for p in snapshot(folder)) == sorted(
        os.fsencode(p) for p in before
    )
    assert snapshot(folder) == before


def test_the_command_and_its_exit_status(album, s3, tmp_path):
    sync_album(album=album)
    (album.path / "photo2.jpg").unlink()
    out = StringIO()

    call_command("restore_album", "summer-2024", "--dry-run", stdout=out)
    assert "1 would be restored" in out.getvalue()
    assert not (album.path / "photo2.jpg").exists()

    call_command("restore_album", "summer-2024", stdout=StringIO())
    assert (album.path / "photo2.jpg").exists()

    s3.delete(KEY.format("photo1.jpg"))
    (album.path / "photo1.jpg").unlink()
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 albums were not restored whole"):
        call_command("restore_album", "summer-2024", stdout=out)
    assert "photo1.jpg: " + restore_module.MISSING_IN_BUCKET in out.getvalue()
    with pytest.raises(CommandError, match="--from-bucket restores one album"):
        call_command("restore_album", "summer-2024", "--from-bucket", stdout=StringIO())


def test_the_admin_and_the_api_queue_a_restore_with_their_own_permission(
    album, s3, django_user_model, on_commit
):
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    syncer = make_staff(django_user_model, "only-sync", "view_album", "change_album", "sync_album")
    restorer = make_staff(
        django_user_model, "restorer", "view_album", "change_album", "restore_album"
    )
    url = reverse("admin:albums_album_restore", args=[album.pk])
    page = reverse("admin:albums_album_change", args=[album.pk])

    denied = Client()
    denied.force_login(syncer)
    assert "Restore missing photos" not in denied.get(page).content.decode()
    assert denied.post(url).status_code == 403
    assert denied.post("/api/albums/summer-2024/restore/").status_code == 403

    allowed = Client()
    allowed.force_login(restorer)
    assert "Restore missing photos" in allowed.get(page).content.decode()
    with on_commit():
        allowed.post(url)
    run = SyncRun.objects.get(kind="restore")
    assert (run.status, run.restored, run.trigger) == ("success", 1, "admin")
    assert (album.path / "photo1.jpg").exists()
