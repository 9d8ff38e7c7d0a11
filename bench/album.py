"""The synthetic album: deterministic JPEG files in nested folders, generated once and reused.

Each photo is a small real JPEG (so Pillow finds a size and an EXIF date, as it would in a
camera file) followed by seeded random bytes up to its size: the same files on every run,
each with distinct content. Large files pass the 8 MiB multipart threshold.
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
MTIME_BASE_NS = 1_577_836_800 * 10**9  # 2020-01-01: older than any upload, as on a real disk
BASES = 12


@dataclass(frozen=True)
class Album:
    root: Path  # PHOTOS_ROOT
    folder: Path  # the album's folder inside it
    sizes: dict[str, int]  # path relative to the folder -> bytes

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


def _layout(photos: int, size_kb: int, large: int, large_mb: int) -> dict[str, int]:
    """Relative path -> size: two folder levels (year/month), about 40 photos a folder at 5k."""
    sizes = {}
    for index in range(photos - large):
        # 75 % to 125 % of the mean, the same on every run.
        spread = 0.75 + 0.5 * random.Random(index).random()  # noqa: S311
        path = f"{2015 + index % 10}/{1 + (index // 10) % 12:02d}/IMG_{index:06d}.jpg"
        sizes[path] = int(size_kb * 1024 * spread)
    for index in range(large):
        sizes[f"large/DSC_{index:04d}.jpg"] = large_mb * 1024 * 1024 + index * 4099
    return sizes


def _write(path: Path, head: bytes, size: int, seed: int, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    padding = random.Random(seed).randbytes(max(0, size - len(head)))  # noqa: S311
    path.write_bytes((head + padding)[:size])
    os.utime(path, ns=(mtime_ns, mtime_ns))


def ensure_album(workdir: Path, photos: int, size_kb: int, large: int, large_mb: int) -> Album:
    """The album for these options, generated unless an identical one is already there."""
    home = workdir / f"album-{photos}x{size_kb}k-{large}x{large_mb}m"
    manifest = home / "manifest.json"  # outside the album folder, so no tool uploads it
    root = home / "photos"
    sizes = _layout(photos, size_kb, large, large_mb)
    if manifest.exists() and json.loads(manifest.read_text()) == sizes:
        return Album(root, root / ALBUM_FOLDER, sizes)
    shutil.rmtree(home, ignore_errors=True)
    heads = [_base_jpeg(month) for month in range(1, BASES + 1)]
    for seed, (relative, size) in enumerate(sizes.items()):
        target = root / ALBUM_FOLDER / relative
        _write(target, heads[seed % BASES], size, seed, MTIME_BASE_NS + seed * 10**9)
    manifest.write_text(json.dumps(sizes))
    return Album(root, root / ALBUM_FOLDER, sizes)
