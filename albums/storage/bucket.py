"""A run's view of the bucket through Django's Storage API (StorageBucket), what every
backend has: the sync uses `size()`, `save()` and `delete()` on the "photos" storage alias.
On S3 the fast path (albums.storage.s3) does the same through one boto3 client.
"""

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.files import File
from django.core.files.storage import Storage

from ..exceptions import StorageError
from .errors import KeyRefused
from .watch import EndpointWatch

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
        self, prefix: str, *, page_size: int, start_after: str = ""
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
