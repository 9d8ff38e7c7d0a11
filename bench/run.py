"""Benchmark `sync_albums` against the seed design, aws s3 sync, rclone copy and the floor.

See bench/README.md. Each contender runs as a whole process against one moto server (in its
own process), interleaved and repeated, on one dataset (`--shape`, see bench/shapes.py); the
table and the targets go to bench/RESULTS.md (bench/RESULTS-<shape>.md for the other shapes).
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import boto3
import contenders
import shapes
from album import ensure_album
from botocore.config import Config
from contenders import BUCKET, FLOOR, REPO
from measure import PhotoReads, Server, run_process
from report import PHASES, Summary, table, targets_text

ALL = shapes.ALL_CONTENDERS
PACKAGES = ("Django", "django-storages", "boto3", "botocore", "s3transfer", "moto", "Werkzeug",
            "pillow")  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="single", help=f"the dataset: {shapes.NAMES} "
                        "(default single; see bench/README.md)")  # fmt: skip
    parser.add_argument("--photos", type=int, help="single: photos in the album (default 5000)")
    parser.add_argument("--size-kb", type=int, help="single, albums-AxP: mean photo size (20)")
    parser.add_argument("--large", type=int, help="single: files over the multipart threshold")
    parser.add_argument("--large-mb", type=int, help="single: size of each large file (12)")
    parser.add_argument("--repeat", type=int, help="runs of each contender (default 3)")
    parser.add_argument("--quick", action="store_true", help="single: 500 photos, 1 repeat")
    parser.add_argument(
        "--only",
        help=f"contenders, comma-separated (default for single: all, {','.join(ALL)}; "
        f"for the other shapes: {','.join(shapes.ISSUE_11_CONTENDERS)})",
    )
    parser.add_argument("--workers", type=int, default=10, help="threads for sync and floor")
    parser.add_argument(
        "--aws",
        default=os.environ.get("BENCH_AWS") or shutil.which("aws"),
        help="the aws binary (default $BENCH_AWS, else aws on PATH)",
    )
    parser.add_argument("--rclone", default=shutil.which("rclone"), help="the rclone binary")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir(), "photosite-bench")
    )
    parser.add_argument("--out", type=Path, help="default bench/RESULTS.md, or "
                        "bench/RESULTS-<shape>.md for the other shapes")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        args.shape = shapes.get(args.shape, single=lambda workdir, _: _single(args, workdir))
    except ValueError as exc:
        parser.error(str(exc))
    single_only = {"--photos": args.photos, "--large": args.large,
                   "--large-mb": args.large_mb, "--quick": args.quick or None}  # fmt: skip
    if args.shape.name.startswith("sizes-"):
        single_only["--size-kb"] = args.size_kb
    given = [option for option, value in single_only.items() if value is not None]
    if args.shape.name != "single" and given:
        parser.error(f"{', '.join(given)}: not for --shape {args.shape.name}")
    args.photos = args.photos or (500 if args.quick else 5000)
    args.size_kb = args.size_kb or 20
    args.large = args.large or 0
    args.large_mb = args.large_mb or 12
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.out = args.out or Path(__file__).parent / args.shape.results_file
    only = args.only or ",".join(args.shape.contenders)
    args.only = [name.strip() for name in only.split(",") if name.strip()]
    unknown = set(args.only) - set(ALL)
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    return args


def _single(args, workdir: Path):
    return ensure_album(workdir, args.photos, args.size_kb, args.large, args.large_mb)


class Bench:
    def __init__(self, args, album, server: Server):
        self.args = args
        self.album = album
        self.server = server
        self.reads = PhotoReads(album.folder, args.workdir / "sentinel")
        self.client = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",  # noqa: S106 - moto accepts any
            config=Config(request_checksum_calculation="when_required"),
        )
        self.logs = args.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def fresh_bucket(self) -> None:
        """Forget every bucket and object, then make the empty bucket the tools expect."""
        self.server.reset_state()
        self.client.create_bucket(Bucket=BUCKET)

    def keys_in_bucket(self) -> dict[str, int]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=self.album.prefix
        )
        return {obj["Key"]: obj["Size"] for page in pages for obj in page.get("Contents", ())}

    def check_bucket(self) -> str | None:
        """What is wrong with the bucket after a run: every tool must leave the same keys."""
        stored = self.keys_in_bucket()
        expected = {self.album.prefix + path: size for path, size in self.album.sizes.items()}
        if stored == expected:
            return None
        if len(stored) != len(expected):
            return f"bucket holds {len(stored)} of {len(expected)} photos after it"
        wrong = sorted(k for k in stored.keys() ^ expected.keys())[:3]
        wrong += sorted(k for k in stored.keys() & expected.keys() if stored[k] != expected[k])[:3]
        return f"bucket's keys or sizes differ from the album's, e.g. {', '.join(wrong)}"

    def note_outcome(self, sample, log: Path, shown) -> None:
        """Notes on `sample` of a run that failed (its log's tail printed, `shown` named) or
        left the bucket other than the dataset."""
        if sample.exit_code != 0:
            sample.notes.append(f"exit code {sample.exit_code} (see {shown})")
            print(log.read_text()[-2000:], file=sys.stderr)
        problem = self.check_bucket()
        if problem:
            sample.notes.append(problem)

    def measure(self, contender, phase: str, repeat: int):
        argv = contender.initial if phase == "initial" else contender.noop
        log = self.logs / f"{contender.name.replace(' ', '_')}-{phase}-{repeat}.log"
        sample = run_process(argv, env=contender.env, cwd=REPO, log=log, server=self.server,
                             reads=self.reads, sizes=self.album.sizes)  # fmt: skip
        self.note_outcome(sample, log, log)
        print(f"  {contender.name:<12} {phase:<8} {sample.wall:7.2f} s  "
              f"{sample.request_total:6d} requests  {sample.rss_mib:6.0f} MiB"
              + ("  " + "; ".join(sample.notes) if sample.notes else ""), flush=True)  # fmt: skip
        return sample

    def run(self, tools) -> dict[str, dict[str, Summary]]:
        samples = {tool.name: {phase: [] for phase, _ in PHASES} for tool in tools}
        for repeat in range(self.args.repeat):
            # Interleaved, each repeat starting one contender later, so that drift in the
            # machine or the server (memory, caches) does not favour one tool.
            order = tools[repeat % len(tools) :] + tools[: repeat % len(tools)]
            print(f"repeat {repeat + 1}/{self.args.repeat}", flush=True)
            for tool in order:
                self.fresh_bucket()
                tool.prepare()
                for phase, _ in PHASES:
                    samples[tool.name][phase].append(self.measure(tool, phase, repeat))
        return {
            name: {p: Summary(s) for p, s in phases.items()} for name, phases in samples.items()
        }


def machine() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                if line.startswith("model name")), platform.processor())  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return [
        f"- CPU: {os.cpu_count()} cores ({cpu}); RAM: {mem_kib / 1024 / 1024:.1f} GiB",
        f"- OS: {platform.freedesktop_os_release().get('PRETTY_NAME', platform.system())}, "
        f"kernel {platform.release()}; Python {platform.python_version()}",
    ]


def tool_version(argv: list[str] | None) -> str:
    if not argv or not argv[0]:
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    return (done.stdout or done.stderr).strip().splitlines()[0]


def versions(args) -> list[str]:
    found = [f"{name} {metadata.version(name)}" for name in PACKAGES]
    return [
        "- " + ", ".join(found),
        f"- awscli: {tool_version([args.aws, '--version'] if args.aws else None)}",
        f"- rclone: {tool_version([args.rclone, 'version'] if args.rclone else None)}",
    ]


def results_text(args, album, summary: str, found: str, elapsed: float) -> str:
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    return "\n".join([
        "# Benchmark results" + ("" if args.shape.name == "single" else f": {args.shape.name}"),
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command.strip()}`, {elapsed / 60:.1f} min.",
        f"{args.shape.describe(album, args)}; "
        f"{args.repeat} interleaved repeats; {args.workers} workers for sync_albums and the floor.",
        "Server: moto's S3 app on werkzeug's threaded server, in its own process, counting "
        "requests (bench/s3server.py). Each figure is followed by its ratio to the floor "
        "(raw uploads for the initial run, a bare listing for the no-op run).",
        "",
        "## Machine and versions",
        "",
        *machine(),
        *versions(args),
        "",
        "## Results",
        "",
        summary,
        "",
        f"## Targets (issue {args.shape.issue})",
        "",
        found,
        "",
        "Where the time goes: see bench/PROFILE.md.",
        "",
    ])  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    album = args.shape.make(args.workdir, args.size_kb)
    print(f"{args.shape.name}: {album.count:,} files in {album.albums:,} album(s), "
          f"{album.total_bytes / 1024 / 1024:.1f} MiB in {album.folder}", flush=True)  # fmt: skip
    server = Server(sys.executable, Path(__file__).parent / "s3server.py",
                    args.workdir / "server.log")  # fmt: skip
    try:
        tools = contenders.build(
            args.only, python=sys.executable, aws=args.aws, rclone_bin=args.rclone,
            endpoint=server.url, workdir=args.workdir, album=album, workers=args.workers,
        )  # fmt: skip
        results = Bench(args, album, server).run(tools)
    finally:
        server.stop()
    summary = table(results, FLOOR)
    found = targets_text(args.shape.targets(results, album, FLOOR))
    print("\n" + summary + "\n\n" + found)
    args.out.write_text(results_text(args, album, summary, found, time.monotonic() - started))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
