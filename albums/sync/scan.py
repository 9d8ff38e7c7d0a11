"""Walk an album folder and list its photo files, without reading any of them."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .result import FileFailure

logger = logging.getLogger("albums")


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # relative to the album folder, forward slashes, exactly as on disk
    abspath: str
    size: int
    mtime_ns: int


def scan_folder(
    folder: Path, extensions: frozenset[str]
) -> tuple[list[LocalFile], list[FileFailure]]:
    """Every photo under `folder`, recursively, sorted by path, and what could not be read.

    Hidden files and folders (a leading dot) and files whose extension is not a photo's
    are skipped. Symlinks are followed only while they stay inside the album folder, and a
    folder reached twice through links is walked once, so a link loop ends.
    """
    root = os.path.realpath(folder)
    files: list[LocalFile] = []
    failures: list[FileFailure] = []
    visited = {root}
    pending = [str(folder)]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                entries = list(entries)
        except OSError as exc:
            if directory == str(folder):
                raise  # the album folder itself: the caller stops the run
            failures.append(FileFailure(_display(directory, folder), _os_reason(exc)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                found = _examine(entry, root, extensions, visited)
            except OSError as exc:  # vanished or unreadable between listing and stat
                failures.append(FileFailure(_display(entry.path, folder), _os_reason(exc)))
                continue
            if found == "dir":
                pending.append(entry.path)
            elif found is not None:
                relative = os.path.relpath(entry.path, folder).replace(os.sep, "/")
                files.append(LocalFile(relative, entry.path, found.st_size, found.st_mtime_ns))
    files.sort(key=lambda f: f.path)
    return files, failures


def _examine(entry: os.DirEntry, root: str, extensions, visited: set[str]):
    """ "dir" for a folder to walk, a stat result for a photo, None to skip."""
    if entry.is_symlink():
        target = os.path.realpath(entry.path)
        if not _is_inside(target, root):
            logger.warning("Skipping link that points outside the album: %s", entry.path)
            return None
    if entry.is_dir():  # follows links, which are known to stay inside by now
        real = os.path.realpath(entry.path)
        if real in visited:
            return None
        visited.add(real)
        return "dir"
    if os.path.splitext(entry.name)[1].lower() not in extensions:
        return None
    if not entry.is_file():
        return None
    return entry.stat()


def _is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _display(path: str, folder: Path) -> str:
    return printable(os.path.relpath(path, folder).replace(os.sep, "/"))


def printable(path: str) -> str:
    """`path` as text that can be logged and stored, even if the name is not UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__
