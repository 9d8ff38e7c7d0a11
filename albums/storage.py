"""The bucket, seen through Django's Storage API.

The sync uses `size()`, `save()` and `delete()` on the "photos" storage alias, which every
backend has. One fast path, marked as such, lists an album's prefix in one paginated
request stream where the backend is django-storages' S3Storage.
"""

import posixpath
from dataclasses import dataclass

from botocore.config import Config
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage

STORAGE_ALIAS = "photos"
# s3transfer sends the parts of a multipart upload in parallel; keep that modest, as the
# sync already uploads several files at once.
TRANSFER_CONCURRENCY = 4
S3_MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class RemoteObject:
    size: int
    etag: str = ""


def open_photo_storage(*, workers: int) -> Storage:
    """A new instance of the "photos" storage for one sync run.

    Built fresh (not `storages["photos"]`) so that its connection pool fits this run's
    worker count: django-storages caches one bucket resource per instance and every
    thread's save() goes through it, so a pool smaller than the workers makes urllib3
    drop connections ("Connection pool is full"). Overwriting is forced on: with
    AWS_S3_FILE_OVERWRITE=False, save() would store a second copy under a renamed key.
    """
    config = settings.STORAGES[STORAGE_ALIAS]
    backend = import_string(config["BACKEND"])
    options = dict(config.get("OPTIONS", {}))
    if issubclass(backend, S3Storage):
        from boto3.s3.transfer import TransferConfig

        pool = Config(max_pool_connections=workers * TRANSFER_CONCURRENCY + 2)
        base = options.get("client_config")
        options["client_config"] = base.merge(pool) if base else pool
        options.setdefault("transfer_config", TransferConfig(max_concurrency=TRANSFER_CONCURRENCY))
        options["file_overwrite"] = True
    elif issubclass(backend, FileSystemStorage):
        options["allow_overwrite"] = True
    return backend(**options)


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
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        # Legal in S3 keys, but XML listings and many S3-compatible services mangle them.
        return "the file name contains a control character (a tab or a line break)"
    if "\\" in key:
        # django-storages and FileSystemStorage both turn a backslash into a folder separator.
        return "the file name contains a backslash"
    if isinstance(storage, S3Storage) and len(encoded) > S3_MAX_KEY_BYTES:
        return f"the bucket key would be longer than S3's {S3_MAX_KEY_BYTES} bytes"
    return None


def remote_size(storage: Storage, key: str) -> RemoteObject | None:
    """The object under `key`, or None when absent. One HEAD on S3.

    `size()` rather than `exists()`: the same single request on S3, and the answer also
    tells a truncated object from a whole one. S3Storage and FileSystemStorage both
    raise FileNotFoundError for a missing key; any other error (a 403 included) is raised.
    """
    try:
        return RemoteObject(size=storage.size(key))
    except FileNotFoundError:
        return None


def can_list(storage: Storage) -> bool:
    return isinstance(storage, S3Storage)


def list_prefix(storage: Storage, prefix: str) -> dict[str, RemoteObject]:
    """Fast path: every object under `prefix`, 1,000 keys per request (S3Storage only).

    Storage.listdir() lists one level per call, so this goes to the bucket's client.
    """
    location = storage.location.strip("/")
    full_prefix = posixpath.join(location, prefix) if location else prefix
    client = storage.connection.meta.client
    paginator = client.get_paginator("list_objects_v2")
    found = {}
    strip = len(location) + 1 if location else 0
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=full_prefix):
        for entry in page.get("Contents", ()):
            found[entry["Key"][strip:]] = RemoteObject(
                size=entry["Size"], etag=entry.get("ETag", "").strip('"')
            )
    return found


def multipart_threshold(storage: Storage) -> int | None:
    """Files from this size go up in parts (S3Storage only)."""
    if isinstance(storage, S3Storage):
        return storage.transfer_config.multipart_threshold
    return None


def abort_unfinished_uploads(storage: Storage, prefix: str) -> int:
    """Fast path (S3): abort the multipart uploads left under `prefix` by a killed run.

    Their parts are billed until aborted. The caller holds the album's lease, so no other
    sync of the album is uploading: every unfinished upload under its prefix is stale.
    """
    location = storage.location.strip("/")
    full_prefix = posixpath.join(location, prefix) if location else prefix
    client = storage.connection.meta.client
    aborted = 0
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=full_prefix):
        for upload in page.get("Uploads", ()):
            client.abort_multipart_upload(
                Bucket=storage.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            aborted += 1
    return aborted
