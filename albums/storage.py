"""The bucket, seen through Django's Storage API.

The sync uses `size()`, `save()` and `delete()` on the "photos" storage alias, which every
backend has. Where the backend is django-storages' S3Storage, fast paths marked as such go
to its boto3 client: one listing of an album's prefix instead of a HEAD per photo, uploads
through one client and one transfer manager per run, and the clean-up of unfinished
multipart uploads.
"""

import base64
import hashlib
import posixpath
from dataclasses import dataclass

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage

from .exceptions import StorageError

STORAGE_ALIAS = "photos"
# s3transfer sends the parts of a multipart upload in parallel; keep that modest, as the
# sync already uploads several files at once.
TRANSFER_CONCURRENCY = 4
S3_MAX_KEY_BYTES = 1024
RENAMED_BY_STORAGE = "The storage saved {key!r} as {saved!r}; configure it to overwrite (AWS_S3_FILE_OVERWRITE=True)."


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


class StorageUploader:
    """Uploads through Storage.save(): what every backend supports."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def upload(self, key: str, file, *, size: int, content_type: str) -> None:
        content = File(file, name=key)
        content.content_type = content_type
        saved = self.storage.save(key, content)
        if saved != key:
            self.storage.delete(saved)  # a renamed second copy this call just made
            raise StorageError(RENAMED_BY_STORAGE.format(key=key, saved=saved))

    def close(self) -> None:
        pass


class S3Uploader:
    """Fast path (S3Storage): every upload of a run through one client and one transfer
    manager.

    S3Storage.save() builds a boto3 resource object and a TransferManager, with threads of
    its own, for every file, which costs more CPU than the upload of a 20 KB photo; and the
    pool's threads would each build a boto3 session. Here files below the multipart
    threshold go up in one PutObject, streamed from disk with a Content-MD5 so that the
    server rejects a corrupted body (botocore's own checksums are off for most
    S3-compatible endpoints); larger files go up in parts through the run's manager.
    """

    def __init__(self, storage: S3Storage, *, workers: int):
        self.storage = storage
        self.client = storage.connection.meta.client  # thread-safe: shared by the pool
        # Cache the bucket resource on this thread, so that size() and delete() called from
        # the pool share this client instead of building a boto3 session per thread.
        storage.bucket  # noqa: B018
        base = storage.transfer_config
        self.threshold = base.multipart_threshold
        self.manager = create_transfer_manager(
            self.client,
            TransferConfig(
                multipart_threshold=base.multipart_threshold,
                multipart_chunksize=base.multipart_chunksize,
                max_concurrency=workers,
            ),
        )

    def upload(self, key: str, file, *, size: int, content_type: str) -> None:
        name = _s3_key(self.storage, key)
        params = self.storage.get_object_parameters(name)
        params.setdefault("ContentType", content_type)
        if "ACL" not in params and self.storage.default_acl:
            params["ACL"] = self.storage.default_acl
        if size < self.threshold:
            md5 = hashlib.file_digest(file, "md5").digest()
            file.seek(0)
            self.client.put_object(
                Bucket=self.storage.bucket_name,
                Key=name,
                Body=file,
                ContentMD5=base64.b64encode(md5).decode(),
                **params,
            )
        else:
            upload = self.manager.upload(file, self.storage.bucket_name, name, extra_args=params)
            upload.result()

    def close(self) -> None:
        self.manager.shutdown()


def open_uploader(storage: Storage, *, workers: int) -> StorageUploader | S3Uploader:
    if isinstance(storage, S3Storage):
        return S3Uploader(storage, workers=workers)
    return StorageUploader(storage)


def _s3_key(storage: S3Storage, name: str) -> str:
    location = storage.location.strip("/")
    return posixpath.join(location, name) if location else name
