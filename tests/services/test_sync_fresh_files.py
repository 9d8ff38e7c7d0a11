"""Photos written moments before a run (a copy, an import, an edit) are synced by that run,
once they stop changing; only one still being written is left for the next run."""

import logging
import os
import time

import pytest

from albums.models import Album, Photo
from albums.sync import sync_album
from albums.sync.engine import photo_pass
from tests.conftest import Appender, write_photo

pytestmark = pytest.mark.django_db


def just_now() -> int:
    return time.time_ns()


def test_photos_copied_in_just_now_are_uploaded_by_this_run(album, s3, settings):
    settings.ALBUMS_SETTLE_SECONDS = 5
    write_photo(album.path / "new 1.jpg", mtime_ns=just_now())
    write_photo(album.path / "day 2" / "new 2.jpg", mtime_ns=just_now())

    result = sync_album(album=album)

    assert (result.uploaded, result.deferred, result.status) == (5, 0, "success")
    for name in ("new 1.jpg", "day 2/new 2.jpg"):
        photo = Photo.objects.get(path=name)
        assert photo.size == s3.head(f"albums/summer-2024/{name}")["ContentLength"]
    assert sync_album(album=album).uploaded == 0


def test_a_photo_edited_just_before_the_run_is_uploaded_again(album, s3, settings):
    sync_album(album=album)
    settings.ALBUMS_SETTLE_SECONDS = 5
    write_photo(album.path / "photo1.jpg", color=(9, 9, 9), size=(64, 64), mtime_ns=just_now())

    result = sync_album(album=album)

    assert (result.reuploaded, result.unchanged, result.deferred) == (1, 2, 0)
    assert s3.body("albums/summer-2024/photo1.jpg") == (album.path / "photo1.jpg").read_bytes()


def test_a_file_still_being_written_is_left_for_the_next_run_and_named(album, s3, settings, caplog):
    settings.ALBUMS_SETTLE_SECONDS = 2
    copying = album.path / "copying.jpg"
    write_photo(copying, mtime_ns=just_now())

    with Appender(copying), caplog.at_level(logging.WARNING, logger="albums"):
        result = sync_album(album=album)

    assert (result.uploaded, result.deferred, result.status) == (3, 1, "success")
    assert result.still_changing == ("copying.jpg",)
    assert "1 still changing, not uploaded this time (the next run will)" in result.summary()
    assert (
        "Still changing after 2 seconds, not uploaded this time (the next run will): copying.jpg"
        in caplog.messages
    )
    assert not Photo.objects.filter(path="copying.jpg").exists()
    assert "albums/summer-2024/copying.jpg" not in s3.object_keys()

    again = sync_album(album=album)  # the copy has finished
    assert (again.uploaded, again.deferred) == (1, 0)
    photo = Photo.objects.get(path="copying.jpg")
    assert photo.size == copying.stat().st_size == len(s3.body("albums/summer-2024/copying.jpg"))


def test_a_known_photo_being_rewritten_is_neither_orphaned_nor_uploaded(album, s3, settings):
    sync_album(album=album)
    recorded = Photo.objects.get(path="photo1.jpg")
    settings.ALBUMS_SETTLE_SECONDS = 2

    with Appender(album.path / "photo1.jpg"):
        result = sync_album(album=album, prune=True)

    assert (result.deferred, result.reuploaded, result.orphaned, result.pruned) == (1, 0, 0, 0)
    kept = Photo.objects.get(path="photo1.jpg")
    assert (kept.size, kept.mtime_ns) == (recorded.size, recorded.mtime_ns)
    assert s3.head("albums/summer-2024/photo1.jpg")["ContentLength"] == recorded.size


def test_a_dry_run_reports_fresh_files_the_same_way(album, s3, settings):
    settings.ALBUMS_SETTLE_SECONDS = 2
    write_photo(album.path / "settled.jpg", mtime_ns=just_now())
    copying = album.path / "copying.jpg"
    write_photo(copying, mtime_ns=just_now())

    with Appender(copying):
        result = sync_album(album=album, dry_run=True)

    assert (result.uploaded, result.deferred) == (4, 1)
    assert result.still_changing == ("copying.jpg",)
    assert "1 still changing, would not be uploaded this time" in result.summary()
    assert s3.object_keys() == [] and not Photo.objects.exists()


def test_no_photo_outside_the_settle_window_is_watched(photos_root, local_bucket, settings, caplog):
    """A run of 1,000 unchanged photos never waits: none of them was modified lately."""
    folder = photos_root / "Many"
    folder.mkdir()
    for number in range(1000):
        path = folder / f"{number:04}.jpg"
        path.write_bytes(b"photo %d" % number)
        os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)
    album = Album.objects.create(name="Many", slug="many", folder="Many")
    settings.ALBUMS_SETTLE_SECONDS = 5
    assert sync_album(album=album).uploaded == 1000

    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album)

    assert (result.unchanged, result.deferred) == (1000, 0)
    watched = [m for m in caplog.messages if m.startswith(photo_pass.WATCHING.split("%s")[0])]
    waited = [m for m in caplog.messages if m.startswith("Waiting for")]
    assert (watched, waited) == ([], [])
