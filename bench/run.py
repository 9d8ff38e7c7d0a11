"""Benchmark `sync_albums` against the seed design, aws s3 sync, rclone copy and the floor.

See bench/README.md. Each contender runs as a whole process against one moto server (in its
own process), interleaved and repeated; the table and the targets go to bench/RESULTS.md.
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
from album import ensure_album
from botocore.config import Config
from contenders import BUCKET, FLOOR, PREFIX, REPO
from measure import PhotoReads, Server, run_process
from report import PHASES, Summary, table, targets, targets_text

ALL = ("floor", "sync_albums", "seed", "aws", "rclone")
PACKAGES = ("Django", "django-storages", "boto3", "botocore", "s3transfer", "moto", "Werkzeug",
            "pillow")  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, help="photos in the album (default 5000)")
    parser.add_argument("--size-kb", type=int, default=20, help="mean photo size (default 20)")
    parser.add_argument("--large", type=int, default=0, help="files over the multipart threshold")
    parser.add_argument("--large-mb", type=int, default=12, help="size of each large file")
    parser.add_argument("--repeat", type=int, help="runs of each contender (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 500 photos, 1 repeat")
    parser.add_argument(
        "--only",
        default=",".join(ALL),
        help=f"contenders, comma-separated (default all: {','.join(ALL)})",
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
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args(argv)
    args.photos = args.photos or (500 if args.quick else 5000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(ALL)
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    return args


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

    def objects_in_bucket(self) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        return sum(len(page.get("Contents", ())) for page in pages)

    def measure(self, contender, phase: str, repeat: int):
        argv = contender.initial if phase == "initial" else contender.noop
        log = self.logs / f"{contender.name.replace(' ', '_')}-{phase}-{repeat}.log"
        sample = run_process(argv, env=contender.env, cwd=REPO, log=log, server=self.server,
                             reads=self.reads, sizes=self.album.sizes)  # fmt: skip
        if sample.exit_code != 0:
            sample.notes.append(f"exit code {sample.exit_code} (see {log})")
            print(log.read_text()[-2000:], file=sys.stderr)
        stored = self.objects_in_bucket()
        if stored != self.album.count:
            sample.notes.append(f"bucket holds {stored} of {self.album.count} photos after it")
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
        "# Benchmark results",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command.strip()}`, {elapsed / 60:.1f} min.",
        f"Album: {album.count:,} files, {album.total_bytes / 1024 / 1024:.1f} MiB "
        f"(mean {args.size_kb} KB, {args.large} over the multipart threshold); "
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
        "## Targets (issue 4)",
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
    album = ensure_album(args.workdir, args.photos, args.size_kb, args.large, args.large_mb)
    print(f"album: {album.count:,} files, {album.total_bytes / 1024 / 1024:.1f} MiB "
          f"in {album.folder}", flush=True)  # fmt: skip
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
    found = targets_text(targets(results, album.count, FLOOR))
    print("\n" + summary + "\n\n" + found)
    args.out.write_text(results_text(args, album, summary, found, time.monotonic() - started))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
