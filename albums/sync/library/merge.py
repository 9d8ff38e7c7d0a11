"""Line up an album's three views (its folder, the database, the bucket) path by path.

Each view arrives as a stream sorted by path, so one pass over the three, like a merge
sort's last step, pairs every file with its database row and its bucket object while
holding only the current item of each: memory does not grow with the album.

Going wrong here would be costly (a path seen out of order would look new in one view
and gone in another), so every stream is checked as it is read, and a stream out of order
stops the run before anything is removed.
"""

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from ...exceptions import SyncError
from ...storage import RemoteObject
from .exclusions import Excluded
from .scan import LocalFile, printable


class OutOfOrder(SyncError):
    """A view of the album did not come in path order."""


OUT_OF_ORDER = (
    "{source} returned {path!r} after {previous!r}, out of path order, so the album cannot be "
    "compared safely. Nothing was removed. {hint}"
)
HINTS = {
    "the database": "Run `manage.py migrate`: the photo path column needs a binary collation.",
    "the bucket listing": "The storage must list keys in UTF-8 binary order, as S3 does.",
}


@dataclass(frozen=True, slots=True)
class KnownPhoto:
    """A photo as the database recorded it."""

    path: str
    id: int
    size: int
    mtime_ns: int
    md5: str = ""  # of the bytes uploaded; "" if recorded before checksums were kept
    etag: str = ""  # the object's ETag when it was uploaded
    key: str = ""
    renditions: str = ""  # the settings its web renditions were made (or tried) with
    rendition_problem: str = ""  # why they could not be made


@dataclass(frozen=True, slots=True)
class Vanished:
    """A recorded photo whose file is gone from where it was, known by its content; or,
    `departed`, one an earlier run forgot whose object stays (a DepartedPhoto, by its id)."""

    id: int
    album_id: int
    path: str
    key: str
    size: int
    md5: str
    departed: bool = False


@dataclass(slots=True)
class Entry:
    """One path and what each view holds under it (None: nothing, or not asked)."""

    path: str
    local: LocalFile | Excluded | None = None
    known: KnownPhoto | None = None
    remote: RemoteObject | None = None


def merge_by_path(
    local: Iterable[tuple[str, LocalFile]],
    known: Iterable[tuple[str, KnownPhoto]],
    remote: Iterable[tuple[str, RemoteObject]] = (),
) -> Iterator[Entry]:
    """One Entry per path found in any view, in path order.

    Each view is a stream of (path, what it holds there), paths relative to the album. Every
    stream must be strictly increasing; OutOfOrder is raised at the first item that is not.
    """
    views = (
        _in_order(local, "the album folder", view=0),
        _in_order(known, "the database", view=1),
        _in_order(remote, "the bucket listing", view=2),
    )
    # (path, view) pairs are unique once each stream is strictly increasing, so the merge
    # never compares the items themselves.
    for path, group in groupby(heapq.merge(*views), key=itemgetter(0)):
        held = [None, None, None]
        for _, view, item in group:
            held[view] = item
        yield Entry(path, *held)


def _in_order(stream: Iterable[tuple], source: str, *, view: int) -> Iterator[tuple]:
    """(path, view, item) for each (path, item), checking that paths increase."""
    previous = None
    for path, item in stream:
        if previous is not None and path <= previous:
            raise OutOfOrder(
                OUT_OF_ORDER.format(
                    source=source.capitalize(),
                    path=printable(path),
                    previous=printable(previous),
                    hint=HINTS.get(source, ""),
                ).strip()
            )
        previous = path
        yield path, view, item
