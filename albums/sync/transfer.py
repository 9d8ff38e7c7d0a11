"""The work done on the pool's threads: read a photo file and send it to the bucket.

Nothing here touches the database (this module does not import the models): results go back
to the run's own thread, which records them (albums.sync.records).
"""

import hashlib
import os
from dataclasses import dataclass, replace

from ..storage import RemoteObject, StorageBucket
from .media import ImageInfo, content_type_for, read_image_info
from .merge import KnownPhoto
from .scan import LocalFile

CHANGED_WHILE_UPLOADING = "changed while it was being uploaded; it will be uploaded on the next run"


class FileChanged(Exception):
    """The file changed on disk while the sync was reading it."""


@dataclass(frozen=True, slots=True)
class Job:
    """One file to send to the bucket (upload=True) or only to record (upload=False)."""

    local: LocalFile
    key: str
    known: KnownPhoto | None  # its database row, None for a new photo
    remote: RemoteObject | None  # the bucket's object under `key`, None if there is none
    upload: bool = True


@dataclass(frozen=True, slots=True)
class Transferred:
    """A job done: what was read from the file, and whether it was sent."""

    job: Job
    size: int
    mtime_ns: int
    content_type: str
    info: ImageInfo
    uploaded: bool


def transfer(job: Job, bucket: StorageBucket) -> Transferred:
    """Read the file's header and, if the job says so, upload it.

    A job only to record (the bucket already holds an object of the same size) is uploaded
    after all when the listing's plain MD5 ETag says the object holds other bytes. A file
    that changes while it is uploaded raises FileChanged, and what reached the bucket is
    deleted: it may be a mix of old and new bytes, which the next run must not mistake for
    the photo.
    """
    with open(job.local.abspath, "rb") as file:
        opened = os.fstat(file.fileno())
        info = read_image_info(file)
        content_type = content_type_for(job.local.path)
        if job.upload:
            file.seek(0)
            bucket.upload(job.key, file, size=opened.st_size, content_type=content_type)
            after = os.fstat(file.fileno())
            if (after.st_size, after.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
                bucket.delete(job.key)
                raise FileChanged(CHANGED_WHILE_UPLOADING)
        elif not _same_content(job, file):
            file.seek(0)
            bucket.upload(job.key, file, size=opened.st_size, content_type=content_type)
            job = replace(job, upload=True)
    return Transferred(
        job, opened.st_size, opened.st_mtime_ns, content_type, info, uploaded=job.upload
    )


def _same_content(job: Job, file) -> bool:
    """Size matched already; where the listing gave a plain MD5 ETag, compare it too."""
    etag = job.remote.etag if job.remote is not None else ""
    if not etag or "-" in etag or len(etag) != 32:
        return True
    file.seek(0)
    return hashlib.file_digest(file, "md5").hexdigest() == etag
