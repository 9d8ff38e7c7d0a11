"""A run's view of the bucket, through Django's Storage API or, on S3, one boto3 client.

The sync uses `size()`, `save()` and `delete()` on the "photos" storage alias, which every
backend has (StorageBucket). Where the backend is django-storages' S3Storage, the fast path
(S3Bucket) does the same through one boto3 client per process (shared_client), configured
as the storage configures its own: one listing of an album's prefix instead of a HEAD per
photo, uploads without a transfer manager per file, deletes of up to 1,000 keys per request,
and the clean-up of unfinished multipart uploads.
"""

import base64
import hashlib
import io
import posixpath
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import boto3
import botocore.handlers
import botocore.session
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.storage import Storage
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.subscribers import BaseSubscriber
from s3transfer.utils import ChunksizeAdjuster
from storages.backends.s3 import S3Storage

from ..exceptions import StorageError
from .errors import KeyRefused, delete_objects_unsupported, http_status
from .watch import EndpointWatch, UploadHeard, UploadProgress

RENAMED_BY_STORAGE = "The storage saved {key!r} as {saved!r}; configure it to overwrite (AWS_S3_FILE_OVERWRITE=True)."


OBJECT_CHANGED = (
    "the bucket copy changed while it was being downloaded; nothing was written (run again)"
)


class ObjectChanged(Exception):
    """An object replaced while it was being downloaded in parts."""


@dataclass(frozen=True, slots=True)
class RemoteObject:
    size: int
    etag: str = ""


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What a download learned besides the bytes: the object's ETag and the file's time."""

    etag: str
    mtime_ns: int | None  # the file's modification time, where the bucket kept it


MTIME_METADATA = "mtime-ns"  # x-amz-meta-mtime-ns: the file's modification time at upload
DOWNLOAD_CHUNK = 1024 * 1024


DELETE_BATCH = 1000  # keys per DeleteObjects request: S3's most
DELETES_UNSUPPORTED = "the endpoint does not take DeleteObjects: {cause}"


class DeletesUnsupported(Exception):
    """A batch of keys that must be split: the endpoint does not take DeleteObjects."""


# Below this, a file is read once into memory, hashed and sent; above, it is sent as it is
# read, so that memory does not grow with the photos' size (workers x 8 MB camera JPEGs
# would be 80 MB more).
SMALL_FILE = 1024 * 1024
COPY_IN_ONE_REQUEST = 5 * 1024**3  # S3's largest CopyObject; above it, a copy in parts


class StorageBucket:
    """The bucket through the Storage API: what every backend supports."""

    can_list = False
    multipart_threshold = None
    small_file = SMALL_FILE
    delete_batch = 1  # keys per delete request: the Storage API deletes one at a time

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
        """Store `body` (bytes, or a file open for reading at its start, `size` bytes long)
        under `key`; the object's ETag as the bucket reports it ("" where the storage has
        none). `md5`, when known, lets the server check what it received; `mtime_ns`, the
        file's time, is kept with the object where the storage can (for a restore with no
        database); `cache_control` is sent with it where the storage keeps headers."""
        return self._save(key, io.BytesIO(body) if isinstance(body, bytes) else body, content_type)

    def _save(self, key: str, file, content_type: str) -> str:
        content = File(file, name=key)
        content.content_type = content_type
        self._saved_as(key, self.storage.save(key, content))
        return ""

    def copy(self, source_key: str, key: str, *, size: int) -> str:
        """Copy the object under `source_key` to `key` inside the bucket; its new ETag.
        Raises FileNotFoundError when the source is gone. Through the Storage API the bytes
        pass through this process."""
        with self.storage.open(source_key, "rb") as source:
            self._saved_as(key, self.storage.save(key, File(source, name=key)))
        return ""

    def download(self, key: str, into) -> Downloaded:
        """Write the object under `key` to the binary file `into`, a chunk at a time.
        Raises FileNotFoundError when there is no such object."""
        with self.storage.open(key, "rb") as stored:
            while chunk := stored.read(DOWNLOAD_CHUNK):
                into.write(chunk)
        modified = self.storage.get_modified_time(key).timestamp()
        return Downloaded(etag="", mtime_ns=round(modified * 1_000_000_000))

    def downloads_in_parts(self, size: int) -> bool:
        """Whether an object of `size` bytes comes down in ranges side by side
        (`download_in_parts`) rather than in one stream (`download`)."""
        return False

    def download_in_parts(self, key: str, file, *, size: int, etag: str, with_time: bool):
        raise NotImplementedError("this storage downloads in one stream")

    def delete(self, key: str) -> None:
        self.storage.delete(key)

    def delete_many(self, keys: list[str]) -> dict[str, KeyRefused]:
        """Delete the objects under `keys` (at most `delete_batch`); the keys the bucket
        refused, each with its error. An error of a request as a whole is raised."""
        for key in keys:
            self.delete(key)
        return {}

    def part_size(self, size: int) -> int | None:
        """The part size an upload of `size` bytes uses, or None for a single part."""
        return None

    def content_md5(self, key: str) -> str | None:
        """The MD5 of the object under `key`, where reading it back is cheap (a local
        folder); None where only its ETag can tell (S3)."""
        with self.storage.open(key, "rb") as stored:
            return hashlib.file_digest(stored, "md5").hexdigest()

    def abort_unfinished_uploads(self, prefix: str) -> int:
        return 0

    def close(self) -> None:
        pass

    def _saved_as(self, key: str, saved: str) -> None:
        if saved != key:
            self.storage.delete(saved)  # a renamed second copy this call just made
            raise StorageError(RENAMED_BY_STORAGE.format(key=key, saved=saved))


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
            max_concurrency=workers,
        )
        self._manager = None
        self._lock = threading.Lock()
        self._batch_deletes = True  # until the endpoint says it does not take DeleteObjects

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
        with _completed_lock:
            etag = _completed.pop((self.name, self._key(key)), None)
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


def _add_content_md5(request, **kwargs) -> None:
    """Give a DeleteObjects request a Content-MD5 header computed from its final body.

    S3's API reference requires it, and MinIO, Ceph RGW, Dell ECS and other S3-compatible
    services refuse DeleteObjects without it (400 MissingContentMD5 or InvalidRequest). Since
    1.36 botocore sends x-amz-checksum-crc32 instead, whatever request_checksum_calculation
    says: the operation is `requestChecksumRequired` in the service model, so
    httpchecksum.resolve_request_checksum_algorithm picks CRC32 under "when_required" too,
    and DeleteObjects has no ContentMD5 parameter to pass (handlers.py hides it). This runs
    on before-sign: the body is serialized and botocore's checksum headers are set, the
    signature is not yet made, and it comes again on every attempt.
    """
    if "Content-MD5" in request.headers:
        return
    digest = hashlib.md5(_body_bytes(request.body), usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    start = body.tell()  # a file object: read it, and leave it where it was
    data = body.read()
    body.seek(start)
    return data


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


_clients: dict[tuple, tuple] = {}  # see shared_client
_clients_lock = threading.Lock()

# The ETags of objects just made in parts, by (bucket, key): s3transfer does not return the
# answer to CompleteMultipartUpload, which holds it (S3Bucket._etag takes it from here).
_completed: dict[tuple[str, str], str] = {}
_completed_lock = threading.Lock()


def _note_completed(parsed, **kwargs) -> None:
    """after-call CompleteMultipartUpload: keep the ETag the bucket gave the object."""
    bucket, key, etag = parsed.get("Bucket"), parsed.get("Key"), parsed.get("ETag")
    if bucket and key and etag:
        with _completed_lock:
            _completed[(bucket, key)] = etag.strip('"')


def shared_client(storage: S3Storage):
    """(a boto3 S3 client configured as `storage` configures its own, the EndpointWatch
    listening to it), made once per process and configuration and reused by every run.

    Making a client parses botocore's service model (about 0.15 s of CPU): once per album
    was most of a run over many small albums. Clients are thread-safe; the watch's counts
    only grow, and Failures.judge reads them against where they stood when a run began.
    """
    key = _client_key(storage)
    with _clients_lock:
        if key not in _clients:
            client = _client_for(storage)
            watch = EndpointWatch()
            watch.attach(client)
            _clients[key] = (client, watch)
        return _clients[key]


def forget_clients(**kwargs) -> None:
    """Drop the shared clients: the next run makes new ones (settings changed, in tests)."""
    with _clients_lock:
        _clients.clear()


def _client_key(storage: S3Storage) -> tuple:
    config = storage.client_config
    options = {name: getattr(config, name, None) for name in Config.OPTION_DEFAULTS}
    return (
        storage.session_profile,
        storage.access_key,
        storage.secret_key,
        storage.security_token,
        storage.region_name,
        storage.use_ssl,
        storage.endpoint_url,
        storage.verify,
        repr(sorted(options.items())),
    )


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
    client = boto.client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=storage.client_config,
        verify=storage.verify,
    )
    client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
    client.meta.events.register("after-call.s3.CompleteMultipartUpload", _note_completed)
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
    client.meta.events.register("before-call.s3", _expect_continue_but_for_photos)
    return client


def _expect_continue_but_for_photos(model, params, **kwargs) -> None:
    """botocore asks for "100 Continue" before every body it can read(), and so waits a
    round trip before it sends each photo: for nothing when the body is one photo (below
    the multipart threshold). Parts of large files (UploadPart) still ask."""
    if model.name != "PutObject":
        botocore.handlers.add_expect_header(model, params, **kwargs)
