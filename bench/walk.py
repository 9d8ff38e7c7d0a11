"""The folder walk with and without exclusions (issue 15): what the patterns cost.

Generates a tree of empty photo files once (default 100,000, 42 a folder in year/month/day
folders, under --workdir), then walks it with albums.sync.library.scan.FolderWalk, in pairs: without
exclusions (the walk as it was before them) and with one of three sets (the built-in names
alone; with folder patterns; with folder and file-name patterns, anchored ones, `**/` and a
negation, in ALBUMS_EXCLUDE and a .photosite-ignore). Each pair is timed both as the main
pass walks (a stat of each photo) and as the census walks (folders only). It prints the
medians (CPU time of the process, which the other processes of a shared machine disturb
less than the wall clock; and wall time), their ratio and the pattern checks one walk made.
The patterns leave out almost nothing, so the figure is what asking costs, not what
skipping saves; --clutter adds a Synology `@eaDir` beside every photo to show that side.
--syscalls counts the system calls of one walk without and with the largest set (strace).

    python bench/walk.py                      # 100,000 files, 7 pairs of each
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
from albums.sync.library.exclusions import IGNORE_FILE, Excluded, Exclusions  # noqa: E402
from albums.sync.library.scan import FolderWalk  # noqa: E402

FILES_PER_FOLDER = 42
# (ALBUMS_EXCLUDE, .photosite-ignore lines) of each set. In the generated tree they leave
# out one folder of 42 photos (the .photosite-ignore's last line) and nothing else.
PATTERN_SETS = {
    "built-in names only": ([], []),
    "built-in + folder patterns": (
        ["drafts/", "/Private/", "Export/", "**/raw/"],
        ["/2001/01/day 1/"],
    ),
    "built-in + folder and file-name patterns": (
        ["drafts/", "/Private/", "*.tmp.jpg", "*_small.jpg", "Export/**", "**/raw/*.jpg"],
        ["# bench", "*-edited.jpg", "!keep-edited.jpg", "/2001/01/day 1/"],
    ),
}
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


def use_set(root: Path, name: str | None) -> list[str] | None:
    """ALBUMS_EXCLUDE of the set `name` (None: no exclusions), its .photosite-ignore laid."""
    setting, ignore_lines = PATTERN_SETS[name] if name else ([], [])
    ignore = root / IGNORE_FILE
    if ignore_lines:
        ignore.write_text("\n".join(ignore_lines) + "\n")
    else:
        ignore.unlink(missing_ok=True)
    return None if name is None else setting


def walk_once(root: Path, setting: list[str] | None, *, census: bool = False) -> dict:
    """One walk, as the main pass walks (a stat of each photo) or, with `census`, as the
    census does (folders only): its CPU and wall seconds, what it found, the checks made."""
    exclusions = None if setting is None else Exclusions(setting, album_name="bench")
    walk = FolderWalk(root, DEFAULT_PHOTO_EXTENSIONS, exclusions=exclusions)
    found = {"photos": 0, "files left out": 0, "folders left out": 0}
    items = (item for _, item in walk.paths()) if census else walk
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        if not isinstance(item, Excluded):
            found["photos"] += 1
        else:
            found["folders left out" if item.folder else "files left out"] += 1
    seconds = (time.process_time() - cpu, time.perf_counter() - wall)
    return {"seconds": seconds, "found": found, "checks": _checks(exclusions)}


def _checks(exclusions: Exclusions | None) -> dict:
    if exclusions is None:
        return {}
    patterns = exclusions.patterns
    quick = patterns.file_tests
    return {
        "folders tested (built-in names, then quick tests)": patterns.folders_tested,
        "folders whose photo files needed a test": patterns.folders_with_file_tests,
        "a file's test, at most": f"{len(quick.tails)} name endings (one str.endswith), "
        f"{len(quick.heads)} path starts (one str.startswith), "
        f"{len(quick.name_regexes) + len(quick.path_regexes)} regexes",
        "paths asked of pathspec (passed a quick test)": patterns.asked_pathspec,
    }


def syscalls(root: Path, name: str | None) -> dict[str, int]:
    """System calls of one process that walks once, counted by strace."""
    use_set(root, name)  # laid here, so that the process only reads it
    command = [
        "strace", "-f", "-c", "-U", "name,calls", "-e", f"trace={SYSCALLS}",
        sys.executable, __file__, "--one", name or "", str(root),
    ]  # fmt: skip
    # strace's table also counts the interpreter's start-up; only the difference matters.
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr  # noqa: S603
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def compare(root: Path, name: str, repeat: int) -> None:
    print(
        f"\n{name}: ALBUMS_EXCLUDE {PATTERN_SETS[name][0]}, {IGNORE_FILE} {PATTERN_SETS[name][1]}"
    )
    for census in (False, True):
        runs = {False: [], True: []}
        for number in range(repeat):
            for with_patterns in (False, True) if number % 2 == 0 else (True, False):
                setting = use_set(root, name if with_patterns else None)
                runs[with_patterns].append(walk_once(root, setting, census=census))
        print(f"  {'census walk (no stat)' if census else 'main pass walk (a stat per photo)'}")
        for index, kind in enumerate(("CPU", "wall")):
            without = statistics.median(run["seconds"][index] for run in runs[False])
            with_ = statistics.median(run["seconds"][index] for run in runs[True])
            print(
                f"    {kind:>4}: without {without:.3f} s, with {with_:.3f} s, "
                f"ratio {with_ / without:.3f}   (runs without {_list(runs[False], index)}, "
                f"with {_list(runs[True], index)})"
            )
    print(f"  found: without {runs[False][0]['found']}; with {runs[True][0]['found']}")
    for check, value in runs[True][0]["checks"].items():
        print(f"  {check}: {value:,}" if isinstance(value, int) else f"  {check}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7, help="pairs of walks of each kind")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--clutter", action="store_true", help="an @eaDir beside every photo")
    parser.add_argument("--syscalls", action="store_true", help="count them with strace")
    parser.add_argument("--one", nargs=2, metavar=("SET", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name = args.one[0] or None
        walk_once(Path(args.one[1]), PATTERN_SETS[name][0] if name else None)
        return

    root = args.workdir / f"photosite-walk-{args.files}{'-clutter' if args.clutter else ''}"
    generate(root, args.files, clutter=args.clutter)
    clutter = ", an @eaDir beside every photo" if args.clutter else ""
    print(f"tree: {root} ({args.files:,} photo files, {FILES_PER_FOLDER} a folder{clutter})")
    print(f"{args.repeat} pairs of walks (without, with; alternating) of each kind; medians")
    for name in PATTERN_SETS:
        compare(root, name, args.repeat)
    if args.syscalls:
        largest = list(PATTERN_SETS)[-1]
        plain, patterns = syscalls(root, None), syscalls(root, largest)
        print(f"\nsystem calls of a process walking once (main pass), without and with {largest}:")
        for call in sorted(set(plain) | set(patterns)):
            print(f"  {call}: without {plain.get(call, 0):,}, with {patterns.get(call, 0):,}")
    use_set(root, None)


def _list(runs: list[dict], index: int) -> str:
    return "[" + ", ".join(f"{run['seconds'][index]:.2f}" for run in runs) + "]"


if __name__ == "__main__":
    main()
