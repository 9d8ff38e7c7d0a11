"""The sync engine against S3Storage on moto (in-process): every rule of the sync."""

import logging
import os
from datetime import UTC, datetime

import pytest

from albums.models import Album, Photo, SyncRun
from albums.sync import sync_album
from tests.conftest import ALBUM_PHOTOS, write_photo

pytestmark = pytest.mark.django_db

KEYS = sorted(f"albums/summer-2024/{name}" for name in ALBUM_PHOTOS)


def test_first_run_uploads_every_photo_under_its_exact_key(album, s3, s3_requests):
    result = sync_album(album=album)

    assert result.status == "success"
    assert (result.scanned, result.new, result.uploaded) == (3, 3, 3)
    assert (
        s3.object_keys() == KEYS
    )  # byte for byte: "day 2/100% fun #1.jpg" keeps its space, % and #
    assert s3_requests.counts["PutObject"] == 3
    folder = album.path
    for name in ALBUM_PHOTOS:
        assert s3.body(f"albums/summer-2024/{name}") == (folder / name).read_bytes()
    assert s3.head("albums/summer-2024/photo1.jpg")["ContentType"] == "image/jpeg"


def test_first_run_records_each_photo_with_its_metadata(album, s3):
    result = sync_album(album=album)

    photo = Photo.objects.get(album=album, path="day 2/100% fun #1.jpg")
    stat = os.stat(album.path / "day 2/100% fun #1.jpg")
    assert photo.key == "albums/summer-2024/day 2/100% fun #1.jpg"
    assert (photo.size, photo.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert (photo.width, photo.height, photo.content_type) == (48, 32, "image/jpeg")
    assert photo.taken_at == datetime(2024, 7, 3, 12, tzinfo=UTC)
    assert photo.uploaded_at is not None and photo.verified_at is not None
    run = SyncRun.objects.get(pk=result.run_id)
    assert (run.status, run.uploaded, run.bytes_uploaded) == ("success", 3, result.bytes_uploaded)
    assert run.bytes_uploaded == sum(os.path.getsize(album.path / n) for n in ALBUM_PHOTOS)
    album.refresh_from_db()
    assert album.last_sync_status == "success" and album.last_synced_at == run.finished_at


def test_second_run_uploads_nothing_and_reads_no_file(album, s3, s3_requests, opened_files):
    sync_album(album=album)
    assert len(opened_files.paths) == 3  # the first run did read each photo once
    s3_requests.reset()
    opened_files.paths.clear()

    result = sync_album(album=album)

    assert (result.uploaded, result.reuploaded, result.unchanged) == (0, 0, 3)
    assert opened_files.paths == []
    # One listing of the album's prefix answers for all three photos.
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}


def test_photo_already_in_bucket_is_recorded_not_uploaded(album, s3, s3_requests):
    existing = album.path / "photo1.jpg"
    s3.put("albums/summer-2024/photo1.jpg", existing.read_bytes())

    result = sync_album(album=album)

    assert (result.already_in_bucket, result.uploaded) == (1, 2)
    assert s3_requests.counts["PutObject"] == 2
    photo = Photo.objects.get(path="photo1.jpg")
    assert photo.uploaded_at is None and photo.verified_at is not None


def test_photo_deleted_from_bucket_is_uploaded_again(album, s3, s3_requests, caplog):
    sync_album(album=album)
    s3.delete("albums/summer-2024/photo2.jpg")
    s3_requests.reset()

    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album)

    assert (result.reuploaded, result.unchanged) == (1, 2)
    assert s3_requests.counts["PutObject"] == 1
    assert s3.body("albums/summer-2024/photo2.jpg") == (album.path / "photo2.jpg").read_bytes()
    assert "Existing photo missing from S3, will re-upload: photo2.jpg" in caplog.messages


def test_edited_photo_is_uploaded_again_even_at_the_same_size(album, s3, s3_requests):
    sync_album(album=album)
    path = album.path / "photo1.jpg"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size, other bytes, a later mtime
    path.write_bytes(bytes(data))
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.reuploaded, result.unchanged) == (1, 2)
    assert s3_requests.counts["PutObject"] == 1
    assert s3.body("albums/summer-2024/photo1.jpg") == bytes(data)
    assert Photo.objects.get(path="photo1.jpg").mtime_ns == os.stat(path).st_mtime_ns


def test_truncated_object_is_repaired(album, s3, s3_requests):
    sync_album(album=album)
    whole = (album.path / "photo1.jpg").read_bytes()
    s3.put("albums/summer-2024/photo1.jpg", whole[:100])  # a partial upload
    s3_requests.reset()

    result = sync_album(album=album)

    assert result.reuploaded == 1
    assert s3.body("albums/summer-2024/photo1.jpg") == whole


def test_untouched_file_with_nanosecond_mtime_is_not_changed(album, s3, s3_requests):
    path = album.path / "photo1.jpg"
    os.utime(path, ns=(1_712_345_678_987_654_321, 1_712_345_678_987_654_321))
    sync_album(album=album)
    s3_requests.reset()

    result = sync_album(album=album)

    assert result.unchanged == 3 and s3_requests.counts["PutObject"] == 0


def test_orphaned_photo_loses_its_record_but_keeps_its_object(album, s3):
    sync_album(album=album)
    (album.path / "photo2.jpg").unlink()

    result = sync_album(album=album)

    assert (result.orphaned, result.removed, result.pruned) == (1, 1, 0)
    assert not Photo.objects.filter(path="photo2.jpg").exists()
    assert "albums/summer-2024/photo2.jpg" in s3.object_keys()


def test_prune_deletes_the_object_of_an_orphaned_photo(album, s3, s3_requests):
    sync_album(album=album)
    (album.path / "photo2.jpg").unlink()
    s3_requests.reset()

    result = sync_album(album=album, prune=True)

    assert (result.removed, result.pruned) == (1, 1)
    assert "albums/summer-2024/photo2.jpg" not in s3.object_keys()
    assert (s3_requests.counts["DeleteObjects"], s3_requests.counts["DeleteObject"]) == (1, 0)


def test_dry_run_changes_nothing(album, s3, s3_requests, caplog):
    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album, dry_run=True)

    assert (result.dry_run, result.uploaded, result.status) == (True, 3, "success")
    assert s3.object_keys() == []
    assert not Photo.objects.exists()
    assert s3_requests.counts["PutObject"] == 0
    album.refresh_from_db()
    assert album.last_synced_at is None
    assert "[dry run] Uploading new photo: photo1.jpg" in caplog.messages
    assert "would be uploaded" in result.summary()


def test_dry_run_prune_deletes_nothing(album, s3):
    sync_album(album=album)
    (album.path / "photo2.jpg").unlink()

    result = sync_album(album=album, dry_run=True, prune=True)

    assert (result.removed, result.pruned) == (1, 1)
    assert Photo.objects.filter(path="photo2.jpg").exists()
    assert "albums/summer-2024/photo2.jpg" in s3.object_keys()


def test_log_lines_name_each_decision(album, s3, caplog, settings):
    s3.put("albums/summer-2024/photo1.jpg", (album.path / "photo1.jpg").read_bytes())
    for number in range(12):
        write_photo(album.path / f"more/{number:02}.jpg")

    with caplog.at_level(logging.INFO, logger="albums"):
        sync_album(album=album, batch_size=5)

    assert "Photo already exists in S3, skipping upload: photo1.jpg" in caplog.messages
    assert "Uploading new photo: photo2.jpg" in caplog.messages
    assert "Processing 15 new photos in batches of 5" in caplog.messages


def test_storage_set_not_to_overwrite_never_makes_a_second_copy(album, s3, settings):
    settings.STORAGES["photos"]["OPTIONS"]["file_overwrite"] = False
    s3.put("albums/summer-2024/photo1.jpg", b"an older, different photo")

    sync_album(album=album)

    assert s3.object_keys() == KEYS
    assert s3.body("albums/summer-2024/photo1.jpg") == (album.path / "photo1.jpg").read_bytes()


def test_new_photo_with_same_size_but_other_content_in_bucket_is_uploaded(album, s3):
    local = (album.path / "photo1.jpg").read_bytes()
    s3.put("albums/summer-2024/photo1.jpg", bytes(len(local)))  # same size, zeros
    for name in ("more/a.jpg", "more/b.jpg"):  # enough photos for the listing (ETags)
        write_photo(album.path / name)

    result = sync_album(album=album)

    assert result.already_in_bucket == 0
    assert s3.body("albums/summer-2024/photo1.jpg") == local


def test_a_single_photo_is_checked_with_one_head_instead_of_a_listing(photos_root, s3, s3_requests):
    write_photo(photos_root / "Solo" / "only.jpg")
    album = Album.objects.create(name="Solo", slug="solo", folder="Solo")
    sync_album(album=album)
    s3.delete("albums/solo/only.jpg")
    s3_requests.reset()

    result = sync_album(album=album)

    assert result.reuploaded == 1
    assert dict(s3_requests.counts) == {"HeadObject": 1, "PutObject": 1}


def test_a_photo_goes_up_without_waiting_for_100_continue_and_parts_still_ask(
    album, s3, s3_requests
):
    """botocore asks for "100 Continue" before every body it can read: a round trip more
    for each photo sent in one request."""
    (album.path / "large.tif").write_bytes(os.urandom(1024) * (9 * 1024))  # in 2 parts
    asked: dict[str, set] = {}

    def note_expect(operation, request):
        expect = request.headers.get("Expect")
        asked.setdefault(operation, set()).add(expect.decode() if expect else None)

    s3_requests.fault = note_expect

    assert sync_album(album=album).uploaded == 4

    assert asked["PutObject"] == {None}
    assert asked["UploadPart"] == {"100-continue"}


def test_a_photo_sent_in_parts_gets_its_etag_from_the_completion_not_from_a_head(
    album, s3, s3_requests
):
    (album.path / "large.tif").write_bytes(os.urandom(1024) * (9 * 1024))  # in 2 parts
    sync_album(album=album)
    s3_requests.reset()
    (album.path / "large.tif").write_bytes(os.urandom(1024) * (9 * 1024))  # changed

    assert sync_album(album=album).reuploaded == 1

    assert "HeadObject" not in s3_requests.counts
    assert s3_requests.counts["CompleteMultipartUpload"] == 1
    recorded = Photo.objects.get(path="large.tif").etag
    assert recorded == s3.head("albums/summer-2024/large.tif")["ETag"].strip('"')
    assert recorded.endswith("-2")
