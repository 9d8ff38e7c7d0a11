"""The folder walk with and without exclusion patterns (issue 15): what the patterns cost.

Generates a tree of empty photo files once (default 100,000 in 2,400 folders, under
--workdir), then walks it with albums.sync.scan.FolderWalk, alternately without exclusions
(the walk as it was before them) and with the built-in exclusions, an ALBUMS_EXCLUDE list
and a .photosite-ignore, and prints the median of each (CPU time of the process, which other
processes on a shared machine disturb less than the wall clock, and wall time), their ratio
and how many pattern checks one walk with patterns made. The patterns are chosen to leave out almost nothing, so
that the figure is what checking costs, not what skipping saves; --clutter adds a Synology
`@eaDir` beside every folder's photos to show the other side. --syscalls counts the system
calls of one walk of each kind with strace.

    python bench/walk.py                      # 100,000 files, 7 runs of each
    python bench/walk.py --files 20000 --repeat 3 --syscalls

Unlike bench/run.py it imports the app (the walk is a piece of the engine, not a process).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photosite.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from albums.conf import DEFAULT_PHOTO_EXTENSIONS  # noqa: E402
from albums.sync.exclusions import IGNORE_FILE, Excluded, Exclusions  # noqa: E402
from albums.sync.scan import FolderWalk  # noqa: E402

FILES_PER_FOLDER = 42
# A realistic ALBUMS_EXCLUDE and .photosite-ignore: folder patterns, file-name patterns,
# anchored ones and a negation. In the generated tree they leave out one folder.
SETTING = ["drafts/", "/Private/", "*.tmp.jpg", "*_small.jpg", "Export/**", "**/raw/*.jpg"]
IGNORE_LINES = ["# bench", "*-edited.jpg", "!keep-edited.jpg", "/2001/01/day 1/"]
SYSCALLS = "stat,lstat,newfstatat,statx,fstat,openat,getdents64,readlink"


def generate(root: Path, files: int, *, clutter: bool) -> None:
    """Empty files named like a camera's, 42 a folder in year/month/day folders."""
    marker = root / f".generated-{files}-{int(clutter)}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    count = 0
    for year in range(2000, 2100):
        for month in range(1, 13):
            for day in range(1, 9):
                if count >= files:
                    (root / IGNORE_FILE).write_text("\n".join(IGNORE_LINES) + "\n")
                    marker.touch()
                    return
                folder = root / str(year) / f"{month:02}" / f"day {day}"
                folder.mkdir(parents=True)
                for number in range(min(FILES_PER_FOLDER, files - count)):
                    name = f"IMG_{year}{month:02}{day:02}_{number:04}.jpg"
                    (folder / name).touch()
                    if clutter:
                        thumbs = folder / "@eaDir" / name
                        thumbs.mkdir(parents=True)
                        (thumbs / "SYNOPHOTO_THUMB_XL.jpg").touch()
                    count += 1


def walk_once(root: Path, with_patterns: bool) -> tuple[tuple[float, float], int, int, dict]:
    """((CPU seconds, wall seconds), photos found, entries left out, pattern checks)."""
    exclusions = Exclusions(SETTING, album_name="bench") if with_patterns else None
    walk = FolderWalk(root, DEFAULT_PHOTO_EXTENSIONS, exclusions=exclusions)
    photos = excluded = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for found in walk:
        if isinstance(found, Excluded):
            excluded += 1
        else:
            photos += 1
    seconds = (time.process_time() - cpu, time.perf_counter() - wall)
    checks = {}
    if exclusions is not None:
        patterns = exclusions.patterns
        checks = {
            "folders tested": patterns.folders_tested,
            # every photo file when a pattern can leave a file out (tests_files), else none
            "files tested": (photos + excluded) if patterns.tests_files else 0,
            "paths asked of pathspec": patterns.asked_pathspec,
        }
    return seconds, photos, excluded, checks


def syscalls(root: Path, with_patterns: bool) -> dict[str, int]:
    """System calls of one walk, counted by strace in a process of its own."""
    command = [
        "strace", "-f", "-c", "-U", "name,calls", "-e", f"trace={SYSCALLS}",
        sys.executable, __file__, "--one", "with" if with_patterns else "without", str(root),
    ]  # fmt: skip
    # strace's table also counts the interpreter's start-up; the difference is the walk's.
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr  # noqa: S603
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--clutter", action="store_true", help="an @eaDir beside every photo")
    parser.add_argument("--syscalls", action="store_true", help="count them with strace")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        walk_once(Path(args.one[1]), args.one[0] == "with")
        return

    root = args.workdir / f"photosite-walk-{args.files}{'-clutter' if args.clutter else ''}"
    generate(root, args.files, clutter=args.clutter)
    times = {False: [], True: []}
    for repeat in range(args.repeat):
        for with_patterns in (False, True) if repeat % 2 == 0 else (True, False):
            seconds, photos, excluded, checks = walk_once(root, with_patterns)
            times[with_patterns].append(seconds)
            if with_patterns:
                result = (photos, excluded, checks)
            else:
                plain = photos
    photos, excluded, checks = result
    clutter = ", with @eaDir clutter" if args.clutter else ""
    print(f"tree: {root} ({args.files:,} photo files{clutter})")
    print(f"patterns: built-in names, ALBUMS_EXCLUDE {SETTING}, {IGNORE_FILE} {IGNORE_LINES}")
    print(f"runs: {args.repeat} of each, interleaved; medians")
    print(
        f"found: without patterns {plain:,} photos; with {photos:,} photos, {excluded:,} left out"
    )
    for index, kind in enumerate(("CPU", "wall")):
        without = statistics.median(run[index] for run in times[False])
        with_ = statistics.median(run[index] for run in times[True])
        print(
            f"{kind:>4} time: without {without:.3f} s, with {with_:.3f} s, "
            f"ratio {with_ / without:.3f}   runs without {_list(times[False], index)}, "
            f"with {_list(times[True], index)}"
        )
    print(
        "pattern checks in one walk with patterns: "
        + ", ".join(f"{kind} {count:,}" for kind, count in checks.items())
        + f" (for {photos + excluded:,} files and folders found)"
    )
    if args.syscalls:
        plain_calls, pattern_calls = syscalls(root, False), syscalls(root, True)
        for name in sorted(set(plain_calls) | set(pattern_calls)):
            print(
                f"syscalls {name}: without {plain_calls.get(name, 0):,}, "
                f"with {pattern_calls.get(name, 0):,}"
            )


def _list(runs: list[tuple[float, float]], index: int) -> str:
    return "[" + ", ".join(f"{run[index]:.2f}" for run in runs) + "]"


if __name__ == "__main__":
    main()
