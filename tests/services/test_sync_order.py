"""A sync is one pass over the album folder, the photo rows and the bucket listing, lined up
by path. Names whose order differs from one naive sort to another must not confuse it: a
photo seen out of step would look new on one side and gone on the other."""

import pytest
from django.db import connection

from albums.models import Photo
from albums.sync import sync_album
from albums.sync.library.merge import OutOfOrder, merge_by_path
from albums.sync.library.scan import FolderWalk
from albums.sync.records import photos as records
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

# Each pair sorts one way by folder-then-name or by case or by normal form, and the other
# way by S3's UTF-8 byte order: "a.jpg" < "a/b.jpg" < "a0.jpg" because "." < "/" < "0".
TRICKY_NAMES = [
    "a.jpg", "a/b.jpg", "a-b/c.jpg", "a0.jpg", "a b.jpg", "B.jpg", "b.jpg", "Z/z.jpg",
    "z.jpg", "~.jpg", "é.jpg", "e\u0301.jpg", "日本/写真.jpg", "📷/1.jpg", "a/b/c/d.jpg",
]  # fmt: skip
EXTENSIONS = frozenset({".jpg"})


def byte_order(paths):
    return sorted(paths, key=lambda path: path.encode())


@pytest.fixture
def tricky_album(album):
    for name in TRICKY_NAMES:
        write_photo(album.path / name)
    return album


def album_paths(album):
    return byte_order(p.relative_to(album.path).as_posix() for p in album.path.rglob("*.jpg"))


def test_the_folder_walk_comes_out_in_s3_key_order(tricky_album):
    walk = FolderWalk(tricky_album.path, EXTENSIONS)

    assert [local.path for local in walk] == album_paths(tricky_album)
    assert [path for path, _ in walk.paths()] == album_paths(tricky_album)


def test_the_database_returns_paths_in_s3_key_order(tricky_album):
    sync_album(album=tricky_album)

    assert list(Photo.objects.order_by("path").values_list("path", flat=True)) == album_paths(
        tricky_album
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL column setting")
def test_the_path_column_sorts_by_bytes_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_name = %s AND column_name = 'path'",
            [Photo._meta.db_table],
        )
        assert cursor.fetchone() == ("C",)


def test_tricky_names_are_uploaded_once_and_then_left_alone(tricky_album, s3, s3_requests):
    first = sync_album(album=tricky_album)
    assert (first.status, first.new, first.uploaded) == ("success", 18, 18)
    s3_requests.reset()

    second = sync_album(album=tricky_album)

    assert (second.unchanged, second.uploaded, second.reuploaded) == (18, 0, 0)
    assert (second.new, second.orphaned, second.removed) == (0, 0, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    assert sorted(s3.object_keys()) == byte_order(
        f"albums/summer-2024/{path}" for path in album_paths(tricky_album)
    )


def test_rows_read_page_by_page_line_up_with_photos_added_and_removed_between_them(
    tricky_album, s3, monkeypatch
):
    """Rows are read a page at a time while the run writes new ones: a row it has just
    created must never come back in a later page as a photo gone from disk."""
    sync_album(album=tricky_album)
    monkeypatch.setattr(records, "READ_CHUNK", 2)
    added = ["a.jpeg.jpg", "a/a.jpg", "Z/0.jpg", "zz/z.jpg", "é/1.jpg", "📷/0.jpg"]
    for number, name in enumerate(added):  # other bytes than the photos removed: not moves
        write_photo(tricky_album.path / name, color=(number, 0, 0))
    for name in ("a/b.jpg", "e\u0301.jpg", "~.jpg"):
        (tricky_album.path / name).unlink()

    result = sync_album(album=tricky_album)

    assert (result.new, result.uploaded) == (6, 6)
    assert (result.existing, result.unchanged) == (15, 15)
    assert (result.orphaned, result.removed) == (3, 3)
    recorded = list(Photo.objects.order_by("path").values_list("path", flat=True))
    assert recorded == album_paths(tricky_album)
    again = sync_album(album=tricky_album)
    assert (again.unchanged, again.uploaded, again.orphaned) == (21, 0, 0)


def test_the_progress_total_is_known_from_the_first_report(tricky_album, s3):
    reports = []

    sync_album(album=tricky_album, progress=lambda done, total: reports.append((done, total)))

    assert reports[0][1] == 18 and reports[-1] == (18, 18)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_a_view_out_of_path_order_stops_the_merge_with_a_clear_error():
    folder = [("a.jpg", "file"), ("c.jpg", "file")]
    rows = [("b.jpg", "row"), ("B.jpg", "row")]  # as a locale-aware collation sorts them

    with pytest.raises(OutOfOrder) as caught:
        list(merge_by_path(folder, rows))

    assert str(caught.value).startswith(
        "The database returned 'B.jpg' after 'b.jpg', out of path order"
    )
    assert "Nothing was removed" in str(caught.value) and "migrate" in str(caught.value)


def test_the_merge_pairs_each_path_across_the_three_views():
    entries = merge_by_path(
        [("a.jpg", "A"), ("a/b.jpg", "AB")],
        [("a.jpg", 1), ("a0.jpg", 2)],
        [("a/b.jpg", "obj"), ("a0.jpg", "obj0"), ("x.txt", "other")],
    )

    assert [(e.path, e.local, e.known, e.remote) for e in entries] == [
        ("a.jpg", "A", 1, None),
        ("a/b.jpg", "AB", None, "obj"),
        ("a0.jpg", None, 2, "obj0"),
        ("x.txt", None, None, "other"),
    ]
