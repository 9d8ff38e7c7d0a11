"""--prune and untracked objects: objects under an album's prefix with neither a file nor a
record (left by runs without --prune, or by a crash between upload and record) are deleted
by the next prune, found in its one listing, counted apart, and never one an exclusion
covers, beyond --max-delete, or all of an album whose folder suddenly holds no photo."""

import logging

import pytest

from albums.exceptions import AlbumFolderEmpty, TooManyDeletions
from albums.models import Album, DepartedPhoto, Photo, SyncRun
from albums.sync import sync_album, sync_albums
from albums.sync.engine.orphans import NO_PHOTO_BUT_OBJECTS
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

PREFIX = "albums/summer-2024/"


def test_a_prune_removes_the_object_a_run_without_prune_left_behind(album, s3, s3_requests):
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    first = sync_album(album=album)  # forgets the photo; its object stays
    assert (first.removed, first.pruned) == (1, 0)
    assert f"{PREFIX}photo1.jpg" in s3.object_keys()
    s3_requests.reset()

    result = sync_album(album=album, prune=True)

    assert (result.untracked_pruned, result.pruned, result.removed) == (1, 0, 0)
    assert "untracked" in result.summary()
    assert f"{PREFIX}photo1.jpg" not in s3.object_keys()
    # One listing and one DeleteObjects: nothing asked of each object.
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1, "DeleteObjects": 1}
    assert not DepartedPhoto.objects.exists()  # nothing left to copy it from
    assert SyncRun.objects.filter(album=album).latest("id").untracked_pruned == 1


def test_objects_nobody_recorded_are_removed_but_photos_on_disk_are_not(album, s3):
    """An object put there by a crash between upload and record of a file deleted since,
    or by hand: no file, no record. A file on disk whose record is missing is not one."""
    sync_album(album=album)
    s3.put(f"{PREFIX}crashed/IMG_0001.jpg", b"bytes nobody recorded")
    Photo.objects.filter(path="photo2.jpg").delete()  # its file is still on disk

    result = sync_album(album=album, prune=True)

    assert result.untracked_pruned == 1 and result.already_in_bucket == 1
    keys = s3.object_keys()
    assert f"{PREFIX}crashed/IMG_0001.jpg" not in keys and f"{PREFIX}photo2.jpg" in keys


def test_a_dry_run_names_the_untracked_objects_and_deletes_nothing(album, s3, caplog):
    sync_album(album=album)
    s3.put(f"{PREFIX}left over.jpg", b"old")

    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album, prune=True, dry_run=True)

    assert result.untracked_pruned == 1
    assert any("untracked: left over.jpg" in message for message in caplog.messages)
    assert f"{PREFIX}left over.jpg" in s3.object_keys()


def test_without_prune_untracked_objects_stay(album, s3):
    sync_album(album=album)
    s3.put(f"{PREFIX}left over.jpg", b"old")

    result = sync_album(album=album)

    assert result.untracked_pruned == 0
    assert f"{PREFIX}left over.jpg" in s3.object_keys()


def test_untracked_objects_count_against_max_delete(album, s3):
    sync_album(album=album)
    for number in range(3):
        s3.put(f"{PREFIX}left over {number}.jpg", b"old")

    with pytest.raises(TooManyDeletions, match="would delete 3 objects"):
        sync_album(album=album, prune=True, max_delete=2)

    assert sum("left over" in key for key in s3.object_keys()) == 3
    result = sync_album(album=album, prune=True, max_delete=3)
    assert result.untracked_pruned == 3


def test_what_an_exclusion_covers_is_never_untracked(album, s3):
    """Synology's thumbnails, a pattern of the album's .photosite-ignore (a folder and a
    file name), a hidden name: the walk leaves them out, so their objects are not the
    sync's to delete, even with their files gone. The renditions' prefix is beside the
    albums', never listed with one."""
    (album.path / ".photosite-ignore").write_text("drafts/\n*_small.jpg\n")
    sync_album(album=album)
    kept = [
        f"{PREFIX}@eaDir/photo1.jpg/SYNOPHOTO_THUMB_M.jpg",
        f"{PREFIX}drafts/IMG_0002.jpg",
        f"{PREFIX}day 2/IMG_0003_small.jpg",
        f"{PREFIX}.hidden.jpg",
        f"{PREFIX}day 2/.thumbs/IMG_0004.jpg",
        "albums-renditions/ab/abcdef/400-q80-v1.webp",
    ]
    for key in kept:
        s3.put(key, b"kept")
    s3.put(f"{PREFIX}day 2/IMG_0005.jpg", b"untracked")

    result = sync_album(album=album, prune=True)

    assert result.untracked_pruned == 1
    keys = s3.object_keys()
    assert set(kept) <= set(keys) and f"{PREFIX}day 2/IMG_0005.jpg" not in keys


def test_a_folder_that_holds_no_photo_does_not_make_its_objects_untracked(album, s3):
    """An empty mount point where the album's disk should be, after its records were
    deleted in the admin: the bucket's copies are all that is left, and stay."""
    sync_album(album=album)
    for photo in album.path.rglob("*.jpg"):
        photo.unlink()
    Photo.objects.all().delete()

    with pytest.raises(AlbumFolderEmpty) as stopped:
        sync_album(album=album, prune=True)

    assert str(stopped.value) == NO_PHOTO_BUT_OBJECTS.format(album="Summer 2024", count=3)
    assert len(s3.object_keys()) == 3


def test_a_prune_over_several_albums_removes_each_ones_untracked_objects(album, photos_root, s3):
    other = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    write_photo(photos_root / "Winter" / "snow.jpg")
    list(sync_albums([album, other]))
    s3.put(f"{PREFIX}left over.jpg", b"old")
    s3.put("albums/winter/left over.jpg", b"old")
    s3.put("albums/winter-sports/not an album of the run.jpg", b"old")

    outcomes = {o.album.slug: o.result for o in sync_albums([album, other], prune=True)}

    assert outcomes["summer-2024"].untracked_pruned == outcomes["winter"].untracked_pruned == 1
    keys = s3.object_keys()
    assert not any(key.endswith("/left over.jpg") for key in keys)
    assert "albums/winter-sports/not an album of the run.jpg" in keys
