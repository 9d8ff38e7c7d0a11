"""A listing cut into key ranges, listed side by side (issue 29): every key exactly once, in
order, whatever the names and wherever the cuts fall; the cuts come from the recorded photos,
so a no-op sends no more listing requests than pages."""

import logging

import pytest

from albums.models import Album, Photo
from albums.sync import sync_album, sync_albums
from albums.sync.bucket import bucket_pool
from albums.sync.bucket.bucket_pool import BucketPool
from albums.sync.library import folders
from albums.sync.records.photos import listing_boundaries
from albums.sync.usecases import many
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

PREFIX = "albums/awkward/"
# Names whose UTF-8 bytes sort differently from what one might think: a space, "%", "+",
# "#", a dash before a slash, accents (two bytes), CJK (three), an emoji (four), DEL.
NAMES = sorted(
    [
        *(f"{number:03}.jpg" for number in range(30)),
        "a b.jpg", "a%20b.jpg", "a+b.jpg", "a#b.jpg", "a-b/c.jpg", "a/b.jpg", "a/b/c.jpg",
        "é.jpg", "e\u0301.jpg", "日本/写真.jpg", "😀.jpg", "z\x7f.jpg", "zz.jpg",
    ]
)  # fmt: skip


@pytest.fixture
def pool(s3):
    for name in NAMES:
        s3.put(PREFIX + name, b"x")
    s3.put("albums/awkward-next/000.jpg", b"x")  # another prefix, never listed
    pool = BucketPool(
        album_name="awkward", prefix=PREFIX, workers=4, on_wait=lambda: None, log=logging
    )
    yield pool
    pool.close()


@pytest.mark.parametrize(
    "boundaries",
    [
        [],
        ["005.jpg"],
        ["000.jpg", "001.jpg", "029.jpg"],  # cuts on keys that exist, one at the start
        ["0", "a", "a-b/", "a/b", "é", "日", "😀"],  # cuts between keys
        sorted(
            ["a b.jpg", "a%20b.jpg", "a+b.jpg", "a/b/c.jpg", "e\u0301.jpg", "zz.jpg", "z\x7f.jpg"]
        ),
        ["zzz"],  # after the last key: the last range is empty
    ],
    ids=["whole", "one-cut", "on-keys", "between-keys", "awkward-cuts", "after-the-end"],
)
def test_a_listing_cut_into_ranges_gives_every_key_once_in_order(
    pool, boundaries, monkeypatch, s3_requests
):
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 4)  # several pages in a range
    s3_requests.reset()

    listed = [path for path, _ in pool.listing(boundaries)]

    assert listed == NAMES
    # Each range costs its pages, plus at most one request that finds its end.
    pages = -(-len(NAMES) // 4)
    assert s3_requests.counts["ListObjectsV2"] <= pages + len(boundaries) + 1


def test_ranges_that_end_on_a_page_send_no_request_more_than_the_pages(pool, monkeypatch):
    """Cut every 4 keys, pages of 4: one request per range, none to find its end."""
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 4)
    boundaries = NAMES[3::4]
    seen = []
    original = pool.bucket.list_pages

    def counted(*args, **kwargs):
        for page in original(*args, **kwargs):
            seen.append(len(page))
            yield page

    monkeypatch.setattr(pool.bucket, "list_pages", counted)

    assert [path for path, _ in pool.listing(boundaries)] == NAMES
    assert len(seen) == -(-len(NAMES) // 4)


def test_the_cuts_of_albums_come_from_their_recorded_photos(db, photos_root):
    albums = [
        Album.objects.create(name=slug, slug=slug, folder=slug)
        for slug in ("a", "a-b", "big", "c", "d")
    ]
    sizes = {"a": 3, "a-b": 2, "big": 11, "c": 1, "d": 4}
    for album in albums:
        Photo.objects.bulk_create(
            Photo(album=album, path=f"{n:02}.jpg", key="", size=1, mtime_ns=1, verified_at="2026-01-01T00:00Z")
            for n in range(sizes[album.slug])
        )  # fmt: skip

    cuts = listing_boundaries(albums, every=4)

    # In key order ("a-b/" sorts before "a/"), a range ends on the last photo of the album
    # before one that would bring it over 4 photos: a-b (2); a (2 + 3) -> cut after a-b, 3;
    # big (3 + 11) -> cut after a, and at its 4th and 8th photos, 3 left; c (3 + 1 = 4: a
    # page, no cut); d (4 + 4) -> cut after c; d's 4th photo is its last, the listing's end.
    assert cuts == ["a-b/01.jpg", "a/02.jpg", "big/03.jpg", "big/07.jpg", "c/00.jpg"]
    assert listing_boundaries([], every=4) == []


def test_a_no_op_of_an_album_lists_its_ranges_and_sends_nothing_else(
    album, s3, s3_requests, monkeypatch
):
    for number in range(9):
        write_photo(album.path / "many" / f"{number}.jpg", color=(number, 1, 1))
    sync_album(album=album)
    monkeypatch.setattr(folders, "RANGE_PHOTOS", 3)
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 3)
    s3_requests.reset()

    result = sync_album(album=album)

    assert (result.unchanged, result.uploaded) == (12, 0)
    # 12 objects, cut every 3 recorded photos: 4 ranges of one page each.
    assert dict(s3_requests.counts) == {"ListObjectsV2": 4}


def test_a_no_op_over_several_albums_lists_the_common_prefix_in_ranges(
    album, photos_root, s3, s3_requests, monkeypatch
):
    others = []
    for name in ("Autumn", "Winter"):
        other = Album.objects.create(name=name, slug=name.lower(), folder=name)
        for number in range(4):
            write_photo(photos_root / name / f"{number}.jpg", color=(number, 2, 3))
        others.append(other)
    list(sync_albums([album, *others]))
    monkeypatch.setattr(many, "LIST_PAGE", 3)
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 3)
    s3_requests.reset()

    outcomes = list(sync_albums([album, *others]))

    assert [o.result.unchanged for o in outcomes] == [4, 3, 4]  # autumn, summer, winter
    assert all(o.result.uploaded == 0 for o in outcomes)
    assert set(s3_requests.counts) == {"ListObjectsV2"}
    # One request a range: each ends on a recorded key, or holds less than a page.
    assert dict(s3_requests.counts) == {"ListObjectsV2": 5}


def test_albums_of_a_page_each_cost_one_listing_request_each(
    photos_root, s3, s3_requests, monkeypatch
):
    """A range that ended between two albums after a full page needed a second request to
    find its end; ending on the album's last key, it needs none."""
    albums = []
    for name in ("Autumn", "Spring", "Winter"):
        albums.append(Album.objects.create(name=name, slug=name.lower(), folder=name))
        for number in range(3):
            write_photo(photos_root / name / f"{number}.jpg", color=(number, 4, 5))
    list(sync_albums(albums))
    monkeypatch.setattr(many, "LIST_PAGE", 3)
    monkeypatch.setattr(bucket_pool, "LIST_PAGE", 3)
    s3_requests.reset()

    outcomes = list(sync_albums(albums))

    assert [o.result.unchanged for o in outcomes] == [3, 3, 3]
    assert dict(s3_requests.counts) == {"ListObjectsV2": 3}
