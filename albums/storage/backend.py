"""The "photos" storage alias: opened for a run, described for messages, checked for keys."""

import re

from botocore.config import Config
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage

STORAGE_ALIAS = "photos"
S3_MAX_KEY_BYTES = 1024
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# A diagnosis is a handful of tiny requests: seconds to connect, seconds to answer each.
QUICK_TIMEOUTS = (3, 5)
QUICK_ATTEMPTS = 2


def open_photo_storage(*, workers: int, quick: bool = False) -> Storage:
    """A new instance of the "photos" storage for one sync run (or, `quick`, for a diagnosis,
    whose S3 client gives up sooner than a sync's: QUICK_TIMEOUTS, or less if the settings
    say less, and QUICK_ATTEMPTS).

    Built fresh (not `storages["photos"]`) so that the connection pool of its client
    configuration, which the run's S3 client takes, fits this run's worker count: a pool
    smaller than the requests in flight makes urllib3 drop connections ("Connection pool
    is full"). Overwriting is forced on: with AWS_S3_FILE_OVERWRITE=False, save() would
    store a second copy under a renamed key.
    """
    config = settings.STORAGES[STORAGE_ALIAS]
    backend = import_string(config["BACKEND"])
    options = dict(config.get("OPTIONS", {}))
    if issubclass(backend, S3Storage):
        # Each worker's request, plus the parts of the run's transfer manager (as many
        # threads as workers), plus the main thread's listing.
        pool = Config(max_pool_connections=2 * workers + 2)
        base = options.get("client_config")
        options["client_config"] = base.merge(pool) if base else pool
        if quick:
            options["client_config"] = options["client_config"].merge(
                _quick(options["client_config"])
            )
        options["file_overwrite"] = True
    elif issubclass(backend, FileSystemStorage):
        options["allow_overwrite"] = True
    return backend(**options)


def _quick(config: Config) -> Config:
    connect, read = QUICK_TIMEOUTS
    attempts = (config.retries or {}).get("total_max_attempts", QUICK_ATTEMPTS)
    return Config(
        connect_timeout=min(config.connect_timeout, connect),
        read_timeout=min(config.read_timeout, read),
        retries={"mode": "standard", "total_max_attempts": min(attempts, QUICK_ATTEMPTS)},
    )


def describe(storage: Storage) -> str:
    """Where the photos go, for messages: never includes a credential."""
    if isinstance(storage, S3Storage):
        where = f"bucket {storage.bucket_name!r}"
        if storage.endpoint_url:
            where += f" at {storage.endpoint_url}"
        return where
    if isinstance(storage, FileSystemStorage):
        return f"local folder {storage.location}"
    return type(storage).__name__


def key_problem(storage: Storage, key: str) -> str | None:
    """Why `key` cannot be stored byte for byte, or None if it can."""
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    if CONTROL_CHARACTER.search(key):
        # Legal in S3 keys, but XML listings and many S3-compatible services mangle them.
        return "the file name contains a control character (a tab or a line break)"
    if "\\" in key:
        # django-storages and FileSystemStorage both turn a backslash into a folder separator.
        return "the file name contains a backslash"
    if isinstance(storage, S3Storage) and len(encoded) > S3_MAX_KEY_BYTES:
        return f"the bucket key would be longer than S3's {S3_MAX_KEY_BYTES} bytes"
    return None
