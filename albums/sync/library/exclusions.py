"""What a sync leaves out of an album, and why (issue 15).

Three sources, asked by the folder walk as it reaches each entry, before the entry is
followed, stat'ed or read:

- BUILT_IN_FOLDERS and BUILT_IN_FILES: the clutter NAS and operating systems leave beside
  photos (Synology's `@eaDir` thumbnails, recycle bins, snapshots, Windows' `Thumbs.db`),
  matched by name at any depth, whatever the case. Always on; a pattern cannot bring them
  back. Hidden entries (a leading dot: macOS's `._*`, `.Spotlight-V100`, QNAP's
  `.@__thumb`) are skipped by the walk before any of this.
- ALBUMS_EXCLUDE, then the album's own `.photosite-ignore`: gitignore-style patterns
  relative to the album folder, matched by pathspec. The file comes last, so its `!`
  lines can bring back what the setting left out.

As in git, an excluded folder is left out whole: it is not listed, and nothing under it can
be brought back by a later `!` pattern (exclude `folder/*` and re-include
`!folder/keep.jpg` instead).

Cost: the walk asks before it follows, stat's or reads anything, and asks of a file only
when something can leave a file with its extension out; albums.sync.patterns keeps the
asking cheap, and bench/walk.py measures it.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ... import conf
from ...exceptions import ExclusionsInvalid
from .patterns import PatternSet

IGNORE_FILE = ".photosite-ignore"
MAX_IGNORE_FILE_BYTES = 1024 * 1024

# Folders: name -> what leaves them there. Matched case-insensitively at any depth.
BUILT_IN_FOLDERS = {
    "@eaDir": "Synology thumbnails and metadata",
    "#recycle": "Synology recycle bin",
    "#snapshot": "Synology snapshots",
    "@tmp": "Synology temporary files",
    "@sharebin": "Synology recycle bin",
    "@Recycle": "QNAP recycle bin",
    "@Recently-Snapshot": "QNAP snapshots",
    "@__thumb": "QNAP thumbnails",
    ".@__thumb": "QNAP thumbnails",
    ".@__qini": "QNAP metadata",
    "$RECYCLE.BIN": "Windows recycle bin",
    "RECYCLER": "Windows recycle bin",
    "System Volume Information": "Windows system folder",
    ".Spotlight-V100": "macOS search index",
    ".Trashes": "macOS trash",
    ".fseventsd": "macOS file-system events",
    ".TemporaryItems": "macOS temporary files",
    ".AppleDouble": "macOS resource forks",
    "lost+found": "file-system recovery",
}
# Files: name -> what leaves them there. They matter only if their extension is made a
# photo's (ALBUMS_PHOTO_EXTENSIONS); macOS's `._*` and `.DS_Store` are hidden anyway.
BUILT_IN_FILES = {
    "Thumbs.db": "Windows thumbnails",
    "ehthumbs.db": "Windows thumbnails",
    "ehthumbs_vista.db": "Windows thumbnails",
    "desktop.ini": "Windows folder settings",
    "Picasa.ini": "Picasa metadata",
    ".picasa.ini": "Picasa metadata",
    ".DS_Store": "macOS folder settings",
    "Icon\r": "macOS folder icon",
}
_FOLDERS = {name.casefold(): what for name, what in BUILT_IN_FOLDERS.items()}
_FILES = {name.casefold(): what for name, what in BUILT_IN_FILES.items()}

IGNORE_FILE_INVALID = "The {file} of album {album!r} cannot be used: {problem} Nothing was changed."
NOT_A_FILE = "it must be a regular file, not a link or a folder."
TOO_LARGE = f"it is larger than {MAX_IGNORE_FILE_BYTES // 1024 // 1024} MiB."
NOT_TEXT = "it is not UTF-8 text."
UNREADABLE = "it cannot be read ({cause})."
BAD_LINE = "line {number}: {problem}"


@dataclass(frozen=True, slots=True)
class Excluded:
    """A file or folder the walk left out. A folder's path ends with "/" (where its
    contents sort), and nothing under it was read."""

    path: str
    reason: str  # "built-in: Synology thumbnails and metadata", "ALBUMS_EXCLUDE: drafts/"
    folder: bool


def built_in_folder(name: str) -> str | None:
    """What leaves a folder named `name` (built-in clutter), or None."""
    return _FOLDERS.get(name.casefold())


class Exclusions:
    """The exclusions of one album for one run: the built-in names, the `patterns` of
    ALBUMS_EXCLUDE, and the album's .photosite-ignore, read when the walk finds it."""

    def __init__(self, patterns: Sequence[str] = (), *, album_name: str = ""):
        self.album_name = album_name
        self._lines = [(pattern, "ALBUMS_EXCLUDE") for pattern in patterns]
        self.patterns = PatternSet(self._lines)
        self._read_ignore_file = False
        self._built_in_files = None  # (extensions, the built-in files with one of them)

    def read_ignore_file(self, entry: os.DirEntry) -> None:
        """Add the patterns of the album's .photosite-ignore (`entry`, found in the album
        folder's listing), after ALBUMS_EXCLUDE's; read once per run. ExclusionsInvalid
        when it cannot be used."""
        if self._read_ignore_file:
            return
        self._read_ignore_file = True
        for number, line in enumerate(self._ignore_text(entry).splitlines(), start=1):
            if problem := conf.pattern_problem(line):
                self._invalid(entry, BAD_LINE.format(number=number, problem=problem))
            self._lines.append((line, f"{IGNORE_FILE} line {number}"))
        self.patterns = PatternSet(self._lines)

    def folder(self, path: str, name: str) -> str | None:
        """Why the folder at `path` (relative to the album folder) is left out, or None."""
        if what := _FOLDERS.get(name.casefold()):
            return f"built-in: {what}"
        return self.patterns.folder(path, name)

    def file_test(
        self, folder: str, extensions: frozenset[str]
    ) -> Callable[[str, str], str | None] | None:
        """What the walk asks of each photo file (path, name) directly in `folder` ("" for
        the album folder, else "a/b/"): why it is left out, or None. None instead of a
        function when nothing can leave out a file there with one of `extensions`, so that
        the walk asks nothing at all of those files."""
        if self._built_in_files is None or self._built_in_files[0] is not extensions:
            self._built_in_files = (extensions, _built_in_files(extensions))
        built_in = self._built_in_files[1]
        patterns = self.patterns.file_test(folder)
        if not built_in:
            return patterns

        def test(path: str, name: str) -> str | None:
            if what := built_in.get(name.casefold()):
                return f"built-in: {what}"
            return patterns(path, name) if patterns is not None else None

        return test

    def covers(self, path: str) -> str | None:
        """Why a file at `path` (relative to the album folder) would be left out by the walk,
        or None: for a bucket object whose file is not there, which must not be taken for
        untracked when the sync leaves its path out. Hidden names count (the walk skips
        them before any exclusion), and so does any file a folder of its path leaves out."""
        parts = path.split("/")
        if any(part.startswith(".") for part in parts):
            return "hidden"
        for depth in range(1, len(parts)):
            if why := self.folder("/".join(parts[:depth]), parts[depth - 1]):
                return why
        folder = "".join(part + "/" for part in parts[:-1])
        test = self.file_test(folder, conf.photo_extensions())
        return test(path, parts[-1]) if test is not None else None

    def _ignore_text(self, entry: os.DirEntry) -> str:
        try:
            if not entry.is_file(follow_symlinks=False):
                self._invalid(entry, NOT_A_FILE)
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as file:
                data = file.read(MAX_IGNORE_FILE_BYTES + 1)
        except OSError as exc:
            self._invalid(entry, UNREADABLE.format(cause=exc.strerror or exc))
        if len(data) > MAX_IGNORE_FILE_BYTES:
            self._invalid(entry, TOO_LARGE)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self._invalid(entry, NOT_TEXT)

    def _invalid(self, entry: os.DirEntry, problem: str):
        raise ExclusionsInvalid(
            IGNORE_FILE_INVALID.format(
                file=Path(entry.path), album=self.album_name, problem=problem
            )
        )


def _built_in_files(extensions: frozenset[str]) -> dict[str, str]:
    return {name: what for name, what in _FILES.items() if os.path.splitext(name)[1] in extensions}


class ExcludedSpan:
    """Follows the entries of a merge in path order and says which exclusion covers each:
    a left-out file or folder itself, or (for a recorded photo or a bucket object the walk
    did not find) the left-out folder it lies under. The walk does not descend into an
    excluded folder, so every path under it comes right after its marker."""

    def __init__(self):
        self._folder: Excluded | None = None

    def covering(self, path: str, local) -> Excluded | None:
        if isinstance(local, Excluded):
            if local.folder:
                self._folder = local
            return local
        if local is None and self._folder is not None and path.startswith(self._folder.path):
            return self._folder
        return None
