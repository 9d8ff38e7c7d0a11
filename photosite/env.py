"""Reading settings from the environment: each value checked as it is read.

A malformed value raises ImproperlyConfigured naming the variable, the value and an example of
a good one; manage.py prints it as "Configuration error: …" and exits 1, without a traceback.
"""

import os
import re
import zoneinfo
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# botocore's own checks (botocore.utils.validate_region_name, botocore.handlers.VALID_BUCKET).
REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _malformed(name: str, value: str, wanted: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} must be {wanted}, not {value!r}.")


def flag(name: str, default: bool = False, *, environ=os.environ) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise _malformed(name, value, "true or false (or 1 or 0)")


def integer(name: str, default: int, *, minimum: int = 0, environ=os.environ) -> int:
    """A whole number of at least `minimum`; the default is the example."""
    value = environ.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise _malformed(name, value, f"a whole number of at least {minimum}, such as {default}")
    return number


def choice(name: str, default: str, choices: tuple[str, ...], *, environ=os.environ) -> str:
    value = environ.get(name, "") or default
    if value.lower() not in {choice.lower() for choice in choices}:
        raise _malformed(name, value, "one of " + ", ".join(choices))
    return value.lower()


def url(name: str, *, schemes: tuple[str, ...], example: str, environ=os.environ) -> str | None:
    """A URL with one of `schemes` and a host (None when unset)."""
    value = environ.get(name, "")
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    located = parts is not None and (parts.hostname or (parts.scheme == "unix" and parts.path))
    if not located or parts.scheme not in schemes:
        raise _malformed(name, value, f"a URL with its scheme, such as {example}")
    return value


def region(name: str, *, environ=os.environ) -> str | None:
    value = environ.get(name, "")
    if not value:
        return None
    if not REGION.fullmatch(value):
        raise _malformed(name, value, "a region name such as eu-west-1 or us-east-1")
    return value


def bucket(name: str, *, environ=os.environ) -> str:
    value = environ.get(name, "")
    if value and not BUCKET.fullmatch(value):
        raise _malformed(
            name, value, "a bucket name such as family-photos (letters, digits, '.', '-', '_')"
        )
    return value


def time_zone(name: str, default: str, *, environ=os.environ) -> str:
    value = environ.get(name, "") or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _malformed(name, value, "a time zone name such as Europe/Paris or UTC") from None
    return value


def log_level(name: str, default: str, *, environ=os.environ) -> str:
    return choice(name, default, LOG_LEVELS, environ=environ).upper()
