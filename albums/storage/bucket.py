"""A run's view of the bucket, through Django's Storage API or, on S3, one boto3 client.

The sync uses `size()`, `save()` and `delete()` on the "photos" storage alias, which every
backend has (StorageBucket). Where the backend is django-storages' S3Storage, the fast path
(S3Bucket) does the same through one boto3 client per run, configured as the storage
configures its own: one listing of an album's prefix instead of a HEAD per photo, uploads
without a transfer manager per file, and the clean-up of unfinished multipart uploads.
"""

import base64
import hashlib
import posixpath
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.storage import Storage
from storages.backends.s3 import S3Storage

from ..exceptions import StorageError
from .watch import EndpointWatch, UploadHeard, UploadProgress

RENAMED_BY_STORAGE = "The storage saved {key!r} as {saved!r}; configure it to overwrite (AWS_S3_FILE_OVERWRITE=True)."


@dataclass(frozen=True, slots=True)
class RemoteObject:
    size: int
    etag: str = ""


class StorageBucket:
    """The bucket through the Storage API: what every backend supports."""

    can_list = False
    multipart_threshold = None

    def __init__(self, storage: Storage):
        self.storage = storage
        # Hears nothing unless a subclass attaches it to its client: then any request that
        # gets no answer stops the run, as nothing says the storage answers at all.
        self.endpoint = EndpointWatch()

    def list_pages(
        self, prefix: str, *, page_size: int
    ) -> Iterator[list[tuple[str, RemoteObject]]]:
        raise NotImplementedError("this storage lists one folder level at a time")

    def size(self, key: str) -> RemoteObject | None:
        """The object under `key`, or None when absent.

        `size()` rather than `exists()`: the same single request on S3, and the answer also
        tells a truncated object from a whole one. Storages raise FileNotFoundError for a
        missing key; any other error is raised.
        """
        try:
            return RemoteObject(size=self.storage.size(key))
        except FileNotFoundError:
            return None

    def upload(self, key: str, file, *, size: int, content_type: str) -> None:
        content = File(file, name=key)
        content.content_type = content_type
        saved = self.storage.save(key, content)
        if saved != key:
            self.storage.delete(saved)  # a renamed second copy this call just made
            raise StorageError(RENAMED_BY_STORAGE.format(key=key, saved=saved))

    def delete(self, key: str) -> None:
        self.storage.delete(key)

    def abort_unfinished_uploads(self, prefix: str) -> int:
        return 0

    def close(self) -> None:
        pass


class S3Bucket(StorageBucket):
    """Fast path (S3Storage): listings, uploads and deletes of a run through one boto3 client.

    - A listing of an album's prefix answers for 1,000 photos per request, where
      Storage.listdir() lists one level and exists() costs a HEAD per photo; where a HEAD
      per photo is cheaper, it goes through the same client.
    - S3Storage.save() builds a resource object and a TransferManager, with threads of its
      own, for every file: more CPU than the upload of a 20 KB photo. Here a file below the
      multipart threshold goes up in one PutObject, streamed from disk with a Content-MD5 so
      that the server rejects a corrupted body (botocore's own checksums are off for most
      S3-compatible endpoints); a larger one goes up in parts through one manager per run.
    - The client skips botocore's parsing of dates, which the sync never reads: it is
      nearly half the cost of parsing a listing.
    - `endpoint` (albums.storage.watch) hears every answer of the client and every block
      of an upload the endpoint takes: the evidence for telling one file's bad luck from an
      endpoint that stopped answering, and what ends the retries of a silent one.
    """

    can_list = True

    def __init__(self, storage: S3Storage, *, workers: int):
        super().__init__(storage)
        self.client = _client_for(storage)  # thread-safe: shared by the pool
        self.endpoint.attach(self.client)
        self.name = storage.bucket_name
        self.location = storage.location.strip("/")
        config = storage.transfer_config
        self.multipart_threshold = config.multipart_threshold
        self._manager_config = TransferConfig(
            multipart_threshold=config.multipart_threshold,
            multipart_chunksize=config.multipart_chunksize,
            max_concurrency=workers,
        )
        self._manager = None
        self._lock = threading.Lock()

    def list_pages(
        self, prefix: str, *, page_size: int
    ) -> Iterator[list[tuple[str, RemoteObject]]]:
        """Every object under `prefix`, one request (`page_size` objects) per page, as (name,
        object) pairs in S3's order: UTF-8 byte order of the keys, which is the code point
        order of the names. A page is fetched only when the one before it has been taken."""
        strip = len(self.location) + 1 if self.location else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self._key(prefix), PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            yield [
                (
                    entry["Key"][strip:],
                    RemoteObject(entry["Size"], entry.get("ETag", "").strip('"')),
                )
                for entry in page.get("Contents", ())
            ]

    def size(self, key: str) -> RemoteObject | None:
        """One HEAD; a 404 is "absent", a 403 is raised (never read as "missing")."""
        try:
            head = self.client.head_object(Bucket=self.name, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return RemoteObject(size=head["ContentLength"], etag=head.get("ETag", "").strip('"'))

    def upload(self, key: str, file, *, size: int, content_type: str) -> None:
        name = self._key(key)
        params = self.storage.get_object_parameters(name)
        params.setdefault("ContentType", content_type)
        if "ACL" not in params and self.storage.default_acl:
            params["ACL"] = self.storage.default_acl
        if size < self.multipart_threshold:
            md5 = hashlib.file_digest(file, "md5").digest()
            file.seek(0)
            self.client.put_object(
                Bucket=self.name,
                Key=name,
                Body=UploadHeard(file, self.endpoint),
                ContentMD5=base64.b64encode(md5).decode(),
                **params,
            )
        else:
            upload = self._transfer_manager().upload(
                file,
                self.name,
                name,
                extra_args=params,
                subscribers=[UploadProgress(self.endpoint)],
            )
            upload.result()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=self._key(key))

    def abort_unfinished_uploads(self, prefix: str) -> int:
        """Abort the multipart uploads left under `prefix` by a killed run: their parts are
        billed until then. The caller holds the album's lease, so no other sync of the album
        is uploading: every unfinished upload under its prefix is stale."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.name, Prefix=self._key(prefix)
        )
        for page in pages:
            for upload in page.get("Uploads", ()):
                self.client.abort_multipart_upload(
                    Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted

    def close(self) -> None:
        if self._manager is not None:
            self._manager.shutdown()

    def _transfer_manager(self):
        with self._lock:  # made on first use: most runs have no file large enough
            if self._manager is None:
                self._manager = create_transfer_manager(self.client, self._manager_config)
            return self._manager

    def _key(self, name: str) -> str:
        return posixpath.join(self.location, name) if self.location else name


def open_bucket(storage: Storage, *, workers: int) -> StorageBucket:
    """The bucket of a run: the S3 fast path where the storage is S3Storage."""
    if isinstance(storage, S3Storage):
        return S3Bucket(storage, workers=workers)
    return StorageBucket(storage)


def _client_for(storage: S3Storage):
    """A boto3 S3 client configured as `storage` configures its own (S3Storage.connection)."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=str  # dates stay as the text the server sent
    )
    if storage.session_profile:
        boto = boto3.Session(profile_name=storage.session_profile, botocore_session=session)
    else:
        boto = boto3.Session(
            aws_access_key_id=storage.access_key,
            aws_secret_access_key=storage.secret_key,
            aws_session_token=storage.security_token,
            botocore_session=session,
        )
    return boto.client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=storage.client_config,
        verify=storage.verify,
    )
