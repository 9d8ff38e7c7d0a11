"""Settings accessors for the albums app.

Each accessor reads its setting when it is used and raises ImproperlyConfigured naming the
offending value, so a bad environment variable fails the run that reads it, clearly.
"""

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pathspec import GitIgnoreSpec

# JPEG, PNG, GIF, WebP, HEIC/HEIF, AVIF, TIFF and the common camera RAW formats.
DEFAULT_PHOTO_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".heic", ".heif", ".avif",
        ".tif", ".tiff", ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf",
        ".sr2", ".orf", ".rw2", ".raf", ".pef", ".srw", ".x3f", ".erf", ".3fr", ".iiq",
        ".mos", ".mrw", ".kdc", ".rwl",
    }
)  # fmt: skip


def _whole_number(name: str, value, *, minimum: int, example: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of at least {minimum}, such as {example}, "
            f"not {value!r}."
        )
    return number


def _positive_int(name: str, value, example: int) -> int:
    return _whole_number(name, value, minimum=1, example=example)


def photos_root() -> Path:
    return Path(settings.PHOTOS_ROOT).expanduser().resolve()


def batch_size() -> int:
    return _positive_int(
        "ALBUMS_SYNC_BATCH_SIZE", getattr(settings, "ALBUMS_SYNC_BATCH_SIZE", 10), example=10
    )


def workers() -> int:
    return _positive_int(
        "ALBUMS_SYNC_WORKERS", getattr(settings, "ALBUMS_SYNC_WORKERS", 64), example=64
    )


def lease_seconds() -> int:
    return _positive_int(
        "ALBUMS_SYNC_LEASE_SECONDS",
        getattr(settings, "ALBUMS_SYNC_LEASE_SECONDS", 300),
        example=300,
    )


def settle_seconds() -> int:
    """Files modified more recently than this are watched until they stop changing, for at
    most this long, before they are synced (0: never watched)."""
    value = getattr(settings, "ALBUMS_SETTLE_SECONDS", 5)
    return _whole_number("ALBUMS_SETTLE_SECONDS", value, minimum=0, example=5)


def max_delete() -> int:
    return _positive_int(
        "ALBUMS_MAX_DELETE", getattr(settings, "ALBUMS_MAX_DELETE", 1000), example=1000
    )


def move_window_days() -> int:
    """How long a photo gone from an album (in a run without --prune) is remembered by its
    content, so that another album finding it copies its object rather than uploading it."""
    value = getattr(settings, "ALBUMS_MOVE_WINDOW_DAYS", 90)
    return _whole_number("ALBUMS_MOVE_WINDOW_DAYS", value, minimum=0, example=90)


def key_prefix() -> str:
    prefix = str(getattr(settings, "ALBUMS_KEY_PREFIX", "albums")).strip("/")
    if not prefix or any(part in {".", ".."} for part in prefix.split("/")):
        raise ImproperlyConfigured(
            f"ALBUMS_KEY_PREFIX must be a plain path such as albums or photos/family, "
            f"not {prefix!r}."
        )
    return prefix


def photo_extensions() -> frozenset[str]:
    """Lower-case extensions with their dot; matched case-insensitively.

    A list that starts with "+" adds to the defaults ("+xmp,mov" syncs sidecars and videos
    too); any other list replaces them."""
    value = getattr(settings, "ALBUMS_PHOTO_EXTENSIONS", "")
    if not value:
        return DEFAULT_PHOTO_EXTENSIONS
    base = frozenset()
    if isinstance(value, str):
        if value.lstrip().startswith("+"):
            base, value = DEFAULT_PHOTO_EXTENSIONS, value.lstrip()[1:]
        value = value.replace(",", " ").split()
    extensions = frozenset("." + ext.lower().lstrip(".") for ext in value if ext.strip("."))
    if not extensions:
        raise ImproperlyConfigured(
            f"ALBUMS_PHOTO_EXTENSIONS must list extensions such as 'jpg heic dng', not {value!r}."
        )
    return base | extensions


def exclude_patterns() -> tuple[str, ...]:
    """ALBUMS_EXCLUDE: gitignore-style patterns, matched against the paths inside every
    album, separated by commas or new lines (a list in the settings file works too)."""
    value = getattr(settings, "ALBUMS_EXCLUDE", "") or ""
    lines = value.replace(",", "\n").splitlines() if isinstance(value, str) else value
    patterns = tuple(line.strip() for line in lines if line.strip())
    for pattern in patterns:
        if problem := pattern_problem(pattern):
            raise ImproperlyConfigured(f"ALBUMS_EXCLUDE: {problem}")
    return patterns


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a gitignore-style pattern pathspec can use, or None if it is."""
    try:
        GitIgnoreSpec.from_lines([pattern], backend="simple")
    except re.error as exc:  # a bracket expression pathspec passes on, e.g. "[z-a]"
        reason = exc.msg
    except ValueError as exc:  # pathspec's GitIgnorePatternError, e.g. "a\\" or "!"
        reason = str(exc.__cause__ or exc).split(":")[0].rstrip(".").lower()
    else:
        return None
    return f"{pattern!r} is not a valid gitignore-style pattern ({reason})."


def sync_interval_minutes() -> int:
    return _positive_int(
        "ALBUMS_SYNC_INTERVAL_MINUTES",
        getattr(settings, "ALBUMS_SYNC_INTERVAL_MINUTES", 60),
        example=60,
    )


def thumbnail_dir() -> Path:
    default = Path(settings.BASE_DIR) / "var" / "thumbnails"
    return Path(getattr(settings, "ALBUMS_THUMBNAIL_DIR", default)).expanduser()


def alerts_enabled() -> bool:
    """ALBUMS_ALERTS: whether the admins are emailed about failing background syncs
    (photosite.settings reads it with the other flags, naming a bad value at start-up)."""
    return bool(getattr(settings, "ALBUMS_ALERTS", True))


def queue_retry_seconds() -> int:
    """How long django-q2 waits before delivering an unacknowledged task again."""
    return _positive_int("Q_CLUSTER['retry']", settings.Q_CLUSTER.get("retry", 60), example=22200)


def task_timeout_seconds() -> float | None:
    """Q_TIMEOUT: how long django-q2 lets a task run before it stops it (None: never)."""
    value = settings.Q_CLUSTER.get("timeout")
    if value is None:
        return None
    return float(_positive_int("Q_CLUSTER['timeout']", value, example=21600))


# What a background sync keeps of the task timeout for itself: the uploads in flight when its
# budget is spent finish and are recorded, and the rest is queued, in the last quarter.
TASK_BUDGET_SHARE = 0.75


def task_budget_seconds() -> float | None:
    """How long a background sync (a task of the worker) goes on before it stops cleanly and
    queues the rest as a run of its own: ALBUMS_TASK_BUDGET_SECONDS, by default three
    quarters of Q_TIMEOUT; always below Q_TIMEOUT. None: no task timeout, no budget."""
    timeout = task_timeout_seconds()
    value = getattr(settings, "ALBUMS_TASK_BUDGET_SECONDS", "")
    if value in ("", None):
        return None if timeout is None else timeout * TASK_BUDGET_SHARE
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or not 0 < seconds < (timeout or float("inf")):
        below = f" and below Q_TIMEOUT ({timeout:g})" if timeout is not None else ""
        example = f"{timeout * TASK_BUDGET_SHARE:g}" if timeout is not None else "16200"
        raise ImproperlyConfigured(
            f"ALBUMS_TASK_BUDGET_SECONDS must be a number of seconds above 0{below}, such as "
            f"{example}, or empty for three quarters of Q_TIMEOUT; not {value!r}."
        )
    return seconds


# Web renditions (albums.renditions): the formats photosite can write, with their default
# quality (chosen by measurement: bench/RESULTS-renditions.md).
RENDITION_FORMATS = {"webp": 80, "jpeg": 82, "avif": 60}


def renditions_enabled() -> bool:
    """ALBUMS_RENDITIONS: whether syncs make web renditions of photos (photosite.settings
    reads the flag at start-up, naming a bad value)."""
    return bool(getattr(settings, "ALBUMS_RENDITIONS", True))


def rendition_sizes() -> tuple[int, ...]:
    """ALBUMS_RENDITION_SIZES: the long edge of each rendition, in pixels, smallest first
    (the first is the thumbnail, the last the display size)."""
    value = getattr(settings, "ALBUMS_RENDITION_SIZES", "400,2048")
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    try:
        sizes = tuple(sorted({int(part) for part in parts}))
    except (TypeError, ValueError):
        sizes = ()
    if not sizes or not sizes[0] >= 16 or sizes[-1] > 8192:
        raise ImproperlyConfigured(
            f"ALBUMS_RENDITION_SIZES must list long edges from 16 to 8192 pixels, such as "
            f"'400,2048', not {value!r}."
        )
    return sizes


def rendition_format() -> str:
    value = str(getattr(settings, "ALBUMS_RENDITION_FORMAT", "webp")).strip().lower()
    value = "jpeg" if value == "jpg" else value
    if value not in RENDITION_FORMATS:
        raise ImproperlyConfigured(
            f"ALBUMS_RENDITION_FORMAT must be one of {', '.join(RENDITION_FORMATS)}, not {value!r}."
        )
    return value


def rendition_quality() -> int:
    """ALBUMS_RENDITION_QUALITY: 1-100; empty for the format's own default."""
    value = (
        getattr(settings, "ALBUMS_RENDITION_QUALITY", "") or RENDITION_FORMATS[rendition_format()]
    )
    quality = _positive_int("ALBUMS_RENDITION_QUALITY", value, example=80)
    if quality > 100:
        raise ImproperlyConfigured(
            f"ALBUMS_RENDITION_QUALITY must be from 1 to 100, such as 80, not {value!r}."
        )
    return quality


def renditions_per_run() -> int:
    """How many photos synced before renditions existed a sync renders, per album and run
    (render_albums renders them all)."""
    value = getattr(settings, "ALBUMS_RENDITIONS_PER_RUN", 200)
    return _whole_number("ALBUMS_RENDITIONS_PER_RUN", value, minimum=0, example=200)


def media_url() -> str:
    """ALBUMS_MEDIA_URL: a public base URL (a CDN, or the bucket's public address) under
    which the renditions' keys are served; empty to link to them by presigned URLs."""
    value = str(getattr(settings, "ALBUMS_MEDIA_URL", "") or "").strip()
    if value and not (value.startswith(("https://", "http://", "/")) and " " not in value):
        raise ImproperlyConfigured(
            f"ALBUMS_MEDIA_URL must be an http(s) address or a path, such as "
            f"https://cdn.example.com/, not {value!r}."
        )
    return value.rstrip("/") + "/" if value else ""
