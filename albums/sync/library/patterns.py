"""The user's gitignore-style patterns (ALBUMS_EXCLUDE, .photosite-ignore), matched by pathspec
at the cost of a string test for most paths.

pathspec decides, and names the pattern; it is asked only about the paths that pass a quick
test, which no path a pattern matches can fail:

- a pattern without a slash matches a name wherever it is, and every name it matches ends
  with the plain text after its last wildcard (`*_small.jpg`: "_small.jpg", `drafts/`:
  "drafts"): one `str.endswith` for all of them;
- a pattern with a slash is anchored at the album folder, and every path it matches starts
  with the plain text before its first wildcard (`Export/**`: "Export/"): one
  `str.startswith` for all of them; after a leading `**/` that text may start at any
  folder (`**/raw/*.jpg`: "raw/" somewhere in the path), so it is looked for with `in`
  before the pattern's regex runs;
- any other (`IMG_*`) runs its own regex (pathspec's).

A `!` pattern cannot leave anything out, so it is never a reason to ask. A `folder/` pattern
is not tested on files: a file the walk reaches lies in folders the patterns did not leave
out, and the file itself is no folder. The files of a folder are tested only with what can
match a name in that folder (`/Private/*.jpg` tests no file outside `Private/`), so a
folder's files often need no test at all. bench/walk.py measures what all this costs.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

# Characters after which a pattern's text is no longer plain: wildcards, bracket
# expressions and the escape character.
_NOT_PLAIN = re.compile(r"[*?\[\]\\]")


@dataclass(frozen=True, slots=True)
class _QuickTest:
    """Passed by every path (and name) one of the patterns it was made from can match."""

    tails: tuple[str, ...] = ()  # a matching name ends with one of these
    heads: tuple[str, ...] = ()  # a matching path starts with one of these
    name_regexes: tuple[re.Pattern, ...] = ()
    path_regexes: tuple[tuple[str, re.Pattern], ...] = ()  # (text a matching path holds, regex)

    def __bool__(self) -> bool:
        return bool(self.tails or self.heads or self.name_regexes or self.path_regexes)

    def then(self, ask: Callable[[str], str | None]) -> Callable[[str, str], str | None]:
        """A function of (path, name): `ask(path)` if they pass, else None. One call of it
        is all a path that does not pass costs."""
        tails, heads = self.tails, self.heads
        name_regexes, path_regexes = self.name_regexes, self.path_regexes
        if not (heads or name_regexes or path_regexes):  # the usual case: `*_small.jpg`

            def test_name(path: str, name: str) -> str | None:
                return ask(path) if name.endswith(tails) else None

            return test_name

        def test(path: str, name: str) -> str | None:
            if tails and name.endswith(tails):
                return ask(path)
            if heads and path.startswith(heads):
                return ask(path)
            for regex in name_regexes:
                if regex.match(name):
                    return ask(path)
            for needle, regex in path_regexes:
                if needle in path and regex.match(path):
                    return ask(path)
            return None

        return test

    @classmethod
    def of(cls, patterns: list[tuple[str, re.Pattern]]) -> "_QuickTest":
        """The test for (pattern text, pathspec's regex) pairs of patterns that exclude."""
        tails, heads, name_regexes, path_regexes = [], [], [], []
        for text, regex in patterns:
            body = text.rstrip(" ").removesuffix("/")  # gitignore drops trailing spaces
            floating = body.removeprefix("**/")  # "**/x" is "x" at any depth
            if "/" not in floating:  # matches a name at any depth
                if tail := floating[_last_wildcard_end(floating) :]:
                    tails.append(tail)
                else:
                    name_regexes.append(regex)
            elif floating != body:  # "**/x/y": "x/y" from any folder down
                path_regexes.append((floating[: _first_wildcard(floating)], regex))
            elif head := body.removeprefix("/")[: _first_wildcard(body.removeprefix("/"))]:
                heads.append(head)  # anchored at the album folder
            else:
                path_regexes.append(("", regex))
        return cls(tuple(tails), tuple(heads), tuple(name_regexes), tuple(path_regexes))

    def within(self, folder: str) -> "_QuickTest":
        """The part of this test a file directly in `folder` ("" or "a/b/") can pass: its
        path is `folder` + a name without a slash."""
        if not (self.heads or self.path_regexes):
            return self  # the same in every folder
        return _QuickTest(
            self.tails,
            tuple(
                head
                for head in self.heads
                if folder.startswith(head)
                or (head.startswith(folder) and "/" not in head[len(folder) :])
            ),
            self.name_regexes,
            tuple(
                (needle, regex)
                for needle, regex in self.path_regexes
                if "/" not in needle or needle[: needle.rindex("/") + 1] in folder
            ),
        )


class PatternSet:
    """gitignore-style `lines` relative to an album folder, each with where it came from
    ("ALBUMS_EXCLUDE", ".photosite-ignore line 3"), in order: a later `!` line brings back
    what an earlier one left out."""

    def __init__(self, lines: list[tuple[str, str]]):
        self._lines = [(line, source) for line, source in lines if line]  # as pathspec counts
        texts = [line for line, _ in self._lines]
        self._spec = GitIgnoreSpec.from_lines(texts, backend="simple")
        excluding = [
            (text, pattern.regex)
            for text, pattern in zip(texts, self._spec.patterns, strict=True)
            if pattern.include
        ]
        self.file_tests = _QuickTest.of(  # the most a file is tested with
            [(text, regex) for text, regex in excluding if not text.rstrip(" ").endswith("/")]
        )
        self._folder = _QuickTest.of(excluding).then(self._why)
        self._tests = {}  # _QuickTest -> its function, made once
        # What was asked (bench/walk.py prints it): folders, folders whose files needed a
        # test, and paths that passed a quick test.
        self.folders_tested = self.folders_with_file_tests = self.asked_pathspec = 0

    @property
    def tests_files(self) -> bool:
        """Whether any pattern can leave a file out by itself."""
        return bool(self.file_tests)

    def file_test(self, folder: str) -> Callable[[str, str], str | None] | None:
        """For the files directly in `folder` ("" for the album folder, else "a/b/"): a
        function of a file's (path, name) that gives the pattern leaving it out, as "source:
        pattern", or None; None instead when no pattern can leave out a file there."""
        quick = self.file_tests.within(folder)
        if not quick:
            return None
        self.folders_with_file_tests += 1
        # Most folders get the same test (the name patterns alone): made once, not per folder.
        if (test := self._tests.get(quick)) is None:
            test = self._tests[quick] = quick.then(self._why)
        return test

    def folder(self, path: str, name: str) -> str | None:
        """The pattern that leaves out the folder at `path` (relative to the album folder,
        named `name`), as "source: pattern", or None."""
        self.folders_tested += 1
        return self._folder(path + "/", name)

    def _why(self, path: str) -> str | None:
        self.asked_pathspec += 1
        result = self._spec.check_file(path)
        if not result.include:
            return None
        line, source = self._lines[result.index]
        return f"{source}: {line}"


def _last_wildcard_end(text: str) -> int:
    return max((found.end() for found in _NOT_PLAIN.finditer(text)), default=0)


def _first_wildcard(text: str) -> int:
    found = _NOT_PLAIN.search(text)
    return found.start() if found else len(text)
