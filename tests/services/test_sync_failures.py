"""What a run does when files, folders or the bucket misbehave."""

import os
import threading
import time

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, SSLError

from albums.exceptions import (
    AlbumFolderEmpty,
    AlbumFolderMissing,
    AlbumFolderUnsafe,
    BucketMissing,
    StorageAccessDenied,
    StorageError,
    StorageUnreachable,
    TooManyDeletions,
)
from albums.models import Album, Photo, SyncRun
from albums.storage import watch
from albums.sync import sync_album
from albums.sync.bucket import bucket_pool
from albums.sync.engine.failures import UNANSWERED_IN_A_ROW
from tests.conftest import FAKE_SECRET, s3_error, use_s3, write_photo

pytestmark = pytest.mark.django_db


def test_one_file_that_cannot_be_uploaded_is_a_failure_and_the_rest_go_on(
    album, s3, s3_requests, settings
):
    use_s3(settings, AWS_S3_MAX_ATTEMPTS="2")
    s3_requests.fault = lambda op, request: (
        s3_error(request, 500, "InternalError")
        if op == "PutObject" and "photo2.jpg" in request.url
        else None
    )

    result = sync_album(album=album)

    assert (result.status, result.uploaded, result.failed) == ("partial", 2, 1)
    assert result.failures[0].path == "photo2.jpg"
    assert "InternalError" in result.failures[0].error
    assert not Photo.objects.filter(path="photo2.jpg").exists()
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.status == "partial" and run.errors[0]["path"] == "photo2.jpg"

    # moto stored the object before the injected 500 reached the client, as a real
    # server may: the next run finds it whole and records it without sending it again.
    s3_requests.fault = None
    s3_requests.reset()
    again = sync_album(album=album)
    assert (again.status, again.already_in_bucket, again.uploaded) == ("success", 1, 0)
    assert s3_requests.counts["PutObject"] == 0


def test_a_transient_server_error_is_retried_and_the_run_succeeds(album, s3, s3_requests):
    failures = {"left": 1}

    def fail_once(op, request):
        if op == "PutObject" and failures["left"]:
            failures["left"] -= 1
            return s3_error(request, 503, "SlowDown")
        return None

    s3_requests.fault = fail_once

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("success", 3)
    assert s3_requests.counts["PutObject"] == 4


@pytest.mark.parametrize("operation", ["PutObject", "HeadObject"])
def test_slow_down_answers_are_waited_out_however_many_in_a_row(
    album, s3, s3_requests, monkeypatch, operation
):
    """Six 503s in a row for one photo (botocore alone tries three times), to its upload or
    to its size check (a HEAD, whose answer has no body to name the code): each is tried
    again after a pause; the photo is not failed."""
    monkeypatch.setattr(watch, "THROTTLED_PAUSE", 0.01)
    for name in ("photo2.jpg", "day 2/100% fun #1.jpg"):
        (album.path / name).unlink()  # one photo: checked with a HEAD rather than a listing
    left = {"count": 6}

    def slow_down(op, request):
        if op == operation and left["count"]:
            left["count"] -= 1
            return s3_error(request, 503, "SlowDown" if op == "PutObject" else "")
        return None

    s3_requests.fault = slow_down

    result = sync_album(album=album)

    assert (result.status, result.uploaded, result.failed) == ("success", 1, 0)
    assert s3_requests.counts[operation] == 7


def test_an_endpoint_that_answers_nothing_but_slow_down_fails_its_files_in_seconds(
    album, s3, s3_requests, monkeypatch
):
    """A server down behind a proxy that says 503 to everything: once nothing else has been
    heard for THROTTLED_PATIENCE, botocore's few tries only, and each file fails."""
    monkeypatch.setattr(watch, "THROTTLED_PATIENCE", 0.5)
    monkeypatch.setattr(watch, "THROTTLED_PAUSE", 0.1)
    s3_requests.fault = lambda op, request: (
        s3_error(request, 503, "SlowDown") if op == "PutObject" else None
    )
    started = time.monotonic()

    result = sync_album(album=album)

    assert (result.status, result.failed) == ("partial", 3)
    assert "SlowDown" in result.failures[0].error
    assert time.monotonic() - started < 10  # not ten pauses of up to 20 s each


def test_a_file_removed_during_the_run_is_a_failure_not_a_crash(album, s3):
    def remove_photo2(done, total):
        (album.path / "photo2.jpg").unlink(missing_ok=True)

    result = sync_album(album=album, progress=remove_photo2)

    assert (result.status, result.uploaded, result.failed) == ("partial", 2, 1)
    assert result.failures[0].path == "photo2.jpg"


def test_names_that_cannot_be_keys_are_reported_not_renamed(album, s3):
    folder = os.fsencode(album.path)
    with open(folder + b"/caf\xe9.jpg", "wb") as latin1_name:  # not UTF-8
        latin1_name.write((album.path / "photo1.jpg").read_bytes())
    write_photo(album.path / "back\\slash.jpg")

    result = sync_album(album=album)

    assert result.status == "partial"
    assert sorted(f.path for f in result.failures) == ["back\\slash.jpg", "caf\\xe9.jpg"]
    assert len(s3.object_keys()) == 3 and result.uploaded == 3


def test_endpoint_down_stops_the_run_with_a_clear_message(album, settings, db):
    use_s3(
        settings,
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9",  # nothing listens on the discard port
        AWS_S3_MAX_ATTEMPTS="2",
        AWS_S3_CONNECT_TIMEOUT="1",
    )

    with pytest.raises(StorageUnreachable) as caught:
        sync_album(album=album)

    message = str(caught.value)
    assert "Cannot reach the bucket 'photosite-test' at http://127.0.0.1:9" in message
    assert FAKE_SECRET not in message
    assert not Photo.objects.exists()
    run = SyncRun.objects.get(album=album)
    assert (run.status, run.message) == ("failed", message)
    album.refresh_from_db()
    assert album.last_sync_status == "failed" and not album.is_syncing


def test_network_failure_mid_run_records_exactly_what_was_uploaded(
    album, s3, s3_requests, settings
):
    """The endpoint stops answering after two uploads: the next photos fail one by one until
    UNANSWERED_IN_A_ROW of them, with nothing heard in between, show that the endpoint as a
    whole is gone; then the run stops, having started nothing more."""
    for number in range(7):
        write_photo(album.path / f"more/{number}.jpg")
    use_s3(settings, AWS_S3_MAX_ATTEMPTS="2")
    puts = {"allowed": 2}

    def die_after_two_uploads(op, request):
        if op == "PutObject":
            if puts["allowed"] == 0:
                raise EndpointConnectionError(endpoint_url=request.url)
            puts["allowed"] -= 1
        return None

    s3_requests.fault = die_after_two_uploads

    with pytest.raises(StorageUnreachable) as caught:
        sync_album(album=album, workers=1, batch_size=1)

    assert str(caught.value).startswith("Cannot reach the bucket 'photosite-test'")
    assert s3_requests.counts["PutObject"] == 2 + UNANSWERED_IN_A_ROW * 2  # then nothing more
    in_bucket = {key.removeprefix("albums/summer-2024/") for key in s3.object_keys()}
    recorded = set(Photo.objects.values_list("path", flat=True))
    assert len(in_bucket) == 2 and recorded == in_bucket

    s3_requests.fault = None
    s3_requests.reset()
    result = sync_album(album=album)  # the next run finishes the job, uploading once
    assert (result.uploaded, result.unchanged) == (8, 2)
    assert s3_requests.counts["PutObject"] == 8


def test_uploads_without_an_answer_fail_alone_while_the_endpoint_answers_others(
    album, s3, s3_requests
):
    """Three photos' uploads are dropped on every attempt (after 0.3 s each), all at once; the
    other uploads, answered while they waited, show the endpoint works: three failures, not
    the end of the run."""
    for number in range(5):
        write_photo(album.path / f"fine/{number}.jpg")
    stuck = ("photo1.jpg", "photo2.jpg", "100%25%20fun")

    def drop_three(op, request):
        if op == "PutObject" and any(name in request.url for name in stuck):
            time.sleep(0.3)
            raise ConnectionClosedError(endpoint_url=request.url)

    s3_requests.fault = drop_three

    result = sync_album(album=album, workers=8)

    assert (result.status, result.uploaded, result.failed) == ("partial", 5, 3)
    assert all("Connection was closed" in failure.error for failure in result.failures)


def test_head_answering_403_is_a_permissions_error_not_a_missing_photo(
    photos_root, s3, s3_requests, db
):
    write_photo(photos_root / "Solo" / "only.jpg")
    album = Album.objects.create(name="Solo", slug="solo", folder="Solo")
    s3_requests.fault = lambda op, request: s3_error(request, 403) if op == "HeadObject" else None

    with pytest.raises(StorageAccessDenied) as caught:
        sync_album(album=album)

    assert "s3:ListBucket" in str(caught.value)
    photo_uploads = [url for op, url in s3_requests.keys if op == "PutObject" and "/albums/" in url]
    assert photo_uploads == []  # never an upload storm (the diagnosis probe goes elsewhere)
    run = SyncRun.objects.get(album=album)
    assert "a HEAD of a missing key answered 403, not 404" in str(run.diagnosis)


def test_listing_denied_names_the_missing_permission(album, s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "ListObjectsV2" else None
    )

    with pytest.raises(StorageAccessDenied) as caught:
        sync_album(album=album)

    assert "denied ListObjectsV2 (AccessDenied)" in str(caught.value)
    assert "s3:ListBucket" in str(caught.value)


def test_wrong_credentials_are_named(album, s3, s3_requests):
    s3_requests.fault = lambda op, request: s3_error(request, 403, "InvalidAccessKeyId")

    with pytest.raises(StorageAccessDenied) as caught:
        sync_album(album=album)

    assert "refused the credentials (InvalidAccessKeyId)" in str(caught.value)
    assert FAKE_SECRET not in str(caught.value)


@pytest.mark.parametrize("photos", [1, 3], ids=["head-path", "listing-path"])
def test_missing_bucket_stops_the_run(photos_root, s3, settings, photos):
    for number in range(photos):
        write_photo(photos_root / "Trip" / f"{number}.jpg")
    album = Album.objects.create(name="Trip", slug="trip", folder="Trip")
    use_s3(settings, AWS_STORAGE_BUCKET_NAME="no-such-bucket")

    with pytest.raises(BucketMissing) as caught:
        sync_album(album=album)

    assert "bucket 'no-such-bucket' does not exist" in str(caught.value)
    assert not Photo.objects.exists()


def test_missing_album_folder_changes_nothing(album, s3):
    sync_album(album=album)
    album.path.rename(album.path.with_name("elsewhere"))

    with pytest.raises(AlbumFolderMissing, match="is the disk mounted"):
        sync_album(album=album, prune=True)

    assert Photo.objects.count() == 3 and len(s3.object_keys()) == 3


def test_emptied_album_folder_is_not_taken_as_every_photo_deleted(album, s3):
    sync_album(album=album)
    for path in list(album.path.rglob("*.jpg")):
        path.unlink()

    with pytest.raises(AlbumFolderEmpty, match="refusing to treat them all as deleted"):
        sync_album(album=album, prune=True)

    assert Photo.objects.count() == 3 and len(s3.object_keys()) == 3


def test_album_folder_outside_photos_root_is_refused(album, s3):
    Album.objects.filter(pk=album.pk).update(folder="../outside")
    album.refresh_from_db()

    with pytest.raises(AlbumFolderUnsafe):
        sync_album(album=album)


def test_prune_refuses_to_delete_more_than_the_limit_before_changing_anything(
    album, s3, s3_requests
):
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    (album.path / "photo2.jpg").unlink()
    write_photo(album.path / "photo4.jpg")
    s3_requests.reset()

    with pytest.raises(TooManyDeletions, match=r"would delete 2 objects .* limit of 1"):
        sync_album(album=album, prune=True, max_delete=1)

    assert s3_requests.total == 0  # not even the new photo's upload
    assert len(s3.object_keys()) == 3 and Photo.objects.count() == 3
    assert sync_album(album=album, prune=True, max_delete=2).pruned == 2


def test_a_file_changed_while_uploading_is_not_recorded_nor_left_half_sent(album, s3, s3_requests):
    target = album.path / "photo2.jpg"

    def append_while_sending(op, request):
        if op == "PutObject" and "photo2.jpg" in request.url:
            with open(target, "ab") as still_writing:
                still_writing.write(b"more bytes")
        return None

    s3_requests.fault = append_while_sending

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("partial", 2)
    assert "changed while it was being uploaded" in result.failures[0].error
    assert "albums/summer-2024/photo2.jpg" not in s3.object_keys()
    assert not Photo.objects.filter(path="photo2.jpg").exists()
    s3_requests.fault = None
    assert sync_album(album=album).uploaded == 1


def test_a_large_file_replaced_while_its_parts_go_up_is_not_recorded_nor_left(
    album, s3, s3_requests
):
    """A file sent in parts is read from its name: an editor that saves by writing a new
    file and renaming it over the old one (same size, same time) is still caught."""
    target = album.path / "large.tif"
    target.write_bytes(os.urandom(1024) * (9 * 1024))
    replacing = threading.Lock()  # the parts go up side by side: the first one replaces it
    replaced = []

    def replace_while_sending(op, request):
        with replacing:
            if op == "UploadPart" and not replaced:
                before = target.stat()
                saved = album.path / ".large.tif.tmp"
                saved.write_bytes(os.urandom(before.st_size))
                os.utime(saved, ns=(before.st_atime_ns, before.st_mtime_ns))
                os.replace(saved, target)
                replaced.append(True)

    s3_requests.fault = replace_while_sending

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("partial", 3)
    assert result.failures[0].path == "large.tif"
    assert "changed while it was being uploaded" in result.failures[0].error
    assert "albums/summer-2024/large.tif" not in s3.object_keys()
    assert not Photo.objects.filter(path="large.tif").exists()
    s3_requests.fault = None
    assert sync_album(album=album).uploaded == 1
    stored = s3.client.get_object(Bucket=s3.name, Key="albums/summer-2024/large.tif")
    assert stored["Body"].read() == target.read_bytes()


def test_unfinished_multipart_uploads_of_a_killed_run_are_aborted(album, s3, s3_requests):
    large = album.path / "large.tif"
    large.write_bytes(os.urandom(1024) * (9 * 1024))
    left = s3.client.create_multipart_upload(Bucket=s3.name, Key="albums/summer-2024/large.tif")
    s3.client.upload_part(
        Bucket=s3.name, Key="albums/summer-2024/large.tif", UploadId=left["UploadId"],
        PartNumber=1, Body=b"x" * (5 * 1024 * 1024),
    )  # fmt: skip

    result = sync_album(album=album)

    assert result.uploaded == 4
    assert s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", []) == []
    assert s3_requests.counts["AbortMultipartUpload"] == 1
    s3_requests.reset()
    sync_album(album=album)
    assert "ListMultipartUploads" not in s3_requests.counts  # only when large files go up


def test_a_connection_reset_is_retried_and_the_run_succeeds(album, s3, s3_requests):
    resets = {"left": 2}

    def reset_twice(op, request):
        if op == "PutObject" and resets["left"]:
            resets["left"] -= 1
            raise ConnectionClosedError(endpoint_url=request.url)

    s3_requests.fault = reset_twice

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("success", 3)
    assert s3_requests.counts["PutObject"] == 5  # two resets, each sent again


def test_a_listing_that_fails_midway_stops_the_run_and_records_what_went_up(
    album, s3, s3_requests, monkeypatch
):
    """The listing streams beside the walk, so uploads may already be under way when a
    later page fails: they finish, and are recorded, before the run stops."""
    sync_album(album=album)
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 2)  # three objects: two pages
    write_photo(album.path / "a1.jpg")  # before the first page's keys: decided at once
    write_photo(album.path / "a2.jpg")
    s3_requests.fault = lambda op, request: (
        s3_error(request, 500, "InternalError")
        if op == "ListObjectsV2" and "continuation-token" in request.url
        else None
    )

    with pytest.raises(StorageError) as caught:
        sync_album(album=album)

    assert str(caught.value).startswith(
        "Listing the bucket for album 'Summer 2024' failed: ListObjectsV2 failed: InternalError"
    )
    second_pages = [url for op, url in s3_requests.keys if "continuation-token" in url]
    assert len(second_pages) == 3  # tried three times (the retry policy), then given up
    assert caught.value.result.status == "failed"
    recorded = set(Photo.objects.values_list("path", flat=True))
    assert {"a1.jpg", "a2.jpg"} <= recorded
    assert {"albums/summer-2024/a1.jpg", "albums/summer-2024/a2.jpg"} <= set(s3.object_keys())
    s3_requests.fault = None
    again = sync_album(album=album)
    assert (again.uploaded, again.reuploaded, again.unchanged) == (0, 0, 5)


def test_a_size_check_refused_for_one_photo_fails_that_photo_only(album, s3, s3_requests):
    """With one photo a HEAD is cheaper than a listing; an answer that says nothing about
    the bucket as a whole (here a 400) is that photo's failure, not the run's."""
    for name in ("photo2.jpg", "day 2/100% fun #1.jpg"):
        (album.path / name).unlink()
    s3_requests.fault = lambda op, request: (
        s3_error(request, 400, "BadRequest") if op == "HeadObject" else None
    )

    result = sync_album(album=album)

    assert s3_requests.counts["HeadObject"] == 1 and s3_requests.counts["ListObjectsV2"] == 0
    assert result.status == "partial"
    assert [(f.path, f.error) for f in result.failures] == [
        ("photo1.jpg", "HeadObject failed: BadRequest injected")
    ]
    assert not Photo.objects.exists() and s3.object_keys() == []


def test_a_prune_refused_by_the_bucket_still_records_what_the_run_uploaded(album, s3, s3_requests):
    """Deletes come after the uploads: when the bucket refuses them, the photos this run
    has just uploaded are recorded all the same, so the next run does not take them as new."""
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    write_photo(album.path / "photo9.jpg")
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "DeleteObjects" else None
    )

    with pytest.raises(StorageAccessDenied, match=r"denied DeleteObjects .* s3:DeleteObject\."):
        sync_album(album=album, prune=True)

    assert Photo.objects.filter(path="photo9.jpg", uploaded_at__isnull=False).exists()
    assert Photo.objects.filter(path="photo1.jpg").exists()  # its object is still there
    s3_requests.fault = None
    s3_requests.reset()
    again = sync_album(album=album, prune=True)
    assert (again.new, again.uploaded, again.pruned) == (0, 0, 1)
    assert "PutObject" not in s3_requests.counts


def test_a_tls_failure_while_aborting_unfinished_uploads_stops_the_run_clearly(
    album, s3, s3_requests
):
    """botocore's SSLError is a connection error of its own class: it stops the run with
    what to check, and what went up before it is recorded."""
    (album.path / "large.tif").write_bytes(os.urandom(1024) * (9 * 1024))  # goes up in parts

    def tls_fails(op, request):
        if op == "ListMultipartUploads":
            raise SSLError(endpoint_url=request.url, error="certificate verify failed")

    s3_requests.fault = tls_fails

    with pytest.raises(StorageUnreachable) as caught:
        sync_album(album=album)

    message = str(caught.value)
    assert message.startswith("The TLS connection to the bucket 'photosite-test' failed")
    assert "certificate verify failed" in message and "AWS_S3_ENDPOINT_URL" in message
    run = SyncRun.objects.get()
    assert (run.status, run.message) == ("failed", message)
    assert "albums/summer-2024/large.tif" not in s3.object_keys()
    recorded = {
        f"albums/summer-2024/{path}" for path in Photo.objects.values_list("path", flat=True)
    }
    assert recorded == set(s3.object_keys())  # what went up before the error is recorded


def test_the_storage_is_diagnosed_once_the_album_is_free_again(album, s3, s3_requests):
    """The diagnosis of a failed run makes requests of its own (a HEAD of a missing key, a
    probe written and deleted): the album's lease is released before them, so nothing waits
    on the diagnosis."""
    lease_during_probe = []

    def deny_listing(op, request):
        if op == "ListObjectsV2":
            return s3_error(request, 403, "AccessDenied")
        if op == "HeadObject" and "photosite-check-missing" in request.url:
            lease_during_probe.append(Album.objects.get(pk=album.pk).sync_lease_token)
        return None

    s3_requests.fault = deny_listing

    with pytest.raises(StorageAccessDenied):
        sync_album(album=album)

    assert lease_during_probe == [""]  # the probe went up with the lease already free
    assert SyncRun.objects.get().diagnosis["checks"]


def test_a_camera_jpeg_changed_while_sent_as_read_fails_as_changed_not_as_refused(
    album, over_http, s3_requests
):
    """A file above 1 MiB is sent as it is read, after its MD5: one changed meanwhile no
    longer matches its Content-MD5, which S3 refuses (BadDigest, which moto does not check:
    the hook answers as S3 does)."""
    target = album.path / "camera.jpg"
    write_photo(target)
    with open(target, "ab") as rest:
        rest.write(os.urandom(3 * 1024 * 1024))

    def append_and_refuse(op, request):
        if op == "PutObject" and "camera.jpg" in request.url:
            with open(target, "ab") as still_writing:
                still_writing.write(b"more bytes")
            return s3_error(request, 400, "BadDigest")
        return None

    s3_requests.fault = append_and_refuse

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("partial", 3)
    assert result.failures[0].path == "camera.jpg"
    assert "changed while it was being uploaded" in result.failures[0].error
    assert not Photo.objects.filter(path="camera.jpg").exists()
    assert "albums/summer-2024/camera.jpg" not in over_http.object_keys()
    s3_requests.fault = None
    assert sync_album(album=album).uploaded == 1
    assert over_http.body("albums/summer-2024/camera.jpg") == target.read_bytes()
