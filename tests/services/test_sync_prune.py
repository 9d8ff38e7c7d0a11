"""--prune on S3: DeleteObjects requests of up to 1,000 keys, each with a Content-MD5; a key
the bucket refuses fails alone; an endpoint without DeleteObjects gets one DeleteObject per key."""

import base64
import hashlib
import logging
import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import MockRawResponse

from albums.exceptions import StorageAccessDenied, TooManyDeletions
from albums.models import Photo
from albums.storage.errors import KEY_NOT_DELETED
from albums.sync import sync_album
from albums.sync.bucket.bucket_pool import DELETING_ONE_BY_ONE
from tests.conftest import s3_error, use_s3

pytestmark = pytest.mark.django_db

PREFIX = "albums/summer-2024/"
KEY = re.compile(rb"<Key>(.*?)</Key>")


def keys_in(body: bytes) -> list[str]:
    """The keys a DeleteObjects request's XML body names."""
    return [match.decode() for match in KEY.findall(body)]


def delete_result(request, errors: list[tuple[str, str, str]]) -> AWSResponse:
    """S3's 200 answer to a Quiet DeleteObjects: only the keys it did not delete."""
    listed = "".join(
        f"<Error><Key>{escape(key)}</Key><Code>{code}</Code><Message>{message}</Message></Error>"
        for key, code, message in errors
    )
    body = f"<DeleteResult>{listed}</DeleteResult>"
    return AWSResponse(request.url, 200, {}, MockRawResponse(body.encode()))


def deletes(s3_requests) -> dict[str, int]:
    """The delete requests the run sent, by operation."""
    return {op: n for op, n in s3_requests.counts.items() if op.startswith("Delete")}


def add_orphans(album, s3, count: int) -> None:
    """`count` recorded photos whose files are gone, each with its object in the bucket."""
    now = datetime.now(UTC)
    Photo.objects.bulk_create(
        Photo(
            album=album,
            path=f"gone/{number:05}.jpg",
            key=f"{PREFIX}gone/{number:05}.jpg",
            size=7,
            mtime_ns=1,
            verified_at=now,
        )
        for number in range(count)
    )
    for number in range(count):
        s3.put(f"{PREFIX}gone/{number:05}.jpg", b"a photo")


def test_pruning_2500_orphans_sends_three_delete_objects_requests(album, s3, s3_requests):
    sync_album(album=album)
    add_orphans(album, s3, 2500)
    s3_requests.reset()
    batches = []

    def note_batch(op, request):
        if op == "DeleteObjects":
            batches.append(len(keys_in(request.body)))

    s3_requests.fault = note_batch

    result = sync_album(album=album, prune=True, max_delete=2500)

    assert (result.status, result.pruned, result.removed) == ("success", 2500, 2500)
    assert deletes(s3_requests) == {"DeleteObjects": 3}  # and not one DeleteObject
    assert sorted(batches) == [500, 1000, 1000]
    assert s3.object_keys() == sorted(f"{PREFIX}{photo.path}" for photo in Photo.objects.all())
    assert Photo.objects.count() == 3


def test_a_key_the_bucket_refuses_fails_alone_and_keeps_its_record(album, over_http, s3_requests):
    s3 = over_http
    sync_album(album=album)
    for name in ("photo1.jpg", "photo2.jpg"):
        (album.path / name).unlink()
    refused = f"{PREFIX}photo1.jpg"

    def refuse_one(op, request):
        if op != "DeleteObjects":
            return None
        for key in keys_in(request.body):
            if key != refused:
                s3.delete(key)  # the bucket deletes the others, as S3 would
        return delete_result(request, [(refused, "AccessDenied", "Access Denied")])

    s3_requests.fault = refuse_one

    result = sync_album(album=album, prune=True)

    assert (result.status, result.pruned, result.removed) == ("partial", 1, 1)
    assert [(f.path, f.error) for f in result.failures] == [
        ("photo1.jpg", KEY_NOT_DELETED.format(code="AccessDenied", message="Access Denied"))
    ]
    assert Photo.objects.filter(path="photo1.jpg").exists()
    assert not Photo.objects.filter(path="photo2.jpg").exists()
    assert refused in s3.object_keys() and f"{PREFIX}photo2.jpg" not in s3.object_keys()
    s3_requests.fault = None
    again = sync_album(album=album, prune=True)
    assert (again.status, again.pruned) == ("success", 1)
    assert refused not in s3.object_keys()


def test_a_key_listed_as_no_such_key_counts_as_deleted(album, over_http, s3_requests):
    """S3 lists no missing key; a service that does says the object is gone, as asked."""
    s3 = over_http
    sync_album(album=album)
    for name in ("photo1.jpg", "photo2.jpg"):
        (album.path / name).unlink()

    def already_gone(op, request):
        if op != "DeleteObjects":
            return None
        for key in keys_in(request.body):
            s3.delete(key)
        return delete_result(request, [(f"{PREFIX}photo1.jpg", "NoSuchKey", "No such key")])

    s3_requests.fault = already_gone

    result = sync_album(album=album, prune=True)

    assert (result.status, result.pruned, result.failed) == ("success", 2, 0)
    assert Photo.objects.count() == 1


def test_every_key_refused_as_access_denied_stops_the_run(album, over_http, s3_requests):
    """What S3 answers a caller without s3:DeleteObject: a 200 listing each key as
    AccessDenied. It stops the run as a refused DeleteObject always did."""
    s3 = over_http
    sync_album(album=album)
    for name in ("photo1.jpg", "photo2.jpg"):
        (album.path / name).unlink()
    s3_requests.fault = lambda op, request: (
        delete_result(
            request, [(key, "AccessDenied", "Access Denied") for key in keys_in(request.body)]
        )
        if op == "DeleteObjects"
        else None
    )

    with pytest.raises(StorageAccessDenied) as caught:
        sync_album(album=album, prune=True)

    assert "denied DeleteObjects (AccessDenied)" in str(caught.value)
    assert "Grant s3:DeleteObject." in str(caught.value)
    assert Photo.objects.count() == 3 and len(s3.object_keys()) == 3


def test_an_endpoint_without_delete_objects_gets_one_delete_per_key_for_the_rest_of_the_run(
    album, over_http, s3_requests, monkeypatch, caplog
):
    s3 = over_http
    monkeypatch.setattr("albums.storage.s3.DELETE_BATCH", 2)  # three requests' worth
    sync_album(album=album)
    add_orphans(album, s3, 5)
    s3_requests.reset()
    s3_requests.fault = lambda op, request: (
        s3_error(request, 501, "NotImplemented") if op == "DeleteObjects" else None
    )

    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album, prune=True, workers=1)

    assert (result.status, result.pruned) == ("success", 5)
    # One thread: the first batch's 501 comes back before the next batch is sent.
    assert (s3_requests.counts["DeleteObjects"], s3_requests.counts["DeleteObject"]) == (1, 5)
    said = [m for m in caplog.messages if m.startswith(DELETING_ONE_BY_ONE.format(cause=""))]
    assert len(said) == 1 and "NotImplemented" in said[0]
    assert not any("gone/" in key for key in s3.object_keys())
    assert Photo.objects.count() == 3


def test_delete_objects_carries_the_content_md5_of_its_body_on_the_wire(
    album, over_http, s3_requests
):
    """Over HTTP with the settings of a custom endpoint (request checksums "when_required"),
    where botocore alone sends only x-amz-checksum-crc32."""
    sync_album(album=album)
    (album.path / "photo1.jpg").unlink()
    sent = []

    def note_headers(op, request):
        if op == "DeleteObjects":
            sent.append((request.headers.get("Content-MD5"), bytes(request.body)))

    s3_requests.fault = note_headers

    assert sync_album(album=album, prune=True).pruned == 1

    [(content_md5, body)] = sent
    assert keys_in(body) == [f"{PREFIX}photo1.jpg"]
    assert content_md5 == base64.b64encode(hashlib.md5(body).digest())
    assert f"{PREFIX}photo1.jpg" not in over_http.object_keys()


def test_max_delete_stops_before_any_request_and_within_it_one_request_deletes(
    album, s3, s3_requests
):
    sync_album(album=album)
    add_orphans(album, s3, 4)
    s3_requests.reset()

    with pytest.raises(TooManyDeletions, match=r"would delete 4 objects .* limit of 3"):
        sync_album(album=album, prune=True, max_delete=3)

    assert s3_requests.total == 0
    assert sync_album(album=album, prune=True, max_delete=4).pruned == 4
    assert deletes(s3_requests) == {"DeleteObjects": 1}


def test_a_batch_that_got_no_answer_is_one_unanswered_request(album, s3, s3_requests, settings):
    """Its keys each fail, and the run goes on: one request without an answer, while the
    endpoint answers the others, is not an endpoint that stopped answering."""
    use_s3(settings, AWS_S3_MAX_ATTEMPTS="1")
    sync_album(album=album)
    add_orphans(album, s3, 5)

    def no_answer(op, request):
        if op == "DeleteObjects":
            raise EndpointConnectionError(endpoint_url=request.url)

    s3_requests.fault = no_answer

    result = sync_album(album=album, prune=True)

    assert (result.status, result.failed, result.pruned) == ("partial", 5, 0)
    assert Photo.objects.count() == 8 and len(s3.object_keys()) == 8
