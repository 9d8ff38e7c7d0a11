"""Which files count as photos, the per-album lock, and the embedded local storage."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from albums.exceptions import AlbumFolderMissing, SyncAlreadyRunning
from albums.models import Album, Photo, SyncRun
from albums.sync import discover_albums, sync_album
from albums.sync.records.lease import AlbumLease
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db


def test_scan_takes_photos_only_and_never_leaves_the_album(album, local_bucket, tmp_path):
    folder = album.path
    write_photo(folder / "LOUD.JPG")
    (folder / "raw.CR2").write_bytes(b"raw sensor data")
    (folder / "notes.txt").write_text("not a photo")
    write_photo(folder / ".hidden.jpg")
    write_photo(folder / ".thumbs" / "t.jpg")
    (folder / "folder.jpg").mkdir()  # a directory named like a photo
    outside = write_photo(tmp_path / "private" / "secret.jpg")
    (folder / "link-out.jpg").symlink_to(outside)
    (folder / "dir-out").symlink_to(outside.parent)
    (folder / "loop").symlink_to(folder)  # a link loop back to the album itself
    (folder / "inside.jpg").symlink_to(folder / "photo1.jpg")

    result = sync_album(album=album)

    paths = set(Photo.objects.values_list("path", flat=True))
    assert paths == {
        "photo1.jpg",
        "photo2.jpg",
        "day 2/100% fun #1.jpg",
        "LOUD.JPG",
        "raw.CR2",
        "inside.jpg",
    }
    assert result.status == "success"
    assert Photo.objects.get(path="raw.CR2").content_type == "image/x-canon-cr2"


def test_extensions_can_be_added_to_the_defaults(album, local_bucket, settings):
    settings.ALBUMS_PHOTO_EXTENSIONS = "+XMP, .mov"
    (album.path / "photo1.jpg.xmp").write_text("<xmp/>")
    (album.path / "clip.MOV").write_bytes(b"\x00\x00\x00\x18ftypqt  ")
    (album.path / "notes.txt").write_text("not a photo")

    result = sync_album(album=album)

    assert result.scanned == 5  # the three JPEGs, the sidecar and the video
    assert Photo.objects.get(path="clip.MOV").content_type == "video/quicktime"
    settings.ALBUMS_PHOTO_EXTENSIONS = "xmp"  # without "+": only these
    assert sync_album(album=album, dry_run=True).scanned == 1


def test_local_storage_keeps_the_same_promises(album, local_bucket):
    first = sync_album(album=album)
    stored = local_bucket / "albums" / "summer-2024" / "day 2" / "100% fun #1.jpg"
    assert (
        first.uploaded == 3
        and stored.read_bytes() == (album.path / "day 2/100% fun #1.jpg").read_bytes()
    )

    assert sync_album(album=album).unchanged == 3
    stored.unlink()
    (local_bucket / "albums/summer-2024/photo1.jpg").write_bytes(b"truncated")
    again = sync_album(album=album)
    assert (again.reuploaded, again.unchanged) == (2, 1)
    assert stored.exists()


def test_a_second_sync_of_the_same_album_is_refused_while_one_runs(album, local_bucket):
    refusals = []

    def start_another(done, total):
        if not refusals:
            with pytest.raises(SyncAlreadyRunning) as caught:
                sync_album(album=Album.objects.get(pk=album.pk))
            refusals.append(str(caught.value))

    result = sync_album(album=album, progress=start_another)

    assert result.status == "success"
    assert refusals == [
        "Another sync of album 'Summer 2024' is running; try again when it has finished."
    ]
    assert SyncRun.objects.count() == 1


def test_a_queued_run_refused_by_the_lock_is_recorded_as_skipped(album, local_bucket):
    AlbumLease(album).acquire()
    queued = SyncRun.objects.create(album=album, trigger="admin", status="queued")

    with pytest.raises(SyncAlreadyRunning):
        sync_album(album=album, run=queued)

    queued.refresh_from_db()
    assert queued.status == "skipped" and "is running" in queued.message


def test_a_sync_that_died_frees_the_album_when_its_lease_expires(album, local_bucket):
    AlbumLease(album).acquire()  # a run that never released its lease
    Album.objects.filter(pk=album.pk).update(
        sync_lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    result = sync_album(album=album)

    assert result.uploaded == 3
    album.refresh_from_db()
    assert not album.is_syncing and album.sync_lease_token == ""


def test_the_lease_is_released_after_a_failed_run(album, local_bucket):
    album.path.rename(album.path.with_name("gone"))
    with pytest.raises(AlbumFolderMissing):
        sync_album(album=album)
    album.refresh_from_db()
    assert album.sync_lease_expires_at is None


def test_discover_makes_one_album_per_new_top_level_folder(photos_root):
    for name in ("Summer 2024", "summer-2024", "Été", ".cache"):
        (photos_root / name).mkdir()
    (photos_root / "loose.jpg").write_bytes(b"not a folder")

    created = discover_albums()

    assert {(a.folder, a.slug) for a in created} == {
        ("Summer 2024", "summer-2024"),
        ("summer-2024", "summer-2024-2"),
        ("Été", "été"),
    }
    assert discover_albums() == []


def test_discover_costs_three_queries_however_many_folders_are_new(
    photos_root, django_assert_num_queries
):
    for number in range(120):
        (photos_root / f"Event {number:03}").mkdir()
    Album.objects.create(name="Old", slug="event-007", folder="elsewhere")

    with django_assert_num_queries(3):
        created = discover_albums()

    assert len(created) == 120
    assert [a.slug for a in created[6:9]] == ["event-006", "event-007-2", "event-008"]


def test_folder_validation_rejects_escapes(photos_root, tmp_path):
    from django.core.exceptions import ValidationError

    os.symlink(tmp_path, photos_root / "link-out")
    for folder in ("../x", "/etc", "a/../../x", "link-out"):
        album = Album(name="x", slug="x", folder=folder)
        with pytest.raises(ValidationError):
            album.full_clean()
