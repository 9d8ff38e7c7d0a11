"""verify_albums: every recorded photo's file, record and bucket copy compared."""

import hashlib
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from albums.exceptions import SyncAlreadyRunning
from albums.models import Album, Photo, SyncRun
from albums.sync import sync_album, verify_album
from albums.sync.records.lease import AlbumLease
from albums.sync.recovery import verify as verify_module
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db
KEY = "albums/summer-2024/{}"


def damage(album, bucket):
    """A same-size replacement in the bucket, a missing object, and a file whose bytes
    changed on disk while its size and modification time did not."""
    replaced = KEY.format("photo1.jpg")
    bucket.put(replaced, bytes(reversed(bucket.body(replaced))))
    bucket.delete(KEY.format("photo2.jpg"))
    corrupted = album.path / "day 2" / "100% fun #1.jpg"
    stat = corrupted.stat()
    data = bytearray(corrupted.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    corrupted.write_bytes(bytes(data))
    os.utime(corrupted, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_verify_finds_a_replacement_a_missing_object_and_a_corrupted_file(album, over_http):
    sync_album(album=album)
    damage(album, over_http)

    result = verify_album(album=album)

    assert result.status == "partial"
    assert (result.checked, result.matched) == (3, 0)
    counts = (result.differs_in_bucket, result.missing_in_bucket, result.corrupted_on_disk)
    assert counts == (1, 1, 1)
    problems = {problem.path: problem.error for problem in result.problems}
    assert problems["photo1.jpg"] == verify_module.DIFFERS_IN_BUCKET
    assert problems["photo2.jpg"] == verify_module.MISSING_IN_BUCKET
    assert problems["day 2/100% fun #1.jpg"] == verify_module.CORRUPTED
    run = SyncRun.objects.get(pk=result.run_id)
    assert (run.kind, run.status, run.missing_in_bucket) == ("verify", "partial", 1)
    assert len(run.errors) == 3


def test_repair_fixes_the_bucket_never_from_a_corrupted_file(album, over_http):
    sync_album(album=album)
    damage(album, over_http)
    corrupted_key = KEY.format("day 2/100% fun #1.jpg")
    bucket_copy = over_http.body(corrupted_key)

    result = verify_album(album=album, repair=True)

    assert (result.repaired, result.corrupted_on_disk, result.status) == (2, 1, "partial")
    for name in ("photo1.jpg", "photo2.jpg"):
        assert over_http.body(KEY.format(name)) == (album.path / name).read_bytes()
    assert over_http.body(corrupted_key) == bucket_copy  # the good copy is kept
    again = verify_album(album=album)
    assert (again.matched, again.corrupted_on_disk) == (2, 1)


def test_a_sound_album_verifies_and_legacy_records_get_their_checksums(album, s3, s3_requests):
    large = album.path / "large.tif"
    large.write_bytes(os.urandom(1024) * (9 * 1024))  # went up in parts: a "-2" ETag
    sync_album(album=album)
    Photo.objects.update(md5="", etag="")  # recorded before checksums were kept
    s3_requests.reset()

    result = verify_album(album=album)

    assert (result.status, result.checked, result.matched) == ("success", 4, 4)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}  # no HEAD, no download
    for photo in Photo.objects.all():
        assert photo.md5 == hashlib.md5((album.path / photo.path).read_bytes()).hexdigest()
        assert photo.etag == s3.head(photo.key)["ETag"].strip('"')


def test_photos_changed_or_gone_on_disk_are_reported_for_what_they_are(album, s3):
    sync_album(album=album)
    write_photo(album.path / "photo1.jpg", color=(1, 1, 1), mtime_ns=1_700_000_555_000_000_000)
    (album.path / "photo2.jpg").unlink()

    result = verify_album(album=album)

    assert (result.changed_on_disk, result.missing_on_disk, result.matched) == (1, 1, 1)
    problems = {problem.path: problem.error for problem in result.problems}
    assert problems == {
        "photo1.jpg": verify_module.CHANGED,
        "photo2.jpg": verify_module.MISSING_ON_DISK,
    }


def test_a_local_folder_bucket_is_compared_byte_for_byte(album, local_bucket):
    sync_album(album=album)
    stored = local_bucket / "albums" / "summer-2024" / "photo1.jpg"
    stored.write_bytes(bytes(reversed(stored.read_bytes())))

    result = verify_album(album=album)

    assert (result.differs_in_bucket, result.matched) == (1, 2)


def test_the_command_exits_1_and_names_what_is_wrong(album, s3):
    sync_album(album=album)
    s3.delete(KEY.format("photo2.jpg"))
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 1 albums are not sound"):
        call_command("verify_albums", stdout=out)

    assert "photo2.jpg: missing in the bucket" in out.getvalue()
    call_command("verify_albums", "--repair", stdout=StringIO())  # repaired: no error
    out = StringIO()
    call_command("verify_albums", "summer-2024", "--json", stdout=out)
    assert '"matched": 3' in out.getvalue()


def test_a_verification_never_runs_beside_a_sync(album, s3):
    lease = AlbumLease(album)
    lease.acquire()
    try:
        with pytest.raises(SyncAlreadyRunning, match="Another sync of album"):
            verify_album(album=album)
    finally:
        lease.release()


def test_the_admin_queues_a_verification(album, s3, syncer, on_commit):
    from django.test import Client

    sync_album(album=album)
    client = Client()
    client.force_login(syncer)

    with on_commit():
        client.post(reverse("admin:albums_album_sync", args=[album.pk]), {"verify": "1"})

    run = SyncRun.objects.get(kind="verify")
    assert (run.status, run.matched, run.checked) == ("success", 3, 3)
    page = client.get(reverse("admin:albums_syncrun_change", args=[run.pk])).content.decode()
    assert "Verify of Summer 2024" in page and "Matched" in page


def test_an_album_not_yet_synced_has_nothing_to_verify(photos_root, s3):
    write_photo(photos_root / "Fresh" / "a.jpg")
    album = Album.objects.create(name="Fresh", slug="fresh", folder="Fresh")

    result = verify_album(album=album)

    assert (result.status, result.checked) == ("success", 0)
