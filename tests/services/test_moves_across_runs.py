"""A photo moved or renamed between two runs (two admin clicks, two schedules): the run that
finds it gone without pruning remembers its content (DepartedPhoto) for
ALBUMS_MOVE_WINDOW_DAYS, the later run that finds the same content copies the old object
inside the bucket instead of uploading it, and the old album's next prune removes the old
object as untracked."""

from datetime import timedelta

import pytest
from django.utils import timezone

from albums.models import Album, DepartedPhoto, Photo
from albums.sync import sync_album, sync_albums
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

OLD_KEY = "albums/summer-2024/photo2.jpg"


@pytest.fixture
def winter(photos_root, album, s3):
    """A second album, both synced."""
    other = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    write_photo(photos_root / "Winter" / "snow.jpg", color=(1, 2, 3))
    list(sync_albums([album, other]))
    return other


def move_photo2(album, winter):
    (album.path / "photo2.jpg").rename(winter.path / "photo2.jpg")


def test_a_photo_moved_to_an_album_synced_in_a_later_run_is_copied_not_uploaded(
    album, winter, s3, s3_requests
):
    photo = Photo.objects.get(path="photo2.jpg")
    move_photo2(album, winter)

    left = sync_album(album=album)  # the old album first, without --prune
    assert left.removed == 1 and not Photo.objects.filter(pk=photo.pk).exists()
    departed = DepartedPhoto.objects.get()
    assert (departed.key, departed.md5, departed.size) == (OLD_KEY, photo.md5, photo.size)
    s3_requests.reset()

    arrived = sync_album(album=winter)

    assert (arrived.moved, arrived.uploaded, arrived.bytes_uploaded) == (1, 0, 0)
    assert s3_requests.counts["CopyObject"] == 1 and "PutObject" not in s3_requests.counts
    new = Photo.objects.get(album=winter, path="photo2.jpg")
    assert (new.key, new.md5) == ("albums/winter/photo2.jpg", photo.md5)
    assert s3.body("albums/winter/photo2.jpg") == (winter.path / "photo2.jpg").read_bytes()
    assert not DepartedPhoto.objects.exists()  # its content lives on in the new record

    pruned = sync_album(album=album, prune=True)  # the old album's next prune

    assert (pruned.untracked_pruned, pruned.pruned) == (1, 0)
    assert OLD_KEY not in s3.object_keys()
    assert "albums/winter/photo2.jpg" in s3.object_keys()


def test_a_photo_renamed_after_it_was_forgotten_is_copied(album, s3, s3_requests, tmp_path):
    sync_album(album=album)
    (album.path / "photo1.jpg").rename(tmp_path / "aside.jpg")
    sync_album(album=album)
    (tmp_path / "aside.jpg").rename(album.path / "renamed.jpg")
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.moved, result.uploaded) == (1, 0)
    assert "PutObject" not in s3_requests.counts


def test_a_prune_keeps_no_memory_of_what_it_deleted(album, winter, s3, s3_requests):
    move_photo2(album, winter)
    sync_album(album=album, prune=True)
    assert not DepartedPhoto.objects.exists() and OLD_KEY not in s3.object_keys()
    s3_requests.reset()

    result = sync_album(album=winter)

    assert (result.uploaded, result.moved) == (1, 0)
    assert "CopyObject" not in s3_requests.counts


def test_a_photo_forgotten_longer_ago_than_the_window_is_uploaded(
    album, winter, s3, s3_requests, settings
):
    settings.ALBUMS_MOVE_WINDOW_DAYS = 30
    move_photo2(album, winter)
    sync_album(album=album)
    DepartedPhoto.objects.update(departed_at=timezone.now() - timedelta(days=31))
    s3_requests.reset()

    result = sync_album(album=winter)

    assert (result.uploaded, result.moved) == (1, 0)
    assert "CopyObject" not in s3_requests.counts
    # The next run that forgets a photo of the old album drops what the window let go.
    (album.path / "photo1.jpg").unlink()
    sync_album(album=album)
    assert list(DepartedPhoto.objects.values_list("path", flat=True)) == ["photo1.jpg"]


def test_no_memory_at_all_with_a_window_of_zero_days(album, winter, s3, settings):
    settings.ALBUMS_MOVE_WINDOW_DAYS = 0
    move_photo2(album, winter)
    sync_album(album=album)

    assert not DepartedPhoto.objects.exists()
    assert sync_album(album=winter).uploaded == 1


def test_a_new_photo_at_the_old_key_is_never_copied_for_the_old_content(
    album, winter, s3, s3_requests
):
    """The old album gets a new photo under the same name: its upload replaces the old
    object, so the content it held is no longer anywhere to copy from."""
    move_photo2(album, winter)
    sync_album(album=album)
    write_photo(album.path / "photo2.jpg", color=(250, 250, 250), size=(64, 64))
    sync_album(album=album)
    assert not DepartedPhoto.objects.exists()
    s3_requests.reset()

    result = sync_album(album=winter)

    assert (result.uploaded, result.moved) == (1, 0)
    assert s3.body("albums/winter/photo2.jpg") == (winter.path / "photo2.jpg").read_bytes()


def test_a_copy_that_brings_other_bytes_is_replaced_by_an_upload(album, winter, s3, s3_requests):
    """Someone replaced the old object by hand: the copy's ETag says it is not the
    photo, which is then uploaded over it."""
    move_photo2(album, winter)
    sync_album(album=album)
    s3.put(OLD_KEY, b"other bytes")
    s3_requests.reset()

    result = sync_album(album=winter)

    assert (result.uploaded, result.moved) == (1, 0)
    assert s3_requests.counts["CopyObject"] == 1 and s3_requests.counts["PutObject"] == 1
    assert s3.body("albums/winter/photo2.jpg") == (winter.path / "photo2.jpg").read_bytes()
