"""The table (every figure beside its ratio to the floor), the targets, and RESULTS.md."""

import math
import statistics
from dataclasses import dataclass

from measure import Sample

PHASES = (("initial", "initial"), ("noop", "no-op"))
SHORT_OPS = {
    "PutObject": "PUT",
    "HeadObject": "HEAD",
    "ListObjectsV2": "LISTv2",
    "ListObjects": "LIST",
    "GetObject": "GET",
    "CreateMultipartUpload": "MPU-create",
    "UploadPart": "MPU-part",
    "CompleteMultipartUpload": "MPU-complete",
    "GetBucketLocation": "location",
    "HeadBucket": "HEAD-bucket",
}
MIB = 1024 * 1024


@dataclass
class Summary:
    """One contender's phase over the repeats: medians, and the wall-time spread."""

    samples: list[Sample]

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(s, attribute) for s in self.samples)

    @property
    def wall(self) -> float:
        return self.median("wall")

    @property
    def spread(self) -> tuple[float, float]:
        walls = [s.wall for s in self.samples]
        return min(walls), max(walls)

    @property
    def requests(self) -> float:
        return self.median("request_total")

    def operations(self) -> str:
        return self._breakdown("requests", SHORT_OPS) or "none"

    def query_kinds(self) -> str:
        return self._breakdown("query_kinds", {})

    def _breakdown(self, attribute: str, short: dict[str, str]) -> str:
        """Median count of each kind over the repeats, e.g. "LISTv2 5, PUT 5,000"."""
        names = sorted({name for s in self.samples for name in getattr(s, attribute)})
        parts = []
        for name in names:
            value = statistics.median(getattr(s, attribute).get(name, 0) for s in self.samples)
            parts.append(f"{short.get(name, name)} {value:,.0f}")
        return ", ".join(parts)

    @property
    def queries(self) -> float | None:
        values = [s.queries for s in self.samples if s.queries is not None]
        return statistics.median(values) if values else None

    @property
    def max_queries(self) -> int | None:
        values = [s.queries for s in self.samples if s.queries is not None]
        return max(values) if values else None

    @property
    def max_photo_bytes(self) -> int:
        return max(s.photo_bytes for s in self.samples)

    @property
    def max_rss(self) -> float:
        return max(s.rss_mib for s in self.samples)

    @property
    def notes(self) -> list[str]:
        return sorted({note for s in self.samples for note in s.notes})


def ratio(value, floor) -> str:
    if value is None or not floor:
        return "-"
    return f"x{value / floor:.2f}"


def with_ratio(text: str, value, floor) -> str:
    return f"{text} ({ratio(value, floor)})"


def row(name: str, phase: str, mine: Summary, floor: Summary) -> list[str]:
    low, high = mine.spread
    queries = mine.queries
    photo = mine.median("photo_bytes")
    return [
        name,
        phase,
        with_ratio(f"{mine.wall:.2f} s [{low:.2f}-{high:.2f}]", mine.wall, floor.wall),
        with_ratio(f"{mine.median('cpu'):.2f} s", mine.median("cpu"), floor.median("cpu")),
        with_ratio(f"{mine.requests:,.0f}", mine.requests, floor.requests),
        mine.operations(),
        "-" if queries is None else f"{queries:,.0f} ({mine.query_kinds()})",
        with_ratio(
            f"{mine.median('photo_files_read'):,.0f} / {photo / MIB:.1f} MiB",
            photo,
            floor.median("photo_bytes"),
        ),
        with_ratio(f"{mine.median('rchar') / MIB:.1f} MiB", mine.median("rchar"),
                   floor.median("rchar")),
        with_ratio(f"{mine.median('rss_mib'):.0f} MiB", mine.median("rss_mib"),
                   floor.median("rss_mib")),
    ]  # fmt: skip


HEADER = [
    "contender", "run", "wall: median [min-max]", "CPU (user+sys)", "S3 requests", "by operation",
    "DB queries", "photo files read / bytes", "all bytes read (rchar)", "peak RSS",
]  # fmt: skip


def table(results: dict[str, dict[str, Summary]], floor_name: str) -> str:
    rows = []
    for phase, label in PHASES:
        floor = results[floor_name][phase]
        for name, phases in results.items():
            rows.append(row(name, label, phases[phase], floor))
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


@dataclass
class Target:
    text: str
    status: str  # PASS, FAIL or "not checked"
    detail: str


def _check(text: str, ok: bool | None, detail: str) -> Target:
    status = "not checked" if ok is None else ("PASS" if ok else "FAIL")
    return Target(text, status, detail)


def _faster_than(mine: Summary, results, phase: str, names) -> Target:
    found = {n: results[n][phase].wall for n in names if n in results}
    detail = ", ".join(f"{n} {w:.2f} s" for n, w in found.items()) or "neither measured"
    ok = all(mine.wall < w for w in found.values()) if found else None
    return _check(f"{dict(PHASES)[phase]}: faster than {' and '.join(names)}",
                  ok, f"sync_albums {mine.wall:.2f} s vs {detail}")  # fmt: skip


def targets(results, photos: int, floor_name: str) -> list[Target]:
    if "sync_albums" not in results:
        return []
    sync = results["sync_albums"]
    init, noop = sync["initial"], sync["noop"]
    floor = results[floor_name]
    tools = ("aws s3 sync", "rclone copy")
    limit = math.ceil(photos / 1000) + 3
    out = [
        _check(f"no-op: S3 requests ≤ ceil(photos / 1000) + 3 = {limit}",
               noop.requests <= limit, f"{noop.requests:,.0f} ({noop.operations()})"),
        _check("no-op: zero bytes of photo content read", noop.max_photo_bytes == 0,
               f"{noop.max_photo_bytes:,} bytes at most"),
        _check("no-op: wall ≤ 1.3 x bare-listing floor", noop.wall <= 1.3 * floor["noop"].wall,
               f"{noop.wall:.2f} s = {ratio(noop.wall, floor['noop'].wall)}"),
        _faster_than(noop, results, "noop", tools),
    ]  # fmt: skip
    if "seed design" in results:
        seed = results["seed design"]["noop"].wall
        out.append(
            _check(
                "no-op: ≥ 6 x faster than the seed design",
                seed >= 6 * noop.wall,
                f"{seed / noop.wall:.1f} x faster ({seed:.2f} s vs {noop.wall:.2f} s)",
            )
        )
    else:
        out.append(_check("no-op: ≥ 6 x faster than the seed design", None, "seed not run"))
    out += [
        _check("initial: wall ≤ 1.1 x raw-upload floor", init.wall <= 1.1 * floor["initial"].wall,
               f"{init.wall:.2f} s = {ratio(init.wall, floor['initial'].wall)}"),
        _faster_than(init, results, "initial", tools),
    ]  # fmt: skip
    most = max(init.max_queries or 0, noop.max_queries or 0)
    query_limit = photos / 500 + 30
    out.append(
        _check(
            f"DB queries per run ≤ photos / 500 + 30 = {query_limit:g}",
            most <= query_limit,
            f"initial {init.max_queries}, no-op {noop.max_queries} (largest run)",
        )
    )
    rss = max(init.max_rss, noop.max_rss)
    checked = photos >= 50_000
    out.append(_check("peak RSS ≤ 150 MiB at 50,000 photos", rss <= 150 if checked else None,
                      f"{rss:.0f} MiB at {photos:,} photos"
                      + ("" if checked else " (run with --photos 50000 to check)")))  # fmt: skip
    return out


# Issue 11's targets, for the shapes real libraries have (bench/shapes.py).

RSS_BOUND_MIB = 150  # issue 4's bound at 50,000 photos; issue 11: flat in photos and albums
LISTINGS = ("ListObjectsV2", "ListObjects")


def _vs_aws(mine: Summary, results, phase: str, *, strict: bool) -> Target:
    word = "faster than" if strict else "no slower than"
    text = f"{dict(PHASES)[phase]}: {word} aws s3 sync"
    if "aws s3 sync" not in results:
        return _check(text, None, "aws s3 sync not run")
    theirs = results["aws s3 sync"][phase].wall
    ok = mine.wall < theirs if strict else mine.wall <= theirs
    return _check(text, ok, f"sync_albums {mine.wall:.2f} s vs aws s3 sync {theirs:.2f} s "
                            f"({ratio(mine.wall, theirs)})")  # fmt: skip


def _within_floor(mine: Summary, floor: Summary, phase: str, factor: float) -> Target:
    what = "raw-upload floor" if phase == "initial" else "bare-listing floor"
    return _check(f"{dict(PHASES)[phase]}: wall ≤ {factor:g} x {what}",
                  mine.wall <= factor * floor.wall,
                  f"{mine.wall:.2f} s = {ratio(mine.wall, floor.wall)} "
                  f"(floor {floor.wall:.2f} s)")  # fmt: skip


def _no_photo_reads(noop: Summary) -> Target:
    return _check("no-op: zero bytes of photo content read (issue 4, kept)",
                  noop.max_photo_bytes == 0, f"{noop.max_photo_bytes:,} bytes at most")  # fmt: skip


def _flat_memory(init: Summary, noop: Summary, album) -> Target:
    rss = max(init.max_rss, noop.max_rss)
    return _check(f"peak RSS ≤ {RSS_BOUND_MIB} MiB (issue 4's bound; issue 11: flat in "
                  "photos and albums)", rss <= RSS_BOUND_MIB,
                  f"{rss:.0f} MiB at {album.count:,} files in {album.albums:,} "
                  f"album{'s' if album.albums > 1 else ''}")  # fmt: skip


def _count(value: int | None) -> str:
    return "not counted" if value is None else f"{value:,}"


def many_albums_targets(results, album, floor_name: str) -> list[Target]:
    """Issue 11, many albums: costs that scale with photos, not with albums."""
    if "sync_albums" not in results:
        return []
    init, noop = results["sync_albums"]["initial"], results["sync_albums"]["noop"]
    floor = results[floor_name]
    limit = math.ceil(album.count / 1000) + 3
    listings = statistics.median(
        sum(s.requests.get(op, 0) for op in LISTINGS) for s in noop.samples
    )
    most = max(init.max_queries or 0, noop.max_queries or 0)
    query_limit = 5 * album.albums + 30
    return [
        _check(f"no-op: listing requests ≤ ceil(photos / 1000) + 3 = {limit}",
               listings <= limit, f"{listings:,.0f} ({noop.operations()})"),
        _vs_aws(noop, results, "noop", strict=False),
        _no_photo_reads(noop),
        _within_floor(init, floor["initial"], "initial", 1.1),
        _vs_aws(init, results, "initial", strict=True),
        _check(f"DB queries per run ≤ 5 per album + 30 = {query_limit:,} (issue 11 sets it "
               "for 2,000 x 5)", most <= query_limit,
               f"initial {_count(init.max_queries)}, no-op {_count(noop.max_queries)} "
               "(largest run)"),
        _flat_memory(init, noop, album),
    ]  # fmt: skip


def real_size_targets(results, album, floor_name: str) -> list[Target]:
    """Issue 11, photos of 1-60 MB: read each file once, uploads as fast as the floor's."""
    if "sync_albums" not in results:
        return []
    init, noop = results["sync_albums"]["initial"], results["sync_albums"]["noop"]
    floor = results[floor_name]
    return [
        _within_floor(init, floor["initial"], "initial", 1.1),
        _vs_aws(init, results, "initial", strict=True),
        _within_floor(noop, floor["noop"], "noop", 1.2),
        _no_photo_reads(noop),
        _flat_memory(init, noop, album),
    ]


def targets_text(found: list[Target]) -> str:
    lines = [f"- **{t.status}** {t.text}: {t.detail}" for t in found]
    missed = [t.text for t in found if t.status == "FAIL"]
    if missed:
        lines.append("")
        lines.append(f"**{len(missed)} target(s) missed:** " + "; ".join(missed) + ".")
    return "\n".join(lines)
