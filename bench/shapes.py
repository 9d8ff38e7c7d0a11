"""The datasets bench/run.py measures (`--shape`), and the targets each is held to.

- `single` (default): issue 4's one album, `--photos` x `--size-kb` (+ `--large`).
- `albums-AxP`: issue 11's many albums: A event folders under PHOTOS_ROOT, P photos each
  (`--size-kb`, default 20), synced as a whole tree (`albums-500x20`, `albums-2000x5`).
- `sizes-2mb`: issue 11's real sizes: one album of 200 x 2 MiB + 5 x 12 MiB.
- `sizes-raw`: one album of 20 RAW-sized files, 25 to 60 MiB.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import album as datasets
import report
from album import Album

ALL_CONTENDERS = ("floor", "sync_albums", "renditions", "seed", "aws", "rclone")
# sync_albums making web renditions too (issue 26) runs when asked for with --only.
SINGLE_CONTENDERS = ("floor", "sync_albums", "seed", "aws", "rclone")
# Issue 11 compares with aws s3 sync, rclone and the floor; the seed design is issue 4's
# baseline (a HEAD per photo) and runs there only when asked for with --only.
ISSUE_11_CONTENDERS = ("floor", "sync_albums", "aws", "rclone")
RAW_FILES, RAW_LOW_MB, RAW_HIGH_MB = 20, 25, 60


@dataclass(frozen=True)
class Shape:
    name: str
    issue: int  # whose targets
    contenders: tuple[str, ...]  # the default for --only
    results_file: str  # the default for --out, in bench/
    make: Callable[[Path, int], Album]  # (workdir, size_kb) -> the dataset
    targets: Callable  # (results, album, floor name) -> [report.Target]

    def describe(self, album: Album, args) -> str:
        """The dataset in one line of the results file."""
        mib = album.total_bytes / datasets.MIB
        if self.name == "single":
            return (f"Album: {album.count:,} files, {mib:.1f} MiB (mean {args.size_kb} KB, "
                    f"{args.large} over the multipart threshold)")  # fmt: skip
        large = sum(size >= datasets.MULTIPART_THRESHOLD for size in album.sizes.values())
        layout = (f"{album.albums:,} albums (a folder per event under PHOTOS_ROOT, synced as "
                  "one tree)" if album.albums > 1 else "one album")  # fmt: skip
        low, high = min(album.sizes.values()), max(album.sizes.values())
        return (f"Shape `{self.name}`: {layout}, {album.count:,} files, {mib:.1f} MiB "
                f"(each {_size(low)} to {_size(high)}; {large} over the 8 MiB multipart "
                "threshold)")  # fmt: skip


def _size(size: int) -> str:
    if size >= datasets.MIB:
        return f"{size / datasets.MIB:.1f} MiB"
    return f"{size / 1024:.1f} KiB"


def _single_targets(results, album: Album, floor_name: str):
    return report.targets(results, album.count, floor_name)


def _many_albums(albums: int, photos: int) -> Callable[[Path, int], Album]:
    def make(workdir: Path, size_kb: int) -> Album:
        home = workdir / f"albums-{albums}x{photos}-{size_kb}k"
        sizes = datasets.albums_layout(albums, photos, size_kb)
        return datasets.ensure(home, sizes, album_folder=None, albums=albums)

    return make


def _sizes_2mb(workdir: Path, size_kb: int) -> Album:
    sizes = datasets.sizes_layout(200, 2, 5, 12)
    return datasets.ensure(workdir / "sizes-2mb", sizes, album_folder=datasets.ALBUM_FOLDER,
                           albums=1)  # fmt: skip


def _sizes_raw(workdir: Path, size_kb: int) -> Album:
    sizes = datasets.raw_layout(RAW_FILES, RAW_LOW_MB, RAW_HIGH_MB)
    return datasets.ensure(workdir / "sizes-raw", sizes, album_folder=datasets.ALBUM_FOLDER,
                           albums=1)  # fmt: skip


FIXED = {
    "sizes-2mb": Shape("sizes-2mb", 11, ISSUE_11_CONTENDERS, "RESULTS-sizes-2mb.md",
                       _sizes_2mb, report.real_size_targets),
    "sizes-raw": Shape("sizes-raw", 11, ISSUE_11_CONTENDERS, "RESULTS-sizes-raw.md",
                       _sizes_raw, report.real_size_targets),
}  # fmt: skip
MANY_ALBUMS = re.compile(r"albums-(?P<albums>[1-9]\d*)x(?P<photos>[1-9]\d*)")
NAMES = "single, albums-AxP (e.g. albums-500x20, albums-2000x5), " + ", ".join(FIXED)


def get(name: str, single: Callable[[Path, int], Album]) -> Shape:
    """The shape called `name`; `single` makes the single album from the command line."""
    if name == "single":
        return Shape("single", 4, SINGLE_CONTENDERS, "RESULTS.md", single, _single_targets)
    if name in FIXED:
        return FIXED[name]
    match = MANY_ALBUMS.fullmatch(name)
    if not match:
        raise ValueError(f"unknown shape {name!r}: one of {NAMES}")
    make = _many_albums(int(match["albums"]), int(match["photos"]))
    return Shape(name, 11, ISSUE_11_CONTENDERS, f"RESULTS-{name}.md", make,
                 report.many_albums_targets)  # fmt: skip
