"""Walk an album folder and list its photo files in path order, without reading any of them.

The walk streams: it holds one folder's entries at a time, never the whole album, so that
the engine can merge it with the database and the bucket listing (both in the same order)
in memory that does not grow with the album.
"""

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from ..outcome.result import FileFailure
from .exclusions import IGNORE_FILE, Excluded, Exclusions
from .media import photo_extension

logger = logging.getLogger("albums")


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # relative to the album folder, forward slashes, exactly as on disk
    abspath: str
    size: int
    mtime_ns: int


class FolderWalk:
    """Every photo under `folder`, recursively, in the order of their relative paths.

    "Order" is Python's string order, which is Unicode code point order: the order of S3's
    listings (UTF-8 bytes) and of the database's path index (binary collation). Each folder
    is read and sorted on its own, and a subfolder sorts as its name plus "/", which puts
    every file under it exactly where its full path sorts ("a.jpg" < "a/b.jpg" < "a0.jpg").

    Hidden files and folders (a leading dot) and files whose extension is not a photo's
    are skipped. Symlinks are followed only while they stay inside the album folder, and a
    folder reached twice through links is walked once, so a link loop ends.

    What `exclusions` leave out comes out of the walk as an `Excluded` marker in its place
    (a folder's marker where its contents would sort, "name/"), decided from its name and
    path alone: an excluded folder is neither listed nor followed, an excluded file not
    stat'ed. The album's .photosite-ignore is read when the album folder's listing shows one.

    Folders and files that cannot be read are added to `failures` (and passed to
    `on_failure`) as the walk reaches them, and so before any path under them would have
    come out of the walk.
    """

    def __init__(
        self,
        folder: Path,
        extensions: frozenset[str],
        on_failure: Callable[[FileFailure], None] | None = None,
        exclusions: Exclusions | None = None,
        real: str | None = None,
    ):
        """`real` is `folder` with its links resolved, when the caller has it already."""
        self.folder = folder
        self.real = real
        self.extensions = extensions
        self.on_failure = on_failure
        self.exclusions = exclusions
        self.failures: list[FileFailure] = []
        self._unseen: tuple[str, ...] = ()  # unreadable folders so far, as path prefixes

    def may_hide(self, path: str) -> bool:
        """Whether `path` lies under a folder the walk could not read, where it may well
        exist. Complete for `path` once the walk has gone past it."""
        if len(self._unseen) != len(self.failures):
            # Every failure counts (a file's own "x.jpg/" prefix matches nothing), so the
            # tuple is rebuilt only when the walk has found a new one.
            self._unseen = tuple(failure.path.rstrip("/") + "/" for failure in self.failures)
        return bool(self._unseen) and path.startswith(self._unseen)

    def __iter__(self) -> Iterator[LocalFile | Excluded]:
        """The photos found, stat taken as each folder is read, and what was left out. It
        raises OSError if the album folder itself cannot be read."""
        for relative, abspath, found in self._walk(stat=True):
            if isinstance(found, Excluded):
                yield found
            else:
                yield LocalFile(relative, abspath, found.st_size, found.st_mtime_ns)

    def paths(self) -> Iterator[tuple[str, bool | Excluded]]:
        """The same walk without a stat of each file (only folders are read), as (path,
        True) for a photo and (path, Excluded) for what was left out. It raises OSError if
        the album folder itself cannot be read."""
        for relative, _, found in self._walk(stat=False):
            yield relative, found

    def _walk(self, *, stat: bool):
        root = self.real or os.path.realpath(self.folder)
        visited = {root}
        # A stack of sorted folder listings, each entry (sort key, relative path, entry, kind).
        stack = [iter(self._read_folder(str(self.folder), "", root, visited, stat))]
        while stack:
            try:
                _, relative, entry, found = next(stack[-1])
            except StopIteration:
                stack.pop()
                continue
            if found == "dir":
                stack.append(iter(self._read_folder(entry.path, relative, root, visited, stat)))
            else:
                yield relative, entry.path, found

    def _read_folder(self, directory, relative, root, visited, stat):
        try:
            with os.scandir(directory) as entries:
                entries = list(entries)
        except OSError as exc:
            if not relative:
                raise  # the album folder itself: the caller stops the run
            self._failed(relative, exc)
            return []
        file_test = None  # what the exclusions ask of each photo file in this folder
        if self.exclusions is not None:
            if not relative:
                for entry in entries:
                    if entry.name == IGNORE_FILE:
                        self.exclusions.read_ignore_file(entry)
            folder = f"{relative}/" if relative else ""
            file_test = self.exclusions.file_test(folder, self.extensions)
        listing = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = f"{relative}/{entry.name}" if relative else entry.name
            try:
                found = self._examine(entry, path, root, visited, stat, file_test)
            except OSError as exc:  # vanished or unreadable between listing and stat
                self._failed(path, exc)
                continue
            if found == "dir":
                listing.append((path + "/", path, entry, found))
            elif isinstance(found, Excluded) and found.folder:
                listing.append((found.path, found.path, entry, found))
            elif found is not None:
                listing.append((path, path, entry, found))
        listing.sort(key=itemgetter(0))
        return listing

    def _failed(self, path: str, exc: OSError) -> None:
        failure = FileFailure(printable(path), _os_reason(exc))
        self.failures.append(failure)
        if self.on_failure is not None:
            self.on_failure(failure)

    def _examine(
        self,
        entry: os.DirEntry,
        path: str,
        root: str,
        visited: set[str],
        stat: bool,
        file_test: Callable[[str, str], str | None] | None,
    ):
        """ "dir" for a folder to walk, a stat result (or True) for a photo, an Excluded
        marker for what the exclusions leave out, None to skip."""
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if not _is_inside(target, root):
                logger.warning("Skipping link that points outside the album: %s", entry.path)
                return None
        if entry.is_dir():  # follows links, which are known to stay inside by now
            if self.exclusions is not None and (why := self.exclusions.folder(path, entry.name)):
                return Excluded(path + "/", why, folder=True)
            real = os.path.realpath(entry.path)
            if real in visited:
                return None
            visited.add(real)
            return "dir"
        if photo_extension(entry.name) not in self.extensions:
            return None
        if file_test is not None and (why := file_test(path, entry.name)):
            return Excluded(path, why, folder=False)
        if not entry.is_file():
            return None
        return entry.stat() if stat else True


def _is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def printable(path: str) -> str:
    """`path` as text that can be logged and stored, even if the name is not UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__
