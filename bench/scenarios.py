"""Issue 13's and 14's scenarios on the `single` album: a renamed folder, verify, restore.

- `rename` (issue 13): the album synced, its top-level folders renamed (`2015` to
  `2015-renamed`, ...: every photo's path changes), the next run timed, then a no-op after it;
  sync_albums beside aws s3 sync, rclone copy and rclone sync --track-renames.
- `verify` (issue 13): `verify_albums bench-album` after a sync, beside a floor that reads and
  MD5s every file once, and (apart) one listing of the album's prefix.
- `restore` (issue 14): `restore_album bench-album --to DIR` into an empty folder, beside
  aws s3 sync, rclone copy and a raw-boto3 download floor, on 5,000 x 20 KB, a smaller album
  (for memory) and issue 11's real sizes (200 x 2 MiB + 5 x 12 MiB); then a sync_albums over the restored folder.

Each contender is a whole process measured as bench/run.py measures (bench/measure.py), on
the counting moto server; results go to bench/RESULTS-<scenario>.md. See bench/README.md.
"""

import argparse
import filecmp
import itertools
import math
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import contenders
import report
from album import ALBUM_FOLDER, ensure, ensure_album, sizes_layout
from contenders import BUCKET, REPO, Contender
from measure import PhotoReads, Sample, Server, run_process
from report import Summary, Target, ratio
from run import Bench, machine, versions

MIB = 1024 * 1024
RENAMED = "-renamed"
SLUG = "bench-album"  # --discover names the album after its folder


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["rename", "verify", "restore"])
    parser.add_argument("--photos", type=int, default=5000, help="photos in the album (5000)")
    parser.add_argument("--size-kb", type=int, default=20, help="mean photo size (20)")
    parser.add_argument("--small", type=int, default=500,
                        help="restore: the smaller album, to compare memory with (500)")  # fmt: skip
    parser.add_argument("--camera", type=int, default=200,
                        help="restore: 2 MiB photos in the large-file set (200)")  # fmt: skip
    parser.add_argument("--large", type=int, default=5,
                        help="restore: large files beside them (5; with --camera 0, none skips the set)")  # fmt: skip
    parser.add_argument("--large-mb", type=int, default=12, help="restore: their size (12)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender (3)")
    parser.add_argument("--workers", type=int, default=10, help="threads for the floors")
    parser.add_argument("--aws", default=os.environ.get("BENCH_AWS") or shutil.which("aws"))
    parser.add_argument("--rclone", default=shutil.which("rclone"))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir(), "photosite-bench")
    )
    parser.add_argument("--out", type=Path, help="default bench/RESULTS-<scenario>.md")
    args = parser.parse_args(argv)
    args.out = args.out or Path(__file__).parent / f"RESULTS-{args.scenario}.md"
    return args


# Running and measuring ------------------------------------------------------------------------


@dataclass
class Runs:
    """The samples of every (contender, run) pair, in the order they were first seen."""

    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, name: str, run: str, sample: Sample) -> None:
        self.samples.setdefault((name, run), []).append(sample)

    def get(self, name: str, run: str) -> Summary | None:
        found = self.samples.get((name, run))
        return Summary(found) if found else None


class Harness:
    """One dataset on the shared server: its bucket, its photo-read watch and its logs."""

    def __init__(self, args, album, server: Server, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.bench = Bench(argparse.Namespace(workdir=workdir), album, server)
        self.args, self.album, self.server, self.workdir = args, album, server, workdir
        self.runs = Runs()

    def measure(self, name: str, run: str, argv, env, *, reads=None, sizes=None) -> Sample:
        """Run one process to the end, record it under (name, run) and print one line."""
        reads = reads or self.bench.reads
        log = self.bench.logs / f"{name.replace(' ', '_')}-{run.replace(' ', '_')}.log"
        sample = run_process(argv, env=env, cwd=REPO, log=log, server=self.server,
                             reads=reads, sizes=sizes or self.album.sizes)  # fmt: skip
        if sample.exit_code != 0:
            sample.notes.append(f"exit code {sample.exit_code} (see {log.name})")
            print(log.read_text()[-2000:], file=sys.stderr)
        self.runs.add(name, run, sample)
        print(f"  {name:<28} {run:<18} {sample.wall:7.2f} s  {sample.request_total:6d} "
              f"requests  {sample.uploaded_bytes / MIB:7.1f} MiB up  {sample.rss_mib:5.0f} MiB"
              + ("  " + "; ".join(sample.notes) if sample.notes else ""), flush=True)  # fmt: skip
        return sample

    def note_bucket(self, sample: Sample, expected: dict[str, int], *, extra_ok=False) -> None:
        """Note it when the bucket lacks a key of `expected` (or, unless `extra_ok`, has more)."""
        stored = self.bench.keys_in_bucket()
        missing = [k for k, size in expected.items() if stored.get(k) != size]
        extra = len(stored.keys() - expected.keys())
        if missing:
            sample.notes.append(f"{len(missing)} expected objects missing or wrong, e.g. "
                                f"{missing[0]}")  # fmt: skip
        if extra and not extra_ok:
            sample.notes.append(f"{extra} objects beyond the album's")

    def plain_env(self) -> dict[str, str]:
        """The floors' environment: no Django, no query-counting hook."""
        return contenders.base_env(self.server.url, self.workdir)

    def sync_albums(self) -> Contender:
        return contenders.sync_albums(sys.executable, self.server.url, self.workdir,
                                      self.album, self.args.workers)  # fmt: skip

    def floor(self, mode: str, folder: Path) -> list[str]:
        return [sys.executable, str(contenders.BENCH / "floor.py"), mode, str(folder), BUCKET,
                self.album.prefix, "--endpoint", self.server.url,
                "--workers", str(self.args.workers)]  # fmt: skip


def rotated(items: list, repeat: int) -> list:
    """Each repeat starts one contender later, so drift favours none (as bench/run.py does)."""
    shift = repeat % len(items)
    return items[shift:] + items[:shift]


def manage(python: str, *args: str) -> list[str]:
    return [python, "manage.py", *args]


def keys(album, paths) -> dict[str, int]:
    return {album.prefix + path: album.sizes[original] for path, original in paths}


# The table and the targets --------------------------------------------------------------------

HEADER = [
    "contender", "run", "wall: median [min-max]", "vs reference", "CPU (user+sys)",
    "S3 requests", "by operation", "uploaded (PUT/part bodies)", "DB queries", "photo files read / bytes",
    "all bytes read (rchar)", "peak RSS", "notes",
]  # fmt: skip


def cells(name: str, run: str, mine: Summary, reference: Summary | None) -> list[str]:
    low, high = mine.spread
    photo = mine.median("photo_bytes")
    return [
        name,
        run,
        f"{mine.wall:.2f} s [{low:.2f}-{high:.2f}]",
        ratio(mine.wall, reference.wall) if reference else "-",
        f"{mine.median('cpu'):.2f} s",
        f"{mine.requests:,.0f}",
        mine.operations(),
        f"{mine.median('uploaded_bytes') / MIB:,.1f} MiB",
        "-" if mine.queries is None else f"{mine.queries:,.0f}",
        f"{mine.median('photo_files_read'):,.0f} / {photo / MIB:.1f} MiB",
        f"{mine.median('rchar') / MIB:.1f} MiB",
        f"{mine.median('rss_mib'):.0f} MiB",
        "; ".join(mine.notes) or "",
    ]


def table(rows) -> str:
    """rows: (name, run, Summary, reference Summary or None), skipping absent Summaries."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for name, run, mine, reference in rows:
        if mine is not None:
            lines.append("| " + " | ".join(cells(name, run, mine, reference)) + " |")
    return "\n".join(lines)


def targets_section(issue: int, found: list[Target]) -> list[str]:
    """The closing lines of a results file: the issue's targets, each PASS or FAIL."""
    return [f"## Targets (issue {issue})", "", report.targets_text(found), ""]


def check(text: str, ok: bool | None, detail: str) -> Target:
    return Target(text, "not checked" if ok is None else ("PASS" if ok else "FAIL"), detail)


def faster_than_each(text: str, mine: Summary, others: dict[str, Summary | None]) -> Target:
    found = {name: s.wall for name, s in others.items() if s is not None}
    detail = ", ".join(f"{name} {wall:.2f} s ({ratio(mine.wall, wall)})"
                       for name, wall in found.items())  # fmt: skip
    ok = all(mine.wall < wall for wall in found.values()) if found else None
    return check(text, ok, f"photosite {mine.wall:.2f} s vs {detail or 'none measured'}")


def op_count(sample: Sample, *operations: str) -> int:
    return sum(sample.requests.get(op, 0) for op in operations)


def write_results(args, title, dataset, sections, elapsed: float, done: int) -> None:
    """The results file; written after every repeat of a long scenario, then at the end."""
    repeats = f"{args.repeat}" if done == args.repeat else f"{done} of {args.repeat} (so far)"
    command = "python bench/scenarios.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"# Benchmark results: {title}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command.strip()}`, {elapsed / 60:.1f} min.",
        f"{dataset}; {repeats} interleaved repeat(s), each starting one contender later; "
        "medians over the repeats, wall spread min-max.",
        "Server: moto's S3 app on werkzeug's threaded server, in its own process, counting "
        "requests and the body bytes of uploads (bench/s3server.py).",
        "",
        "## Machine and versions",
        "",
        *machine(),
        *versions(args),
        "",
        *sections,
    ])  # fmt: skip
    args.out.write_text(text)
    print(f"\nwritten to {args.out}")


# Issue 13: a renamed folder -------------------------------------------------------------------


def rename_folders(album, forward: bool) -> None:
    """`2015` -> `2015-renamed` (or back): every photo of the album changes path."""
    for entry in sorted(album.folder.iterdir()):
        if forward and entry.is_dir() and not entry.name.endswith(RENAMED):
            entry.rename(entry.with_name(entry.name + RENAMED))
        elif not forward and entry.name.endswith(RENAMED):
            entry.rename(entry.with_name(entry.name.removesuffix(RENAMED)))


def renamed_path(path: str) -> str:
    top, _, rest = path.partition("/")
    return f"{top}{RENAMED}/{rest}"


def rename_tools(harness: Harness, args) -> list[Contender]:
    album, url, workdir = harness.album, harness.server.url, harness.workdir
    sync = harness.sync_albums()
    # Like for like with rclone sync: also delete the old keys (more than the default
    # ALBUMS_MAX_DELETE of 1,000 here, every photo having moved).
    pruning = [*sync.initial, "--prune", "--max-delete", str(2 * album.count)]
    tools = [sync, replace(sync, name="sync_albums --prune", initial=pruning, noop=pruning)]
    if args.aws:
        tools.append(contenders.aws_cli(args.aws, url, workdir, album))
    if args.rclone:
        copy = contenders.rclone(args.rclone, url, workdir, album)
        tools.append(copy)
        # rclone ignores --track-renames with copy ("only sync"): it is a sync feature, so
        # this contender is `rclone sync --track-renames`, which also deletes the old keys.
        argv = [args.rclone, "sync", "--track-renames", *copy.initial[2:]]
        tools.append(Contender("rclone sync --track-renames", argv, argv, copy.env))
    # What the server allows: raw uploads to fill the bucket, then raw copies to the new names.
    copies = [*harness.floor("copy", album.folder), f"--suffix={RENAMED}"]
    tools.append(Contender(COPY_FLOOR, harness.floor("upload", album.folder), copies,
                           harness.plain_env()))  # fmt: skip
    return tools


RENAME_RUNS = ("initial", "after rename", "no-op after")
LISTING = "floor: bare listing"
COPY_FLOOR = "floor: raw uploads, then raw copies"


def run_rename(args, server: Server) -> list[str]:
    album = ensure_album(args.workdir, args.photos, args.size_kb, 0, 12)
    rename_folders(album, forward=False)  # a run killed midway may have left them renamed
    harness = Harness(args, album, server, args.workdir / "rename")
    tools = rename_tools(harness, args)
    original = keys(album, ((p, p) for p in album.sizes))
    moved = keys(album, ((renamed_path(p), p) for p in album.sizes))
    for repeat in range(args.repeat):
        print(f"repeat {repeat + 1}/{args.repeat}", flush=True)
        for tool in rotated(tools, repeat):
            harness.bench.fresh_bucket()
            tool.prepare()
            first = harness.measure(tool.name, "initial", tool.initial, tool.env)
            harness.note_bucket(first, original)
            rename_folders(album, forward=True)
            try:
                after = harness.measure(tool.name, "after rename", tool.noop, tool.env)
                harness.note_bucket(after, moved, extra_ok=True)
                if tool.name == COPY_FLOOR:
                    continue  # a floor has no no-op: it would copy again
                harness.measure(tool.name, "no-op after", tool.noop, tool.env)
                if tool.name == "sync_albums":
                    # The bare listing of the very bucket the no-op just listed.
                    harness.measure(LISTING, "no-op after", harness.floor("list", album.folder),
                                    harness.plain_env())  # fmt: skip
            finally:
                rename_folders(album, forward=False)
        args.checkpoint(rename_sections(args, harness, tools), repeat + 1)
    return rename_sections(args, harness, tools)


def rename_sections(args, harness: Harness, tools) -> list[str]:
    runs, n = harness.runs, harness.album.count
    sync = {run: runs.get("sync_albums", run) for run in RENAME_RUNS}
    listing = runs.get(LISTING, "no-op after")
    rows = [(t.name, run, runs.get(t.name, run), sync[run] if run != "no-op after" else listing)
            for run in RENAME_RUNS for t in tools]  # fmt: skip
    rows.append((LISTING, "no-op after", listing, listing))
    others = {t.name: runs.get(t.name, "after rename") for t in tools[2:] if t.name != COPY_FLOOR}
    found = rename_targets(sync, listing, others, n)
    if pruned := runs.get("sync_albums --prune", "no-op after"):
        found.append(check(f"no-op after --prune (the bucket holds the {n:,} photos again): "
                           f"≤ {math.ceil(n / 1000)} requests, the listing",
                           pruned.requests <= math.ceil(n / 1000),
                           f"{pruned.requests:,.0f} ({pruned.operations()})"))  # fmt: skip
    return [
        "## Results",
        "",
        f"Each contender starts from an empty bucket it fills itself (`initial`, timed apart), "
        f"then every top-level folder of the album is renamed (`2015` to `2015{RENAMED}`, ...: "
        f"all {n:,} photos change path) and the next run is timed (`after rename`), then a "
        "no-op (`no-op after`); the names are put back before the next contender. "
        "sync_albums runs without `--prune` and aws s3 sync without `--delete`, so both keep "
        "the old objects, as rclone copy does; `rclone sync --track-renames` (track-renames "
        "is a sync feature: rclone copy ignores it) deletes them, and so does "
        "`sync_albums --prune` (its like for like; not in the targets). `vs reference` is the "
        "ratio to sync_albums' figure for the same run, and for the no-op after, to the bare "
        "listing of the same bucket (`floor.py list`, measured right after sync_albums' no-op, "
        f"whose bucket holds the old keys too). `{COPY_FLOOR}` is what the server allows: "
        "raw boto3 uploads on the same 10 threads fill the bucket (its `initial`, the "
        "raw-upload floor), then one listing and a raw CopyObject per photo to its new name "
        "(its `after rename`, the raw-copy floor), deciding nothing.",
        "",
        table(rows),
        "",
        *targets_section(13, found),
    ]


def rename_targets(sync, listing, others, n: int) -> list[Target]:
    if sync["after rename"] is None:
        return []
    moved, noop = sync["after rename"], sync["no-op after"]
    # The largest of each over the repeats: every run must keep to it.
    copies = max(op_count(s, "CopyObject") for s in moved.samples)
    listings = max(op_count(s, *report.LISTINGS) for s in moved.samples)
    other = max(s.request_total - op_count(s, "CopyObject", *report.LISTINGS)
                for s in moved.samples)  # fmt: skip
    most_bytes = max(s.uploaded_bytes for s in moved.samples)
    return [
        check("after rename: 0 photo bytes uploaded", most_bytes == 0,
              f"{most_bytes:,} bytes at most (PUT/UploadPart bodies)"),
        check(f"after rename: ≤ {n:,} copies plus the listing", copies <= n and other == 0,
              f"at most {copies:,} CopyObject, {listings:,} listing, {other:,} other a run "
              f"(medians: {moved.operations()})"),
        faster_than_each("after rename: faster than aws s3 sync, rclone copy and rclone "
                         "sync --track-renames", moved, others),
        # The no-op's figure is its listing: ceil(objects under the prefix / 1000) requests,
        # 5 for the 5,000 photos. Without --prune the old keys stay, 2 x n objects in all.
        check(f"no-op after: only the listing, ≤ ceil({2 * n:,} objects / 1000) = "
              f"{math.ceil(2 * n / 1000)} requests",
              noop.requests <= math.ceil(2 * n / 1000) and noop.requests == noop_listings(noop),
              f"{noop.requests:,.0f} ({noop.operations()})"),
        check("no-op after: 0 photo bytes read", noop.max_photo_bytes == 0,
              f"{noop.max_photo_bytes:,} bytes at most"),
        check("no-op after: wall ≤ 1.3 x the bare listing", noop.wall <= 1.3 * listing.wall,
              f"{noop.wall:.2f} s vs {listing.wall:.2f} s ({ratio(noop.wall, listing.wall)})"),
    ]  # fmt: skip


def noop_listings(summary: Summary) -> float:
    return statistics.median(op_count(s, *report.LISTINGS) for s in summary.samples)


# Issue 13: verify_albums ----------------------------------------------------------------------

VERIFY = "verify_albums"
MD5_FLOOR = "floor: read + MD5"
LIST_FLOOR = "floor: bare listing"


def run_verify(args, server: Server) -> list[str]:
    album = ensure_album(args.workdir, args.photos, args.size_kb, 0, 12)
    harness = Harness(args, album, server, args.workdir / "verify")
    sync = harness.sync_albums()
    harness.bench.fresh_bucket()
    sync.prepare()
    harness.measure("sync_albums", "initial", sync.initial, sync.env)
    python = sys.executable
    runs = [
        (VERIFY, manage(python, "verify_albums", SLUG), sync.env),
        (MD5_FLOOR, harness.floor("md5", album.folder), harness.plain_env()),
        (LIST_FLOOR, harness.floor("list", album.folder), harness.plain_env()),
    ]
    for repeat in range(args.repeat):
        print(f"repeat {repeat + 1}/{args.repeat}", flush=True)
        for name, argv, env in rotated(runs, repeat):
            harness.measure(name, "verify", argv, env)
    return verify_sections(harness)


def verify_sections(harness: Harness) -> list[str]:
    runs = harness.runs
    verify, md5, listing = (runs.get(name, "verify") for name in (VERIFY, MD5_FLOOR, LIST_FLOOR))
    rows = [(VERIFY, "verify", verify, md5), (MD5_FLOOR, "verify", md5, md5),
            (LIST_FLOOR, "verify", listing, md5),
            ("sync_albums", "initial (setup)", runs.get("sync_albums", "initial"), None)]  # fmt: skip
    found = [
        check("verify: wall ≤ 1.3 x the read + MD5 floor", verify.wall <= 1.3 * md5.wall,
              f"{verify.wall:.2f} s vs {md5.wall:.2f} s ({ratio(verify.wall, md5.wall)}); "
              f"read + MD5 + listing would be {md5.wall + listing.wall:.2f} s "
              f"({ratio(verify.wall, md5.wall + listing.wall)})"),
    ]  # fmt: skip
    return [
        "## Results",
        "",
        "One sync_albums fills the bucket and the database (`initial (setup)`); then "
        f"`manage.py verify_albums {SLUG}`, the floor that reads and MD5s every file of the "
        "album once on one thread (`floor.py md5`: hashlib.file_digest, no request, no "
        "database) and one paginated listing of the prefix (`floor.py list`) run in turn. The "
        "album's files are in the page cache for all of them (the setup sync read them, and "
        "each run reads them again): this compares CPU and request work, not disk reads. "
        "`vs reference` is the ratio to the read + MD5 floor.",
        "",
        table(rows),
        "",
        *targets_section(13, found),
    ]


# Issue 14: restore_album ----------------------------------------------------------------------

RESTORE = "restore_album"
DOWNLOAD_FLOOR = "floor: download"
AFTER = "sync_albums after restore"
WATCHES = itertools.count()


@dataclass
class RestoreSet:
    label: str
    harness: Harness
    synced_db: Path  # the database as the initial sync left it
    target_root: Path  # PHOTOS_ROOT of the restored copy
    env: dict[str, str]  # sync_albums' environment, on a copy of synced_db

    @property
    def target(self) -> Path:
        return self.target_root / self.harness.album.folder.name


def restore_set(args, server: Server, label: str, album) -> RestoreSet:
    """Fill the bucket with sync_albums and keep its database: what restore_album needs."""
    workdir = args.workdir / ("restore-" + re.sub(r"\W+", "-", label))
    harness = Harness(args, album, server, workdir)
    sync = harness.sync_albums()
    harness.bench.fresh_bucket()
    sync.prepare()
    harness.measure("sync_albums", "initial (setup)", sync.initial, sync.env)
    synced = workdir / "synced.sqlite3"
    backup(sync.database, synced)
    restore_db = workdir / "restore.sqlite3"
    env = sync.env | {"DATABASE_URL": f"sqlite:///{restore_db}"}
    return RestoreSet(label, harness, synced, workdir / "restored", env)


def backup(source: Path, destination: Path) -> None:
    """A whole copy of a SQLite database, its WAL included (a file copy could miss it)."""
    destination.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(destination) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def restore_contenders(args, rs: RestoreSet) -> list[tuple[str, list[str], dict]]:
    h, target = rs.harness, str(rs.target)
    env = h.plain_env()
    remote = f"{BUCKET}/{h.album.prefix}"
    tools = [
        (RESTORE, manage(sys.executable, "restore_album", SLUG, "--to", target), rs.env),
        (DOWNLOAD_FLOOR, h.floor("download", rs.target), env),
    ]
    if args.aws:
        tools.append(("aws s3 sync", [args.aws, "s3", "sync", f"s3://{remote}", target,
                      "--endpoint-url", h.server.url, "--only-show-errors", "--no-progress"],
                      env))  # fmt: skip
    if args.rclone:
        rclone = contenders.rclone(args.rclone, h.server.url, h.workdir, h.album)
        argv = [args.rclone, "copy", f":s3:{remote.rstrip('/')}", target, *rclone.initial[4:]]
        tools.append(("rclone copy", argv, rclone.env))
    return tools


def restored_problem(rs: RestoreSet) -> str | None:
    """What differs between the restored folder and the album: names, sizes or bytes."""
    album = rs.harness.album
    found = {
        os.path.relpath(os.path.join(d, f), rs.target): os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(rs.target)
        for f in files
    }
    if found != album.sizes:
        return f"restored {len(found)} files of {album.count}, or other sizes"
    differ = [p for p in album.sizes if not filecmp.cmp(album.folder / p, rs.target / p, False)]
    return f"{len(differ)} restored files differ from the album's" if differ else None


def run_restore(args, server: Server) -> list[str]:
    def small_photos(count: int):
        return lambda: ensure_album(args.workdir, count, args.size_kb, 0, 12)

    def large_files():  # issue 11's real sizes: camera JPEGs and a few large files
        sizes = sizes_layout(args.camera, 2, args.large, args.large_mb)
        home = args.workdir / f"restore-real-{args.camera}x2m-{args.large}x{args.large_mb}m"
        return ensure(home, sizes, album_folder=ALBUM_FOLDER, albums=1)

    datasets = [
        (f"{args.photos:,} x {args.size_kb} KB", small_photos(args.photos)),
        (f"{args.small:,} x {args.size_kb} KB", small_photos(args.small)),
    ]
    if args.camera or args.large:
        datasets.append((f"{args.camera} x 2 MiB + {args.large} x {args.large_mb} MiB",
                         large_files))  # fmt: skip
    sets = []
    for label, layout in datasets:
        print(f"restore set {label}", flush=True)
        # One set at a time: the bucket holds only the set being restored.
        rs = restore_set(args, server, label, layout())
        tools = restore_contenders(args, rs)
        for repeat in range(args.repeat):
            print(f"repeat {repeat + 1}/{args.repeat}", flush=True)
            for name, argv, env in rotated(tools, repeat):
                restore_once(rs, name, argv, env)
        sets.append(rs)
    return restore_sections(args, sets)


def restore_once(rs: RestoreSet, name: str, argv, env) -> None:
    """One restore into an empty folder, checked; after photosite's, a sync of the copy."""
    shutil.rmtree(rs.target_root, ignore_errors=True)
    rs.target_root.mkdir(parents=True)
    if name == RESTORE:
        backup(rs.synced_db, Path(env["DATABASE_URL"].removeprefix("sqlite:///")))
    else:
        rs.target.mkdir()  # the tools are given an existing, empty folder
    sample = rs.harness.measure(name, "restore", argv, env)
    problem = restored_problem(rs)
    if problem:
        sample.notes.append(problem)
    if name == RESTORE:
        sync_restored(rs, env)


def sync_restored(rs: RestoreSet, env) -> None:
    """sync_albums over the restored folder, on the database restore_album left: it should
    see every photo as recorded (size and mtime) and read none of them."""
    # A watch of its own on the folder just restored (the harness's watches the album).
    sentinel = rs.harness.workdir / f"sentinel-restored-{next(WATCHES)}"
    reads = PhotoReads(rs.target, sentinel)
    env = env | {"PHOTOS_ROOT": str(rs.target_root)}
    argv = manage(sys.executable, "sync_albums", "--discover")
    rs.harness.measure(AFTER, "sync", argv, env, reads=reads)


def restore_sections(args, sets: list[RestoreSet]) -> list[str]:
    out = [
        "## Results",
        "",
        "For each set, one sync_albums fills an empty bucket and its database "
        "(`initial (setup)`); that database is kept and copied (SQLite backup) before every "
        f"`manage.py restore_album {SLUG} --to DIR`. Every contender restores into an empty "
        "DIR, which is then compared with the album (names, sizes and every byte); after "
        "each photosite restore, `sync_albums --discover` runs with PHOTOS_ROOT at the "
        "restored copy and the database the restore left (`sync after restore`; its photo "
        "reads are watched on the restored folder). The floor (`floor.py download`) lists the "
        f"prefix once and downloads every object on a pool of {args.workers} threads "
        "(get_object streamed to the file; over 8 MiB, one shared s3transfer manager), with "
        "no check, no fsync and no temporary name. `vs reference` is the ratio to the floor.",
        "",
    ]
    found = []
    for rs in sets:
        runs = rs.harness.runs
        floor = runs.get(DOWNLOAD_FLOOR, "restore")
        names = [RESTORE, DOWNLOAD_FLOOR, "aws s3 sync", "rclone copy"]
        rows = [(name, "restore", runs.get(name, "restore"), floor) for name in names]
        rows += [(AFTER, "sync after restore", runs.get(AFTER, "sync"), None),
                 ("sync_albums", "initial (setup)", runs.get("sync_albums", "initial (setup)"),
                  None)]  # fmt: skip
        out += [f"### {rs.label}", "", table(rows), ""]
        found += restore_targets(rs, floor, runs)
    found.append(flat_memory(sets))
    return [*out, *targets_section(14, found)]


def restore_targets(rs: RestoreSet, floor: Summary, runs: Runs) -> list[Target]:
    mine, after = runs.get(RESTORE, "restore"), runs.get(AFTER, "sync")
    n = rs.harness.album.count
    limit = math.ceil(n / 1000)
    tools = {name: runs.get(name, "restore") for name in ("aws s3 sync", "rclone copy")}
    return [
        check(f"{rs.label}: restore wall ≤ 1.15 x the download floor",
              mine.wall <= 1.15 * floor.wall,
              f"{mine.wall:.2f} s vs {floor.wall:.2f} s ({ratio(mine.wall, floor.wall)})"),
        faster_than_each(f"{rs.label}: restore faster than aws s3 sync and rclone copy", mine,
                         tools),
        check(f"{rs.label}: sync after restore sends ≤ ceil({n:,} / 1000) = {limit} requests",
              after.requests <= limit, f"{after.requests:,.0f} ({after.operations()})"),
        check(f"{rs.label}: sync after restore reads no photo", after.max_photo_bytes == 0,
              f"{max(s.photo_files_read for s in after.samples):,} files, "
              f"{after.max_photo_bytes:,} bytes at most"),
    ]  # fmt: skip


def flat_memory(sets: list[RestoreSet]) -> Target:
    """Issue 14's "peak RSS flat in the album size", read as: the 5,000-photo restore's peak
    within 10 % of the smaller album's (both sets of 20 KB photos)."""
    big, small = (rs.harness.runs.get(RESTORE, "restore") for rs in sets[:2])
    rss = {rs.label: rs.harness.runs.get(RESTORE, "restore").max_rss for rs in sets}
    detail = ", ".join(f"{label}: {value:.0f} MiB" for label, value in rss.items())
    return check("restore: peak RSS flat in the album size (largest peak at "
                 f"{sets[0].label} ≤ 1.1 x at {sets[1].label})",
                 big.max_rss <= 1.1 * small.max_rss, detail)  # fmt: skip


# Main -----------------------------------------------------------------------------------------

SCENARIOS = {
    "rename": ("rename (issue 13)", run_rename),
    "verify": ("verify_albums (issue 13)", run_verify),
    "restore": ("restore_album (issue 14)", run_restore),
}


def main(argv=None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    title, scenario = SCENARIOS[args.scenario]
    dataset = (f"Album `single`: `bench-album/<year>/<month>/IMG_*.jpg`, {args.photos:,} "
               f"photos of {args.size_kb} KB mean (75 % to 125 %)")  # fmt: skip

    def checkpoint(sections: list[str], done: int) -> None:
        write_results(args, title, dataset, sections, time.monotonic() - started, done)

    args.checkpoint = checkpoint
    server = Server(sys.executable, Path(__file__).parent / "s3server.py",
                    args.workdir / f"server-{args.scenario}.log")  # fmt: skip
    try:
        sections = scenario(args, server)
    finally:
        server.stop()
    print("\n" + "\n".join(sections))
    checkpoint(sections, args.repeat)


if __name__ == "__main__":
    main()
