"""The album's folder: found and safe before a run changes anything, and its census taken.

Every check that stops a run before its first request lives here: PHOTOS_ROOT and the album
folder exist (an unmounted disk is never "every photo deleted"), the folder stays inside
PHOTOS_ROOT, and a folder that suddenly holds no photos is refused.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from django.core.exceptions import ValidationError

from ... import conf
from ...exceptions import AlbumFolderEmpty, AlbumFolderMissing, AlbumFolderUnsafe
from ...models import Album, validate_album_folder
from .exclusions import ExcludedSpan, Exclusions
from .merge import KnownPhoto, Vanished, merge_by_path
from .scan import FolderWalk

ROOT_MISSING = "PHOTOS_ROOT ({root}) does not exist or is not a folder; is the disk mounted? Nothing was changed."
FOLDER_MISSING = "The folder of album {album!r} ({folder}) does not exist or is not a folder; is the disk mounted? Nothing was changed."
FOLDER_UNREADABLE = (
    "The folder of album {album!r} ({folder}) cannot be read: {cause}. Nothing was changed."
)
FOLDER_UNSAFE = (
    "The folder of album {album!r} ({folder!r}) is outside PHOTOS_ROOT; nothing was synced."
)
RANGE_PHOTOS = 1000  # a page of the bucket's listing
FOLDER_EMPTY = (
    "The folder of album {album!r} ({folder}) holds no photos, but {count} are recorded; "
    "refusing to treat them all as deleted. Nothing was changed. If the photos really are "
    "gone, delete the album's photos in the admin."
)


def photos_root() -> Path:
    """PHOTOS_ROOT, which must exist: an unmounted disk stops everything, changing nothing."""
    root = conf.photos_root()
    if not root.is_dir():
        raise AlbumFolderMissing(ROOT_MISSING.format(root=root))
    return root


class AlbumFolder(NamedTuple):
    path: Path  # PHOTOS_ROOT / the album's folder, as the album names it
    real: str  # the same with links resolved, inside which the walk keeps to links


def album_folder(album: Album, *, root: Path | None = None) -> AlbumFolder:
    """The album's folder, which must exist and stay inside PHOTOS_ROOT. `root` is
    `photos_root()`, when a run over many albums has it already: resolving a path costs a
    system call for each of its parts, and the main thread's calls wait for the workers'."""
    root = root or photos_root()
    try:
        real = validate_album_folder(album.folder, root=root)
    except ValidationError:
        raise AlbumFolderUnsafe(
            FOLDER_UNSAFE.format(album=album.name, folder=album.folder)
        ) from None
    folder = root / album.folder
    if not real.is_dir():
        raise AlbumFolderMissing(FOLDER_MISSING.format(album=album.name, folder=folder))
    return AlbumFolder(folder, str(real))


def readable(walk: Iterable, album: Album, folder: Path) -> Iterator:
    """The walk's items, with the album folder itself turning unreadable as a clear error
    (a folder under it that cannot be read is a failure the walk records)."""
    try:
        yield from walk
    except OSError as exc:
        raise AlbumFolderMissing(
            FOLDER_UNREADABLE.format(album=album.name, folder=folder, cause=exc.strerror)
        ) from exc


@dataclass(slots=True)
class Census:
    """What a run's first, quick pass found."""

    photos: int = 0  # on disk
    new: int = 0  # on disk, not recorded
    recorded: int = 0
    orphaned: int = 0  # recorded, gone from disk
    excluded_recorded: int = 0  # recorded, now left out by an exclusion
    unreadable: int = 0  # folders and files the walk could not read
    vanished: list[Vanished] = field(default_factory=list)  # orphans known by content
    # Every RANGE_PHOTOS-th recorded path: where the bucket's listing of the album can be
    # cut into ranges of about a page each, listed side by side (BucketPool.listing).
    boundaries: list[str] = field(default_factory=list)


def take_census(
    album: Album,
    folder: AlbumFolder,
    recorded: Iterable[tuple[str, KnownPhoto]],
    exclusions: Exclusions | None = None,
) -> Census:
    """A quick first pass: the folder without a stat of each file, against the recorded
    photos. It gives the progress total, the count of new photos, the counts of orphans and
    of recorded photos now excluded, so that too many deletions stop the run before it
    changes anything, and the orphans known by their content, which a new file may turn out
    to be (a move). It holds no more than the main pass does, and the orphans. A folder that
    holds no photo while photos are recorded (and not excluded) raises AlbumFolderEmpty."""
    walk = FolderWalk(folder.path, conf.photo_extensions(), exclusions=exclusions, real=folder.real)
    census = Census()
    excluded = ExcludedSpan()
    last_recorded = None
    for entry in merge_by_path(readable(walk.paths(), album, folder.path), recorded):
        if entry.known:
            census.recorded += 1
            last_recorded = entry.path
            if census.recorded % RANGE_PHOTOS == 0:
                census.boundaries.append(entry.path)
        if excluded.covering(entry.path, entry.local) is not None:
            census.excluded_recorded += bool(entry.known)
            continue
        if not entry.local:
            if not walk.may_hide(entry.path):
                census.orphaned += 1
                _note_vanished(census, album, entry.known)
            continue
        census.photos += 1
        census.new += not entry.known
    if census.boundaries and census.boundaries[-1] == last_recorded:
        census.boundaries.pop()  # a range after the last photo would hold nothing
    census.unreadable = len(walk.failures)
    if not census.photos and census.orphaned and not census.unreadable:
        raise AlbumFolderEmpty(
            FOLDER_EMPTY.format(album=album.name, folder=folder.path, count=census.orphaned)
        )
    return census


def _note_vanished(census: Census, album: Album, photo: KnownPhoto) -> None:
    if photo.md5:
        census.vanished.append(
            Vanished(photo.id, album.pk, photo.path, photo.key, photo.size, photo.md5)
        )
