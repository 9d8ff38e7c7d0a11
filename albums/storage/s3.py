"""The S3 fast path (django-storages' S3Storage): a run's view of the bucket through one
boto3 client per process (shared_client), configured as the storage configures its own: one
listing of an album's prefix instead of a HEAD per photo, uploads without a transfer manager
per file, deletes of up to 1,000 keys per request, and the clean-up of unfinished multipart
uploads. `open_bucket` chooses it, or the Storage API's StorageBucket (albums.storage.bucket).
"""

import base64
import io
import posixpath
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import ClientError
from django.core.files.storage import Storage
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.subscribers import BaseSubscriber
from s3transfer.utils import ChunksizeAdjuster
from storages.backends.s3 import S3Storage

from .bucket import (
    COPY_IN_ONE_REQUEST,
    DOWNLOAD_CHUNK,
    MTIME_METADATA,
    OBJECT_CHANGED,
    SMALL_FILE,
    DeletesUnsupported,
    Downloaded,
    ObjectChanged,
    RemoteObject,
    StorageBucket,
)
from .clients import completed_etag, shared_client
from .errors import KeyRefused, delete_objects_unsupported, http_status
from .watch import UploadHeard, UploadProgress

DELETE_BATCH = 1000  # keys per DeleteObjects request: S3's most
PARTS_IN_FLIGHT = 10  # of the uploads in parts, all files together (s3transfer's default)
DELETES_UNSUPPORTED = "the endpoint does not take DeleteObjects: {cause}"


class S3Bucket(StorageBucket):
    """Fast path (S3Storage): listings, uploads and deletes through the process's boto3 client.

    - A listing of an album's prefix answers for 1,000 photos per request, where
      Storage.listdir() lists one level and exists() costs a HEAD per photo; where a HEAD
      per photo is cheaper, it goes through the same client.
    - S3Storage.save() builds a resource object and a TransferManager, with threads of its
      own, for every file: more CPU than the upload of a 20 KB photo. Here a file below the
      multipart threshold goes up in one PutObject (from the bytes read once for a small
      one, as it is read for a larger one), with its MD5 as Content-MD5 so that the server
      rejects a corrupted body, as botocore's own checksums are off for most S3-compatible
      endpoints; a larger one goes up in parts through one manager per run.
    - A copy inside the bucket (a photo moved or renamed) is one CopyObject; deletes go
      1,000 keys per DeleteObjects request, each with a Content-MD5 (see _add_content_md5),
      or one DeleteObject per key where the endpoint does not take DeleteObjects.
    - The client skips botocore's parsing of dates, which the sync never reads: it is
      nearly half the cost of parsing a listing.
    - `endpoint` (albums.storage.watch) hears every answer of the client and every block
      of an upload the endpoint takes: the evidence for telling one file's bad luck from an
      endpoint that stopped answering, and what ends the retries of a silent one.
    """

    can_list = True

    def __init__(self, storage: S3Storage, *, workers: int):
        super().__init__(storage)
        # Thread-safe, shared by the pool, and made once per process (see shared_client).
        self.client, self.endpoint = shared_client(storage)
        self.name = storage.bucket_name
        self.location = storage.location.strip("/")
        config = storage.transfer_config
        self.multipart_threshold = config.multipart_threshold
        self.small_file = min(SMALL_FILE, config.multipart_threshold)
        self._manager_config = TransferConfig(
            multipart_threshold=config.multipart_threshold,
            multipart_chunksize=config.multipart_chunksize,
            # s3transfer's own threads, shared by every upload in parts of the run: as many
            # as its default, however many requests the run keeps in flight otherwise.
            max_concurrency=min(workers, PARTS_IN_FLIGHT),
        )
        self._manager = None
        self._lock = threading.Lock()
        self._batch_deletes = True  # until the endpoint says it does not take DeleteObjects

    def list_pages(
        self, prefix: str, *, page_size: int, start_after: str = ""
    ) -> Iterator[list[tuple[str, RemoteObject]]]:
        """Every object under `prefix` (whose name comes after `start_after`, when given),
        one request (`page_size` objects) per page, as (name, object) pairs in S3's order:
        UTF-8 byte order of the keys, which is the code point order of the names. A page is
        fetched only when the one before it has been taken."""
        strip = len(self.location) + 1 if self.location else 0
        after = {"StartAfter": self._key(start_after)} if start_after else {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name,
            Prefix=self._key(prefix),
            PaginationConfig={"PageSize": page_size},
            **after,
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
            if _not_found(exc):
                return None
            raise
        return RemoteObject(size=head["ContentLength"], etag=head.get("ETag", "").strip('"'))

    def upload(
        self,
        key: str,
        body,
        *,
        size: int,
        content_type: str,
        md5: bytes | None,
        mtime_ns: int | None = None,
        cache_control: str | None = None,
    ) -> str:
        name = self._key(key)
        params = self._object_parameters(name, content_type)
        if cache_control is not None:
            params["CacheControl"] = cache_control
        if mtime_ns is not None:
            params["Metadata"] = {**params.get("Metadata", {}), MTIME_METADATA: str(mtime_ns)}
        if isinstance(body, bytes):
            body = io.BytesIO(body)
        if size < self.multipart_threshold:
            if md5 is not None:
                params["ContentMD5"] = base64.b64encode(md5).decode()
            # The endpoint watch hears each block of the body as the endpoint takes it.
            heard = UploadHeard(body, self.endpoint)
            answer = self.client.put_object(Bucket=self.name, Key=name, Body=heard, **params)
            return answer.get("ETag", "").strip('"')
        # From the file's name, s3transfer reads each part as it sends it: no part is held
        # in memory (from a file object, every part in flight would be).
        upload = self._transfer_manager().upload(
            body.name,
            self.name,
            name,
            extra_args=params,
            subscribers=[UploadProgress(self.endpoint)],
        )
        upload.result()
        return self._etag(key)

    def copy(self, source_key: str, key: str, *, size: int) -> str:
        """One CopyObject up to 5 GB (the new object's ETag is in the answer), a copy in
        parts above. The source is given as a dict so that boto3 quotes the key itself."""
        source = {"Bucket": self.name, "Key": self._key(source_key)}
        try:
            if size <= COPY_IN_ONE_REQUEST:
                answer = self.client.copy_object(
                    CopySource=source, Bucket=self.name, Key=self._key(key)
                )
                return answer["CopyObjectResult"].get("ETag", "").strip('"')
            self._transfer_manager().copy(source, self.name, self._key(key)).result()
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(2, "the object to copy is gone", source_key) from exc
            raise
        return self._etag(key)

    def download(self, key: str, into) -> Downloaded:
        """One GetObject, streamed a chunk at a time; the file's time from the object's
        metadata (uploads by photosite keep it), else the object's Last-Modified."""
        try:
            answer = self.client.get_object(Bucket=self.name, Key=self._key(key))
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(2, "no such object", key) from exc
            raise
        for chunk in answer["Body"].iter_chunks(DOWNLOAD_CHUNK):
            into.write(chunk)
        return Downloaded(etag=answer.get("ETag", "").strip('"'), mtime_ns=_mtime_ns(answer))

    def downloads_in_parts(self, size: int) -> bool:
        return size >= self.multipart_threshold

    def download_in_parts(self, key: str, file, *, size: int, etag: str, with_time: bool):
        """Ranged GETs of one part size each, side by side on the run's transfer manager,
        each written at its offset in `file` (open for writing, seekable). Every range asks
        for the object of `etag` (If-Match): a copy replaced halfway fails the download
        instead of mixing two objects. With the size and ETag from the listing, no HEAD
        is sent, unless `with_time`: the file's time is in the object's metadata, which
        only a HEAD or a whole GET returns."""
        mtime_ns = None
        try:
            if with_time:
                head = self.client.head_object(Bucket=self.name, Key=self._key(key))
                etag, size = head.get("ETag", "").strip('"'), head["ContentLength"]
                mtime_ns = _mtime_ns(head)
            download = self._transfer_manager().download(
                self.name, self._key(key), file, subscribers=[_KnownObject(size, etag)]
            )
            download.result()
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(2, "no such object", key) from exc
            raise
        except S3DownloadFailedError as exc:  # what s3transfer makes of a 412 to If-Match
            raise ObjectChanged(OBJECT_CHANGED) from exc
        except RetriesExceededError as exc:  # a body that kept breaking off: say what did
            raise exc.last_exception from exc
        return Downloaded(etag=etag, mtime_ns=mtime_ns)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=self._key(key))

    @property
    def delete_batch(self) -> int:
        return DELETE_BATCH if self._batch_deletes else 1

    def delete_many(self, keys: list[str]) -> dict[str, KeyRefused]:
        """One DeleteObjects request, Quiet, so that the answer lists only the keys it did not
        delete. Once the endpoint has said it does not take DeleteObjects (from then on, for
        this run's bucket), one key goes as one DeleteObject, and more keys raise
        DeletesUnsupported, to be sent again one a request."""
        if not self._batch_deletes:
            if len(keys) > 1:
                raise DeletesUnsupported(
                    DELETES_UNSUPPORTED.format(cause="it said so earlier in this run")
                )
            self.delete(keys[0])
            return {}
        names = {self._key(key): key for key in keys}
        objects = [{"Key": name} for name in names]
        try:
            answer = self.client.delete_objects(
                Bucket=self.name, Delete={"Objects": objects, "Quiet": True}
            )
        except ClientError as exc:
            if not delete_objects_unsupported(exc):
                raise
            self._batch_deletes = False
            raise DeletesUnsupported(DELETES_UNSUPPORTED.format(cause=exc)) from exc
        return _refused(answer.get("Errors", ()), names)

    def part_size(self, size: int) -> int | None:
        if size < self.multipart_threshold:
            return None
        chunk = self._manager_config.multipart_chunksize
        return ChunksizeAdjuster().adjust_chunksize(chunk, size)  # as s3transfer sizes parts

    def content_md5(self, key: str) -> str | None:
        return None  # the ETag answers, without downloading the object

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

    def _object_parameters(self, name: str, content_type: str) -> dict:
        params = self.storage.get_object_parameters(name)
        params.setdefault("ContentType", content_type)
        if "ACL" not in params and self.storage.default_acl:
            params["ACL"] = self.storage.default_acl
        return params

    def _etag(self, key: str) -> str:
        """The ETag the bucket gave an object made in parts: a multipart ETag depends on the
        part size, and some services do not compute it as S3 does. From the answer to the
        upload's completion (see _note_completed); one HEAD where it did not say."""
        etag = completed_etag(self.name, self._key(key))
        if etag is not None:
            return etag
        found = self.size(key)
        return found.etag if found else ""

    def _transfer_manager(self):
        with self._lock:  # made on first use: most runs have no file large enough
            if self._manager is None:
                self._manager = create_transfer_manager(self.client, self._manager_config)
            return self._manager

    def _key(self, name: str) -> str:
        return posixpath.join(self.location, name) if self.location else name


def _not_found(exc: ClientError) -> bool:
    """Whether S3 answered 404: no such object (a 403 is never read as "missing")."""
    return http_status(exc) == 404


def _refused(errors, names: dict[str, str]) -> dict[str, KeyRefused]:
    """The keys a DeleteObjects answer lists under Errors (by bucket key in `names`), each
    with its error. NoSuchKey is no refusal: the object is gone, as asked (S3 does not list
    missing keys at all; a service that does would otherwise fail that photo forever)."""
    errors = [
        error for error in errors if error.get("Key") in names and error.get("Code") != "NoSuchKey"
    ]
    every_key = len(errors) == len(names) and len({error.get("Code") for error in errors}) == 1
    return {
        names[error["Key"]]: KeyRefused(
            error.get("Code", ""), error.get("Message", ""), every_key=every_key
        )
        for error in errors
    }


def _mtime_ns(answer: dict) -> int:
    """The file's time from a GET's or HEAD's answer: the metadata uploads by photosite
    keep, else the object's Last-Modified (to the second)."""
    mtime = answer.get("Metadata", {}).get(MTIME_METADATA, "")
    if mtime.isdigit():
        return int(mtime)
    # Dates stay as the text the server sent (see _client_for).
    modified = parsedate_to_datetime(answer["LastModified"]).timestamp()
    return round(modified) * 1_000_000_000


class _KnownObject(BaseSubscriber):
    """Tells s3transfer the object's size and ETag, known from the listing: it then sends
    no HEAD of its own, and asks every range for that ETag."""

    def __init__(self, size: int, etag: str):
        self.size, self.etag = size, etag

    def on_queued(self, future, **kwargs):
        future.meta.provide_transfer_size(self.size)
        if self.etag:
            future.meta.provide_object_etag(f'"{self.etag}"')


def open_bucket(storage: Storage, *, workers: int) -> StorageBucket:
    """The bucket of a run: the S3 fast path where the storage is S3Storage."""
    if isinstance(storage, S3Storage):
        return S3Bucket(storage, workers=workers)
    return StorageBucket(storage)
