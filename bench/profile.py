"""Profile sync_albums (initial and no-op) under py-spy, against the benchmark's server.

Samples every thread of the real process (`manage.py sync_albums --discover`, as
bench/run.py runs it) and prints where the CPU goes: the share of samples whose stack passes
through each part of the work, and the hottest functions. The raw stacks stay in the
workdir (profile-*.txt, collapsed format) for a flame graph or a closer look.

Run: python bench/profile.py [--photos N | --shape albums-500x20] [--rate HZ]
"""

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import contenders
import shapes
from album import ensure_album
from contenders import REPO
from measure import Server
from run import Bench

# (label, pattern on one frame); a sample counts for every label one of its frames matches.
PARTS = (
    ("interpreter start-up and imports", r"<frozen importlib|_find_and_load"),
    ("django.setup()", r"^setup \(django/__init__"),
    ("boto3 session / client creation", r"create_client|boto3/session\.py|botocore/loaders"),
    ("s3transfer (TransferManager per upload)", r"s3transfer/"),
    ("django-storages S3Storage", r"storages/backends/s3\.py"),
    ("SigV4 signing and payload hashing", r"botocore/auth\.py|botocore/signers\.py"),
    ("HTTP (urllib3, http.client, sockets)", r"urllib3/|http/client\.py|socket\.py"),
    ("response parsing (XML)", r"botocore/parsers\.py"),
    ("Pillow header and EXIF", r"PIL/"),
    ("database (Django ORM, sqlite3)", r"django/db/"),
    ("the folder walk", r"albums/sync/scan\.py"),
    ("the merge by path", r"albums/sync/merge\.py"),
    ("the album listing", r"^S3Bucket.list_pages |^list_pages \(albums/storage"),
    ("thread pool hand-off", r"concurrent/futures|threading\.py"),
)
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short_file(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "wt-bench/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def parse(raw: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        names = []
        for frame in frames.split(";"):
            match = FRAME.match(frame)
            if match:
                names.append(f"{match['func']} ({short_file(match['file'])})")
            else:
                names.append(frame)
        stacks.append((names, int(count)))
    return stacks


def summarize(raw: Path, title: str) -> str:
    stacks = parse(raw)
    total = sum(count for _, count in stacks) or 1
    parts, inclusive, leaves = Counter(), Counter(), Counter()
    for frames, count in stacks:
        for label, pattern in PARTS:
            if any(re.search(pattern, frame) for frame in frames):
                parts[label] += count
        for name in set(frames):
            inclusive[name] += count
        leaves[frames[-1]] += count
    lines = [f"### {title}: {total:,} samples (CPU only, all threads)", ""]
    lines += ["| part of the work (stacks overlap) | share |", "|---|---|"]
    lines += [f"| {label} | {parts[label] / total:.0%} |" for label, _ in PARTS if parts[label]]
    lines += ["", "Hottest functions, inclusive:", "", "```"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in _top(inclusive, 25)]
    lines += ["```", "", "Hottest functions, self:", "", "```"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in leaves.most_common(15)]
    return "\n".join([*lines, "```", ""])


def _top(inclusive: Counter, count: int):
    """The most inclusive frames below the thread roots and the interpreter's own entry."""
    skip = re.compile(r"^(thread \(|process |<module> \(manage|main \(manage|_bootstrap)")
    return [(n, c) for n, c in inclusive.most_common(count + 10) if not skip.match(n)][:count]


def record(py_spy: str, argv, env, raw: Path, rate: int) -> None:
    command = [py_spy, "record", "--rate", str(rate), "--format", "raw", "-o", str(raw), "--"]
    subprocess.run([*command, *argv], env=env, cwd=REPO, check=True)  # noqa: S603
    print(f"raw stacks: {raw}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="single", help=f"the dataset: {shapes.NAMES}")
    parser.add_argument("--photos", type=int, default=5000, help="single: photos in the album")
    parser.add_argument("--size-kb", type=int, default=20)
    parser.add_argument("--rate", type=int, default=50, help="samples a second (more falls behind)")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir(), "photosite-bench")
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        shape = shapes.get(
            args.shape, single=lambda workdir, size_kb: ensure_album(workdir, args.photos,
                                                                     size_kb, 0, 12)
        )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    album = shape.make(args.workdir, args.size_kb)
    server = Server(sys.executable, Path(__file__).parent / "s3server.py",
                    args.workdir / "server.log")  # fmt: skip
    try:
        bench_args = argparse.Namespace(workdir=args.workdir, repeat=1)
        bench = Bench(bench_args, album, server)
        sync = contenders.sync_albums(sys.executable, server.url, args.workdir, album, 10)
        bench.fresh_bucket()
        sync.prepare()
        for phase, argv in (("initial", sync.initial), ("no-op", sync.noop)):
            raw = args.workdir / f"profile-{phase}.txt"
            record(args.py_spy, argv, sync.env, raw, args.rate)
            title = f"sync_albums {phase}, {shape.name}: {album.count:,} photos"
            albums = f" in {album.albums:,} albums" if album.albums > 1 else ""
            print(summarize(raw, title + albums))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
