"""Exclusions (issue 15): NAS and OS clutter never becomes a photo, and the user's patterns
(ALBUMS_EXCLUDE, .photosite-ignore) are honoured by the census and the walk alike."""

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from pathspec import GitIgnoreSpec

from albums.exceptions import ExclusionsInvalid, TooManyDeletions
from albums.models import Album, Photo, SyncRun
from albums.sync import discover_albums, sync_album
from albums.sync.library.exclusions import (
    BUILT_IN_FOLDERS,
    IGNORE_FILE,
    IGNORE_FILE_INVALID,
    Excluded,
    Exclusions,
)
from albums.sync.library.patterns import PatternSet
from albums.sync.library.scan import FolderWalk
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

PHOTOS = ["IMG_1.JPG", "2024/IMG_2.jpg", "2024/summer/IMG_3.jpg"]
# Where NAS and operating systems put their clutter, beside the photos and at the root.
CLUTTER_FILES = [
    "@eaDir/IMG_1.JPG/SYNOPHOTO_THUMB_XL.jpg",
    "@eaDir/IMG_1.JPG/SYNOPHOTO_THUMB_M.jpg",
    "2024/@eaDir/IMG_2.jpg/SYNOPHOTO_THUMB_XL.jpg",
    "2024/summer/@EADIR/IMG_3.jpg/SYNOPHOTO_THUMB_S.jpg",  # any case
    "#recycle/old.jpg",
    "#snapshot/GMT+01_2024-07-01/IMG_1.JPG",
    "@tmp/upload.jpg",
    "@Recycle/old.jpg",
    "@Recently-Snapshot/IMG_1.JPG",
    "@__thumb/IMG_1.JPG",
    ".@__thumb/IMG_1.JPG",
    ".@__qini/x.jpg",
    "$RECYCLE.BIN/S-1-5-21/$RABC.jpg",
    "System Volume Information/tracking.jpg",
    "._IMG_1.JPG",
    ".Spotlight-V100/Store-V2/preview.jpg",
    ".Trashes/501/old.jpg",
    "lost+found/#1234.jpg",
    "2024/Thumbs.db",
    "2024/desktop.ini",
]
# The clutter the walk leaves out by name (hidden entries are skipped before any exclusion).
CLUTTER_LEFT_OUT = sorted(
    {path.split("/")[0] + "/" for path in CLUTTER_FILES if not path.startswith((".", "2024"))}
    | {"2024/@eaDir/", "2024/summer/@EADIR/", "2024/Thumbs.db", "2024/desktop.ini"}
)


def nas_album(photos_root: Path, name: str = "nas") -> Album:
    folder = photos_root / name
    for path in PHOTOS:
        write_photo(folder / path)
    for path in CLUTTER_FILES:
        write_photo(folder / path)  # a real JPEG, whatever its name: only its place counts
    return Album.objects.create(name=name, slug=name, folder=name)


def test_nas_and_os_clutter_is_never_uploaded_nor_recorded(photos_root, s3, settings):
    settings.ALBUMS_PHOTO_EXTENSIONS = "+db,ini"  # so that Thumbs.db and desktop.ini count too
    album = nas_album(photos_root)

    result = sync_album(album=album)

    assert s3.object_keys() == sorted(f"albums/nas/{path}" for path in PHOTOS)
    assert sorted(Photo.objects.values_list("path", flat=True)) == sorted(PHOTOS)
    assert (result.status, result.uploaded, result.excluded) == (
        "success",
        3,
        len(CLUTTER_LEFT_OUT),
    )
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.excluded == len(CLUTTER_LEFT_OUT)


def test_every_built_in_folder_is_left_out(tmp_path):
    for name in BUILT_IN_FOLDERS:
        write_photo(tmp_path / "album" / name / "x.jpg")
    write_photo(tmp_path / "album" / "keep" / "x.jpg")

    found = list(FolderWalk(tmp_path / "album", frozenset({".jpg"}), exclusions=Exclusions()))

    assert [item.path for item in found if not isinstance(item, Excluded)] == ["keep/x.jpg"]
    left_out = {item.path for item in found if isinstance(item, Excluded)}
    assert left_out == {f"{name}/" for name in BUILT_IN_FOLDERS if not name.startswith(".")}


def test_discover_at_a_share_root_makes_no_clutter_album(photos_root):
    for name in ["nas", "Holidays", "@eaDir", "#recycle", "#snapshot", "@Recycle",
                 "$RECYCLE.BIN", "System Volume Information", ".@__thumb", "lost+found"]:  # fmt: skip
        write_photo(photos_root / name / "x.jpg")

    created = discover_albums()

    assert sorted(album.folder for album in created) == ["Holidays", "nas"]


def test_patterns_in_the_setting_and_the_album_file_are_honoured(album, s3, settings, caplog):
    settings.ALBUMS_EXCLUDE = "drafts/, *_small.jpg"
    folder = album.path
    for path in ["drafts/a.jpg", "2024/drafts/b.jpg", "x_small.jpg", "keep_small.jpg",
                 "Private/c.jpg", "deep/Private/d.jpg", "edits/e.jpg", "edits/keep.jpg"]:  # fmt: skip
        write_photo(folder / path)
    (folder / IGNORE_FILE).write_text(
        "# the album's own\n/Private/\n!keep_small.jpg\nedits/*\n!edits/keep.jpg\n"
    )

    with caplog.at_level(logging.INFO, logger="albums"):
        result = sync_album(album=album)

    synced = {"photo1.jpg", "photo2.jpg", "day 2/100% fun #1.jpg"}
    synced |= {"keep_small.jpg", "deep/Private/d.jpg", "edits/keep.jpg"}
    assert set(Photo.objects.values_list("path", flat=True)) == synced
    assert s3.object_keys() == sorted(f"albums/summer-2024/{path}" for path in synced)
    assert result.excluded == 5  # drafts/, 2024/drafts/, x_small.jpg, Private/, edits/e.jpg
    assert "Excluded (ALBUMS_EXCLUDE: drafts/): 2024/drafts/" in caplog.messages
    assert "Excluded (.photosite-ignore line 2: /Private/): Private/" in caplog.messages
    assert "Excluded (ALBUMS_EXCLUDE: *_small.jpg): x_small.jpg" in caplog.messages
    assert "Excluded (.photosite-ignore line 4: edits/*): edits/e.jpg" in caplog.messages


def test_excluding_a_synced_folder_deletes_nothing_and_sends_nothing(album, s3, s3_requests):
    sync_album(album=album)
    keys = s3.object_keys()
    (album.path / IGNORE_FILE).write_text("day 2/\n")
    s3_requests.reset()

    result = sync_album(album=album, prune=True)

    assert s3.object_keys() == keys  # the excluded photo's copy stays
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    assert (result.excluded, result.excluded_recorded, result.orphaned) == (1, 1, 0)
    assert (result.removed, result.pruned, result.unchanged) == (0, 0, 2)
    excluded = Photo.objects.get(path="day 2/100% fun #1.jpg")  # its record is kept
    assert excluded.excluded_at is not None
    assert "1 excluded, 1 recorded photo now excluded" in result.summary()

    (album.path / IGNORE_FILE).unlink()  # brought back: found whole, nothing sent
    s3_requests.reset()
    again = sync_album(album=album)

    assert (again.unchanged, again.uploaded, again.reuploaded) == (3, 0, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    excluded.refresh_from_db()
    assert excluded.excluded_at is None


def test_a_no_op_run_with_exclusions_reads_no_photo_and_sends_the_same_requests(
    photos_root, s3, s3_requests, opened_files, settings
):
    album = nas_album(photos_root)
    sync_album(album=album)
    s3_requests.reset()
    opened_files.paths.clear()
    plain = sync_album(album=album)
    plain_requests = dict(s3_requests.counts)
    assert opened_files.paths == []

    settings.ALBUMS_EXCLUDE = "drafts/, *_small.jpg, **/raw/*.jpg"
    (album.path / IGNORE_FILE).write_text("Export/**\n")
    s3_requests.reset()
    opened_files.paths.clear()
    with_patterns = sync_album(album=album)

    assert plain.unchanged == with_patterns.unchanged == 3
    assert dict(s3_requests.counts) == plain_requests == {"ListObjectsV2": 1}
    assert opened_files.paths == [str(album.path / IGNORE_FILE)]  # once, for both passes


def test_prune_excluded_deletes_their_copies_within_max_delete(album, s3, s3_requests):
    write_photo(album.path / "drafts" / "a.jpg")
    write_photo(album.path / "drafts" / "b.jpg")
    sync_album(album=album)
    (album.path / IGNORE_FILE).write_text("drafts/\n")
    s3_requests.reset()

    with pytest.raises(TooManyDeletions, match="would delete 2 objects"):
        sync_album(album=album, prune_excluded=True, max_delete=1)
    assert s3_requests.total == 0 and Photo.objects.count() == 5

    dry = sync_album(album=album, prune_excluded=True, dry_run=True)
    assert (dry.excluded_recorded, dry.excluded_pruned) == (2, 2)
    assert len(s3.object_keys()) == 5

    result = sync_album(album=album, prune_excluded=True, max_delete=2)

    assert (result.excluded_recorded, result.excluded_pruned, result.removed) == (2, 2, 0)
    assert (s3_requests.counts["DeleteObjects"], s3_requests.counts["DeleteObject"]) == (1, 0)
    assert not any("drafts/" in key for key in s3.object_keys())
    assert not Photo.objects.filter(path__startswith="drafts/").exists()


def test_an_album_whose_photos_are_all_excluded_is_not_taken_as_emptied(album, s3, settings):
    sync_album(album=album)
    settings.ALBUMS_EXCLUDE = "*.jpg"

    result = sync_album(album=album, prune=True)

    assert (result.status, result.excluded_recorded, result.pruned) == ("success", 3, 0)
    assert Photo.objects.count() == 3 and len(s3.object_keys()) == 3


def test_a_malformed_pattern_in_the_album_file_stops_the_run_before_anything(album, s3):
    (album.path / IGNORE_FILE).write_text("*.tmp\nraw\\\n")

    with pytest.raises(ExclusionsInvalid) as caught:
        sync_album(album=album)

    assert str(caught.value) == IGNORE_FILE_INVALID.format(
        file=album.path / IGNORE_FILE,
        album="Summer 2024",
        problem="line 2: 'raw\\\\' is not a valid gitignore-style pattern "
        "(escape character found with no next character to escape).",
    )
    assert s3.object_keys() == [] and not Photo.objects.exists()
    assert SyncRun.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe*.tmp", "it is not UTF-8 text."),
        (None, "it must be a regular file, not a link or a folder."),
    ],
)
def test_an_album_file_that_is_not_text_is_refused(album, s3, content, problem):
    target = album.path / IGNORE_FILE
    if content is None:
        target.symlink_to(album.path / "photo1.jpg")
    else:
        target.write_bytes(content)

    with pytest.raises(ExclusionsInvalid, match=problem):
        sync_album(album=album)
    assert s3.object_keys() == []


# The quick tests before pathspec never miss what pathspec would match -------------------

PATTERNS = [
    "*.tmp.jpg", "*_small.jpg", "IMG_*", "*", "**", "x?.jpg", "[ab].jpg", "[!a]*.jpg",
    "drafts/", "drafts", "/drafts", "/Private/", "a/b.jpg", "a/*/c.jpg", "a/**/c.jpg",
    "**/raw/*.jpg", "**/raw/", "**/c.jpg", "Export/**", "*/x/**", "\\#x.jpg", "a b.jpg ",
    "a\\ ", "*.JPG", "2024/*_edit.jpg", "*/**/z.jpg", "[a-c]/d.jpg", "a*/d.jpg",
]  # fmt: skip
PATHS = [
    "a.jpg", "b.jpg", "x1.jpg", "IMG_1.jpg", "p.tmp.jpg", "p_small.jpg", "#x.jpg", "a b.jpg",
    "a ", "P.JPG", "a/b.jpg", "a/q/c.jpg", "a/c.jpg", "a/q/r/c.jpg", "raw/x.jpg",
    "q/raw/x.jpg", "q/raw/s/x.jpg", "Export/x.jpg", "Export/q/x.jpg", "q/Export/x.jpg",
    "q/x/y.jpg", "x/y.jpg", "2024/a_edit.jpg", "2024/q/a_edit.jpg", "q/z.jpg", "q/w/z.jpg",
    "b/d.jpg", "ab/d.jpg", "drafts/x.jpg", "q/drafts/x.jpg",
]  # fmt: skip


@pytest.mark.parametrize("pattern", PATTERNS)
def test_quick_tests_agree_with_pathspec(pattern):
    spec = GitIgnoreSpec.from_lines([pattern])
    patterns = PatternSet([(pattern, "ALBUMS_EXCLUDE")])
    for path in PATHS:
        parts = path.split("/")
        folders = ["/".join(parts[: depth + 1]) for depth in range(len(parts) - 1)]
        left_out = False
        for folder in folders:
            expected = spec.match_file(folder + "/")
            assert (patterns.folder(folder, folder.rsplit("/", 1)[-1]) is not None) == expected
            if left_out := expected:
                break  # the walk never reaches what lies in a folder left out
        if not left_out:
            expected = spec.match_file(path)
            test = patterns.file_test(path[: -len(parts[-1])])  # for the file's folder
            assert (test is not None and test(path, parts[-1]) is not None) == expected, path


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_walk_leaves_out_what_git_ignores(tmp_path):
    """The walk's semantics are git's: an excluded folder is left out whole."""
    lines = ["drafts/", "*_small.jpg", "!keep_small.jpg", "/top/*", "!/top/in.jpg",
             "a/**/c.jpg", "**/raw/", "old/", "!old/back.jpg", "x?.jpg", "[ab].jpg"]  # fmt: skip
    for path in ["drafts/a.jpg", "q/drafts/b.jpg", "p_small.jpg", "keep_small.jpg",
                 "q/keep_small.jpg", "top/in.jpg", "top/out.jpg", "top/sub/s.jpg",
                 "q/top/t.jpg", "a/c.jpg", "a/q/r/c.jpg", "a/q/d.jpg", "q/raw/x.jpg",
                 "raw/y.jpg", "old/back.jpg", "old/gone.jpg", "x1.jpg", "x12.jpg", "a.jpg",
                 "c.jpg", "q/b.jpg"]:  # fmt: skip
        write_photo(tmp_path / "album" / path)
    (tmp_path / "album" / IGNORE_FILE).write_text("\n".join(lines) + "\n")
    (tmp_path / "album" / ".gitignore").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path / "album", check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=tmp_path / "album", capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip

    walk = FolderWalk(tmp_path / "album", frozenset({".jpg"}), exclusions=Exclusions())
    found = [item.path for item in walk if not isinstance(item, Excluded)]

    assert sorted(found) == sorted(path for path in listed if path.endswith(".jpg"))
