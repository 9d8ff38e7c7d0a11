"""Awkward file names and sizes, synced over real HTTP: each round-trips exactly or fails clearly."""

import base64
import hashlib
import logging
import os
import unicodedata

import pytest

from albums.models import Album, Photo
from albums.sync import sync_album
from tests.conftest import BUCKET, s3_client, use_s3, write_photo

pytestmark = pytest.mark.django_db

NAMES = [
    "with space.jpg",
    "100% fun.jpg",
    "a+b.jpg",
    "#hash.jpg",
    "what?.jpg",
    "this&that.jpg",
    'it\'s "quoted".jpg',
    unicodedata.normalize("NFC", "café NFC.jpg"),
    unicodedata.normalize("NFD", "café NFD.jpg"),
    "日本語の写真.jpg",
    "-leading-dash.jpg",
    "x" * 240 + ".jpg",
    "sub folder/é/[brackets] {braces}.jpg",
    "%2e%2e%2f%2e%2e%2fescape.jpg",  # looks like ../../ once URL-decoded
    "x..%2f..%2fdots.jpg",
    "~home.jpg",
    "*star.jpg",
    "\u202eright-to-left.jpg",
    "space after.jpg ",  # a photo by its extension, kept under its name exactly (issue #12)
    "dot after.JPG.",
]


@pytest.fixture
def http_bucket(moto_server, settings):
    use_s3(settings, AWS_S3_ENDPOINT_URL=moto_server)
    return s3_client(endpoint_url=moto_server)


def test_awkward_names_round_trip_exactly(photos_root, http_bucket):
    folder = photos_root / "Names"
    for name in NAMES:
        write_photo(folder / name)
    album = Album.objects.create(name="Names", slug="names", folder="Names")

    first = sync_album(album=album)
    second = sync_album(album=album)

    assert (first.status, first.uploaded) == ("success", len(NAMES))
    assert (second.unchanged, second.uploaded, second.reuploaded) == (len(NAMES), 0, 0)
    keys = {obj["Key"] for obj in http_bucket.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"albums/names/{name}" for name in NAMES}  # NFC and NFD stay distinct
    assert all(key.startswith("albums/names/") for key in keys)  # nothing escapes the prefix
    for name in NAMES:
        body = http_bucket.get_object(Bucket=BUCKET, Key=f"albums/names/{name}")["Body"].read()
        assert body == (folder / name).read_bytes()
    assert set(Photo.objects.values_list("path", flat=True)) == set(NAMES)
    assert set(Photo.objects.values_list("content_type", flat=True)) == {"image/jpeg"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/".join(["d" * 200] * 5) + "/too-deep.jpg", "longer than S3's 1024 bytes"),
        ("tab\tand\nnewline.jpg", "contains a control character"),
        ("back\\slash.jpg", "contains a backslash"),
    ],
    ids=["too-long", "control-characters", "backslash"],
)
def test_names_that_cannot_be_keys_are_reported(photos_root, http_bucket, name, reason):
    write_photo(photos_root / "Odd" / name)
    write_photo(photos_root / "Odd" / "fine.jpg")
    album = Album.objects.create(name="Odd", slug="odd", folder="Odd")

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("partial", 1)
    assert result.failures[0].path == name
    assert reason in result.failures[0].error


def test_empty_and_large_files(photos_root, http_bucket):
    folder = photos_root / "Sizes"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    large = folder / "large.tif"
    large.write_bytes(os.urandom(1024) * (9 * 1024))  # 9 MiB: over the multipart threshold
    album = Album.objects.create(name="Sizes", slug="sizes", folder="Sizes")

    result = sync_album(album=album)

    assert (result.status, result.uploaded) == ("success", 2)
    head = http_bucket.head_object(Bucket=BUCKET, Key="albums/sizes/large.tif")
    assert head["ContentLength"] == large.stat().st_size
    assert head["ETag"].strip('"').endswith("-2")  # sent in parts
    empty = http_bucket.head_object(Bucket=BUCKET, Key="albums/sizes/empty.jpg")
    assert empty["ContentLength"] == 0
    assert sync_album(album=album).unchanged == 2


def test_a_video_synced_beside_photos_goes_up_in_parts(photos_root, http_bucket, settings):
    settings.ALBUMS_PHOTO_EXTENSIONS = "+mov,mp4,m4v"
    clip = photos_root / "Clips" / "clip.mov"
    clip.parent.mkdir()
    with open(clip, "wb") as file:
        file.truncate(20 * 1024 * 1024)  # 20 MiB (sparse): three parts of 8 MiB
    os.utime(clip, ns=(1_700_000_000_000_000_000,) * 2)
    album = Album.objects.create(name="Clips", slug="clips", folder="Clips")

    result = sync_album(album=album)

    head = http_bucket.head_object(Bucket=BUCKET, Key="albums/clips/clip.mov")
    assert (result.uploaded, head["ContentLength"]) == (1, 20 * 1024 * 1024)
    assert head["ETag"].strip('"').endswith("-3") and head["ContentType"] == "video/quicktime"
    video = Photo.objects.get(path="clip.mov")
    assert (video.content_type, video.width, video.taken_at) == ("video/quicktime", None, None)
    assert sync_album(album=album).unchanged == 1


def test_single_part_uploads_carry_their_md5(album, s3, s3_requests):
    sent = {}

    def capture(op, request):
        if op == "PutObject":
            sent[request.url.rsplit("/", 1)[-1]] = request.headers.get("Content-MD5").decode()

    s3_requests.fault = capture
    sync_album(album=album)

    expected = base64.b64encode(hashlib.md5((album.path / "photo1.jpg").read_bytes()).digest())
    assert sent["photo1.jpg"] == expected.decode()


def test_many_workers_never_overflow_the_connection_pool(photos_root, http_bucket, caplog):
    for number in range(80):
        write_photo(photos_root / "Wide" / f"{number:03}.jpg")
    album = Album.objects.create(name="Wide", slug="wide", folder="Wide")

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        result = sync_album(album=album, workers=24, batch_size=24)

    assert result.uploaded == 80
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
