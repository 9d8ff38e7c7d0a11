"""Reading settings from the environment: each value checked as it is read.

A malformed value raises ImproperlyConfigured naming the variable, the value and an example of
a good one; manage.py prints it as "Configuration error: …" and exits 1, without a traceback.
"""

import ipaddress
import os
import re
import zoneinfo
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

# botocore's own checks (botocore.utils.validate_region_name, botocore.handlers.VALID_BUCKET).
REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
NAMED_ADDRESS = re.compile(r"([^<>]*)<([^<>]*)>")
HOST = re.compile(r"[A-Za-z0-9._-]+")


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


def integer(
    name: str, default: int, *, minimum: int = 0, maximum: int | None = None, environ=os.environ
) -> int:
    """A whole number of at least `minimum` (and at most `maximum`); the default is the
    example."""
    value = environ.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise _malformed(name, value, f"a whole number {bounds}, such as {default}")
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


def email_address(name: str, default: str, *, environ=os.environ) -> str:
    """One address, bare or with a name: `photosite@example.org`, `photosite
    <photosite@example.org>`."""
    value = environ.get(name, "") or default
    if _address(value) is None:
        raise _malformed(
            name, value, "an email address such as photosite@example.org or "
            "'photosite <photosite@example.org>'"
        )  # fmt: skip
    return value


def email_addresses(name: str, *, environ=os.environ) -> list[tuple[str, str]]:
    """Comma-separated addresses, each bare or with a name, as Django's ADMINS wants them:
    (name, address) pairs. Empty when unset."""
    value = environ.get(name, "")
    pairs = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        pair = _address(entry)
        if pair is None:
            raise ImproperlyConfigured(
                f"{name} must be email addresses separated by commas, such as "
                f"'Ada <ada@example.org>, ops@example.org', not {value!r} ({entry!r} is not "
                "an email address)."
            )
        pairs.append(pair)
    return pairs


def host_name(name: str, default: str, *, example: str, environ=os.environ) -> str:
    """A host name or IP address alone: no scheme, port, path or space."""
    value = environ.get(name, "") or default
    if not HOST.fullmatch(value) and not _ipv6(value):
        raise _malformed(name, value, f"a host name alone, such as {example}")
    return value


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def _address(text: str) -> tuple[str, str] | None:
    """(name, address) of one address, bare or as `Name <address>`; None if it is not one."""
    match = NAMED_ADDRESS.fullmatch(text.strip())
    display, address = match.groups() if match else ("", text.strip())
    try:
        validate_email(address)
    except ValidationError:
        return None
    return display.strip().strip('"'), address
