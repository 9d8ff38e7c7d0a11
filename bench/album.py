"""The synthetic datasets: deterministic JPEG files in album folders, generated once and reused.

Each photo is a small real JPEG (so Pillow finds a size and an EXIF date, as it would in a
camera file) followed by seeded random bytes up to its size: the same files on every run,
each with distinct, incompressible content. Large files pass the 8 MiB multipart threshold.

A dataset is what the tools sync: one album's folder (to `albums/<slug>/`), or the whole
PHOTOS_ROOT with a folder per album (to `albums/`). Folder names are their own slugs
(`event-0001`), so every tool writes the keys photosite writes.
"""

import io
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ALBUM_FOLDER = "bench-album"
KEY_PREFIX = "albums/"  # photosite's ALBUMS_KEY_PREFIX, with its slash
MTIME_BASE_NS = 1_577_836_800 * 10**9  # 2020-01-01: older than any upload, as on a real disk
BASES = 12
MIB = 1024 * 1024
MULTIPART_THRESHOLD = 8 * MIB  # boto3's, awscli's and photosite's default


@dataclass(frozen=True)
class Album:
    """A generated dataset: one album, or a PHOTOS_ROOT of many."""

    root: Path  # PHOTOS_ROOT
    folder: Path  # what the tools sync: the album's folder, or PHOTOS_ROOT itself
    prefix: str  # the key prefix `folder` maps to, as photosite lays keys out
    sizes: dict[str, int]  # path relative to `folder` -> bytes
    albums: int = 1

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def _base_jpeg(month: int) -> bytes:
    rng = random.Random(month)  # noqa: S311 - test data, not secrets
    image = Image.new("RGB", (160, 120), tuple(rng.randrange(256) for _ in range(3)))
    exif = Image.Exif()
    exif[306] = f"2019:{month:02d}:15 12:00:00"  # DateTime, read by the sync's media step
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def _spread(mean: int, seed: int) -> int:
    """75 % to 125 % of the mean, the same on every run."""
    return int(mean * (0.75 + 0.5 * random.Random(seed).random()))  # noqa: S311


def _layout(photos: int, size_kb: int, large: int, large_mb: int) -> dict[str, int]:
    """Relative path -> size: two folder levels (year/month), about 40 photos a folder at 5k."""
    sizes = {}
    for index in range(photos - large):
        path = f"{2015 + index % 10}/{1 + (index // 10) % 12:02d}/IMG_{index:06d}.jpg"
        sizes[path] = _spread(size_kb * 1024, index)
    for index in range(large):
        sizes[f"large/DSC_{index:04d}.jpg"] = large_mb * MIB + index * 4099
    return sizes


def albums_layout(albums: int, photos: int, size_kb: int) -> dict[str, int]:
    """A folder per event under PHOTOS_ROOT (event-0001, ...), flat, `photos` in each."""
    sizes = {}
    for album in range(albums):
        for index in range(photos):
            seed = album * photos + index
            sizes[f"event-{album + 1:04d}/IMG_{index + 1:04d}.jpg"] = _spread(size_kb * 1024, seed)
    return sizes


def sizes_layout(photos: int, size_mb: int, large: int, large_mb: int) -> dict[str, int]:
    """One flat album: `photos` camera JPEGs of about `size_mb`, then `large` of `large_mb`."""
    sizes = {f"IMG_{i + 1:04d}.jpg": _spread(size_mb * MIB, i) for i in range(photos)}
    for index in range(large):
        sizes[f"DSC_{index + 1:04d}.jpg"] = large_mb * MIB + index * 4099
    return sizes


def raw_layout(files: int, low_mb: int, high_mb: int) -> dict[str, int]:
    """One flat album of RAW-sized files, spread evenly from `low_mb` to `high_mb`."""
    step = (high_mb - low_mb) * MIB // max(1, files - 1)
    return {f"RAW_{i + 1:04d}.dng": low_mb * MIB + i * step + i * 4099 for i in range(files)}


def _write(path: Path, head: bytes, size: int, seed: int, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    padding = random.Random(seed).randbytes(max(0, size - len(head)))  # noqa: S311
    path.write_bytes((head + padding)[:size])
    os.utime(path, ns=(mtime_ns, mtime_ns))


def ensure(home: Path, sizes: dict[str, int], *, album_folder: str | None, albums: int) -> Album:
    """The dataset at `home`, generated unless an identical one is already there.

    With `album_folder`, the files form that one album; without, their first path element
    is the album folder under PHOTOS_ROOT.
    """
    manifest = home / "manifest.json"  # outside PHOTOS_ROOT, so no tool uploads it
    root = home / "photos"
    folder = root / album_folder if album_folder else root
    prefix = KEY_PREFIX + (f"{album_folder}/" if album_folder else "")
    found = Album(root, folder, prefix, sizes, albums)
    if manifest.exists() and json.loads(manifest.read_text()) == sizes:
        return found
    shutil.rmtree(home, ignore_errors=True)
    heads = [_base_jpeg(month) for month in range(1, BASES + 1)]
    for seed, (relative, size) in enumerate(sizes.items()):
        _write(folder / relative, heads[seed % BASES], size, seed, MTIME_BASE_NS + seed * 10**9)
    manifest.write_text(json.dumps(sizes))
    return found


def ensure_album(workdir: Path, photos: int, size_kb: int, large: int, large_mb: int) -> Album:
    """The single album for these options (bench-album/<year>/<month>/)."""
    home = workdir / f"album-{photos}x{size_kb}k-{large}x{large_mb}m"
    sizes = _layout(photos, size_kb, large, large_mb)
    return ensure(home, sizes, album_folder=ALBUM_FOLDER, albums=1)
