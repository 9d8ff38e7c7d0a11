"""Photos known by their content: checksums recorded, a changed bucket copy caught from the
listing alone, and moved or renamed photos copied inside the bucket instead of uploaded."""

import hashlib
import os

import pytest

from albums.models import Album, Photo
from albums.sync import sync_album, sync_albums
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db


def md5_of(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_each_photo_is_recorded_with_its_md5_and_the_buckets_etag(album, s3):
    large = album.path / "large.tif"
    large.write_bytes(os.urandom(1024) * (9 * 1024))  # over the threshold: sent in parts

    sync_album(album=album)

    for photo in Photo.objects.all():
        assert photo.md5 == md5_of(album.path / photo.path)
        assert photo.etag == s3.head(photo.key)["ETag"].strip('"')
    assert Photo.objects.get(path="large.tif").etag.endswith("-2")
    assert Photo.objects.get(path="photo1.jpg").etag == md5_of(album.path / "photo1.jpg")


def test_a_bucket_copy_replaced_by_other_bytes_of_the_same_size_is_uploaded_again(
    album, s3, s3_requests, caplog
):
    sync_album(album=album)
    key = "albums/summer-2024/photo2.jpg"
    original = s3.body(key)
    s3.put(key, bytes(reversed(original)))  # same size, other bytes
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.replaced_in_bucket, result.reuploaded, result.unchanged) == (1, 1, 2)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1, "PutObject": 1}  # no HEAD, no GET
    assert s3.body(key) == original
    assert (
        "Photo in S3 differs from the uploaded copy, will re-upload: photo2.jpg" in caplog.messages
    )
    s3_requests.reset()
    assert sync_album(album=album).unchanged == 3
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}


def test_photos_recorded_before_checksums_are_not_read_by_a_sync(album, s3, opened_files):
    sync_album(album=album)
    Photo.objects.update(md5="", etag="")
    opened_files.paths.clear()

    result = sync_album(album=album)

    assert (result.unchanged, result.replaced_in_bucket) == (3, 0)
    assert opened_files.paths == []
    assert set(Photo.objects.values_list("md5", flat=True)) == {""}  # filled in by verify


def test_a_renamed_folder_is_copied_inside_the_bucket_not_uploaded(
    photos_root, over_http, s3_requests
):
    folder = photos_root / "Year" / "2023"
    for number in range(300):
        write_photo(folder / f"{number:03}.jpg", color=(number % 20 * 12, number // 20 * 16, 7))
    album = Album.objects.create(name="Year", slug="year", folder="Year")
    sync_album(album=album)
    ids = dict(Photo.objects.values_list("path", "id"))
    folder.rename(folder.with_name("2023 trip"))
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.moved, result.uploaded, result.bytes_uploaded) == (300, 0, 0)
    assert (result.orphaned, result.removed, result.status) == (300, 0, "success")
    assert s3_requests.counts["CopyObject"] == 300 and "PutObject" not in s3_requests.counts
    moved = dict(Photo.objects.values_list("path", "id"))
    assert moved == {path.replace("2023/", "2023 trip/"): pk for path, pk in ids.items()}
    for photo in Photo.objects.all()[:5]:
        assert (
            over_http.body(photo.key)
            == (folder.with_name("2023 trip") / photo.path[10:]).read_bytes()
        )
    assert len(over_http.object_keys()) == 600  # the old objects stay, unless pruning
    s3_requests.reset()
    again = sync_album(album=album)
    assert (again.unchanged, again.moved, again.uploaded) == (300, 0, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}


def test_a_move_with_prune_deletes_the_old_objects(album, s3):
    sync_album(album=album)
    (album.path / "photo1.jpg").rename(album.path / "renamed.jpg")

    result = sync_album(album=album, prune=True)

    assert (result.moved, result.pruned, result.removed, result.uploaded) == (1, 1, 0, 0)
    assert "albums/summer-2024/photo1.jpg" not in s3.object_keys()
    assert "albums/summer-2024/renamed.jpg" in s3.object_keys()


@pytest.mark.parametrize("prune", [False, True], ids=["", "with-prune"])
@pytest.mark.parametrize(
    "name", ["Zoo", "Autumn"], ids=["synced-after-its-old-album", "synced-first"]
)
def test_a_photo_moved_to_another_album_is_copied_and_keeps_its_record(
    album, photos_root, over_http, s3_requests, name, prune
):
    """With every album synced in one run, in whatever order their names give. When the
    album it moved to comes first, the old album's records were read ahead with it, before
    the move; when it comes after, a prune of the old album waits for it. Either way the
    copy is the only request that sends the photo, the old album forgets it, and with
    --prune its old object goes, in one request."""
    slug = name.lower()
    other = Album.objects.create(name=name, slug=slug, folder=name)
    (photos_root / name).mkdir()
    list(sync_albums([album, other]))
    photo = Photo.objects.get(path="photo2.jpg")
    (album.path / "photo2.jpg").rename(photos_root / name / "photo2.jpg")
    s3_requests.reset()

    outcomes = {o.album.slug: o.result for o in sync_albums([album, other], prune=prune)}

    assert (outcomes[slug].moved, outcomes[slug].uploaded, outcomes[slug].pruned) == (1, 0, prune)
    assert (outcomes["summer-2024"].removed, outcomes["summer-2024"].pruned) == (1, 0)
    assert "PutObject" not in s3_requests.counts and s3_requests.counts["CopyObject"] == 1
    assert s3_requests.counts.get("DeleteObjects", 0) == prune
    moved = Photo.objects.get(pk=photo.pk)
    assert (moved.album, moved.path, moved.key) == (
        other,
        "photo2.jpg",
        f"albums/{slug}/photo2.jpg",
    )
    assert (moved.uploaded_at, moved.md5) == (photo.uploaded_at, photo.md5)
    assert Photo.objects.count() == 3
    keys = set(over_http.object_keys())
    assert f"albums/{slug}/photo2.jpg" in keys
    assert ("albums/summer-2024/photo2.jpg" in keys) is not prune


def test_two_new_files_with_the_content_of_one_vanished_photo(album, s3, s3_requests):
    sync_album(album=album)
    photo = Photo.objects.get(path="photo1.jpg")
    content = (album.path / "photo1.jpg").read_bytes()
    (album.path / "photo1.jpg").unlink()
    for name in ("copy a.jpg", "copy b.jpg"):
        (album.path / name).write_bytes(content)
        os.utime(album.path / name, ns=(1_700_000_000_000_000_000,) * 2)
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.moved, result.uploaded, result.bytes_uploaded) == (1, 1, 0)
    assert s3_requests.counts["CopyObject"] == 2 and "PutObject" not in s3_requests.counts
    paths = set(Photo.objects.values_list("path", flat=True))
    assert paths == {"photo2.jpg", "day 2/100% fun #1.jpg", "copy a.jpg", "copy b.jpg"}
    assert Photo.objects.filter(pk=photo.pk, path__in=["copy a.jpg", "copy b.jpg"]).exists()


def test_a_copy_whose_source_was_deleted_meanwhile_is_uploaded_instead(album, s3, s3_requests):
    sync_album(album=album)
    (album.path / "photo1.jpg").rename(album.path / "renamed.jpg")
    s3.delete("albums/summer-2024/photo1.jpg")  # someone cleaned the bucket meanwhile
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.uploaded, result.moved, result.removed) == (1, 0, 1)
    assert s3_requests.counts["CopyObject"] == 1 and s3_requests.counts["PutObject"] == 1
    assert s3.body("albums/summer-2024/renamed.jpg") == (album.path / "renamed.jpg").read_bytes()


def test_a_killed_move_is_finished_by_the_next_run(album, s3, s3_requests):
    """Killed after the copy, before the record followed: the next run finds the object in
    place, with the photo's content, and moves the record without sending anything."""
    sync_album(album=album)
    photo = Photo.objects.get(path="photo1.jpg")
    (album.path / "photo1.jpg").rename(album.path / "renamed.jpg")
    s3.client.copy_object(
        CopySource={"Bucket": s3.name, "Key": "albums/summer-2024/photo1.jpg"},
        Bucket=s3.name,
        Key="albums/summer-2024/renamed.jpg",
    )
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.moved, result.uploaded, result.already_in_bucket) == (1, 0, 0)
    assert "PutObject" not in s3_requests.counts and "CopyObject" not in s3_requests.counts
    assert Photo.objects.get(pk=photo.pk).path == "renamed.jpg"


def test_a_dry_run_reports_moves(album, s3, s3_requests):
    sync_album(album=album)
    (album.path / "photo1.jpg").rename(album.path / "renamed.jpg")
    s3_requests.reset()

    result = sync_album(album=album, dry_run=True)

    assert (result.moved, result.uploaded, result.removed) == (1, 0, 0)
    assert "would be moved in the bucket" in result.summary()
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    assert Photo.objects.filter(path="photo1.jpg").exists()
