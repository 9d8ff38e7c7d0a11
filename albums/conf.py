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
        "ALBUMS_SYNC_WORKERS", getattr(settings, "ALBUMS_SYNC_WORKERS", 10), example=10
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
