"""The work done on the pool's threads: read a photo file and send it to the bucket.

Nothing here touches the database (this module does not import the models): results go back
to the run's own thread, which records them (albums.sync.records).

A file below the bucket's `small_file` size (1 MiB) is read once, into memory, and that one
read gives its MD5 (the record's checksum and the upload's Content-MD5), its image header and
the bytes sent. A larger one (a camera JPEG of several MB, a RAW file, a video) is hashed by
a read of its own first, in order, then sent as it is read again (from the page cache): in
one request from the open file below the multipart threshold, in parts above it, several at
a time, which s3transfer reads from the file's name as each is sent. So no file is held in
memory whole but the small ones: memory stays at about `workers` small files and the blocks
and parts in flight, whatever the sizes.
"""

import hashlib
import io
import os
from dataclasses import dataclass
from enum import Enum

from ...renditions import RenditionSpec
from ...storage import RemoteObject, StorageBucket
from ..library.media import ImageInfo, content_type_for, is_image, read_image_info
from ..library.merge import KnownPhoto, Vanished
from ..library.scan import LocalFile
from .renditions import NONE_YET, RenditionState, ensure_renditions

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
    also_count: str = ""  # a count to add once it is done (why it is sent again)
    candidates: tuple[Vanished, ...] = ()  # photos gone from disk it may be, by size
    renditions: RenditionSpec | None = None  # the web renditions it should have
    render_only: bool = False  # unchanged and in the bucket: only its renditions are missing
    force_render: bool = False  # render again even where the bucket has them (--force)


class Sent(Enum):
    UPLOADED = "uploaded"
    FOUND = "found"  # the bucket already held these bytes under its key
    COPIED = "copied"  # copied inside the bucket from a photo gone from disk


@dataclass(frozen=True, slots=True)
class Transferred:
    """A job done: what was read from the file, and how its object came to be."""

    job: Job
    size: int
    mtime_ns: int
    content_type: str
    info: ImageInfo
    sent: Sent
    md5: str
    etag: str
    source: Vanished | None = None  # for a copy: the photo copied from
    rendition: RenditionState = NONE_YET

    @property
    def uploaded(self) -> bool:
        return self.sent is Sent.UPLOADED


def transfer(job: Job, bucket: StorageBucket) -> Transferred:
    """Read the file and see that the bucket holds it under `job.key`.

    - A job only to record (the bucket holds an object of the same size) is found there,
      unless the listing's plain MD5 ETag says the object holds other bytes.
    - Otherwise a file whose MD5 is that of one of `job.candidates` is copied from that
      photo's object (an upload after all if that object is gone).
    - Otherwise it is uploaded.
    A file that changes meanwhile raises FileChanged, and what this call put in the bucket
    is deleted: it may be a mix of old and new bytes, which the next run must not mistake
    for the photo.

    Then its web renditions (`job.renditions`), unless its record has them for this content
    or it turned out to be a moved photo (whose record keeps its own): found in the bucket,
    or made from the bytes read (a small file) or from the file (the page cache) and sent.
    A job `render_only` sends nothing else.
    """
    if job.render_only:
        return _render_only(job, bucket)
    with open(job.local.abspath, "rb") as file:
        opened = os.fstat(file.fileno())
        content = _Content(file, job.local.abspath, opened.st_size, small=bucket.small_file)
        content_type = content_type_for(job.local.path)
        # A video or a sidecar has no dimensions or EXIF: Pillow is not asked.
        info = read_image_info(content.header()) if is_image(content_type) else ImageInfo()

        def changed() -> bool:
            # A file in parts is sent from its name: it must still be the file opened here.
            return _changed(opened, os.fstat(file.fileno())) or (
                content.data is None and _changed(opened, _stat_or_none(job.local.abspath))
            )

        try:
            sent, etag, source = _send(job, bucket, content, content_type, opened.st_mtime_ns)
        except Exception:
            # A file sent as it is read that changed meanwhile: the bucket refuses it (its
            # Content-MD5 is that of the bytes read before), and that is the reason to give.
            if changed():
                raise FileChanged(CHANGED_WHILE_UPLOADING) from None
            raise
        if changed():
            if sent is not Sent.FOUND:
                bucket.delete(job.key)
            raise FileChanged(CHANGED_WHILE_UPLOADING)
        md5 = content.md5().hex()
        # A moved photo's record keeps its renditions; one an earlier run forgot has no
        # record left, and its renditions are looked for like a new photo's.
        moved = bool(job.candidates) and sent is not Sent.UPLOADED
        moved = moved and not (source is not None and source.departed)
        rendition = NONE_YET if moved else _renditions(job, bucket, content, md5, changed)
    return Transferred(
        job,
        opened.st_size,
        opened.st_mtime_ns,
        content_type,
        info,
        sent,
        md5,
        etag,
        source,
        rendition,
    )


def _render_only(job: Job, bucket: StorageBucket) -> Transferred:
    """An unchanged photo whose renditions are missing: only they are made and sent."""
    with open(job.local.abspath, "rb") as file:
        opened = os.fstat(file.fileno())
        content = _Content(file, job.local.abspath, opened.st_size, small=bucket.small_file)
        md5 = job.known.md5 or content.md5().hex()
        info = read_image_info(content.header())

        def changed() -> bool:
            return _changed(opened, os.fstat(file.fileno())) or _changed(
                opened, _stat_or_none(job.local.abspath)
            )

        rendition = _renditions(job, bucket, content, md5, changed)
    content_type = content_type_for(job.local.path)
    return Transferred(
        job,
        opened.st_size,
        opened.st_mtime_ns,
        content_type,
        info,
        Sent.FOUND,
        md5,
        job.known.etag,
        rendition=rendition,
    )


def _renditions(job: Job, bucket: StorageBucket, content: "_Content", md5: str, changed):
    """The renditions the photo's record should say it has: those it has already for this
    content (`job.known`), or `job.renditions` found in the bucket or made now. Rendered
    from a file that changed since it was read: none (they would not be of `md5`)."""
    known = job.known
    kept = (
        RenditionState(known.renditions, known.rendition_problem)
        if known is not None and known.md5 == md5
        else NONE_YET
    )
    spec, content_type = job.renditions, content_type_for(job.local.path)
    if spec is None or not is_image(content_type):
        return kept
    if kept.signature == spec.signature and not job.force_render:
        return kept
    return ensure_renditions(
        bucket,
        spec,
        md5=md5,
        source=content.data if content.data is not None else job.local.abspath,
        content_type=content_type,
        force=job.force_render,
        unchanged=lambda: not changed(),
    )


def _changed(opened: os.stat_result, now: os.stat_result | None) -> bool:
    if now is None:
        return True
    return (now.st_ino, now.st_size, now.st_mtime_ns) != (
        opened.st_ino,
        opened.st_size,
        opened.st_mtime_ns,
    )


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def file_md5(path: str) -> str:
    """The MD5 (hex) of the file at `path`, read once."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()


def file_digests(path: str, part_size: int | None) -> tuple[str, str]:
    """(the MD5 of the file at `path`, the ETag S3 gives it when uploaded in parts of
    `part_size`: the MD5 of the parts' MD5s, then "-" and their number; "" for no parts),
    from one read."""
    whole = hashlib.md5()  # noqa: S324 - checksums, not security
    parts = []
    with open(path, "rb") as file:
        while chunk := file.read(part_size or 8 * 1024 * 1024):
            whole.update(chunk)
            if part_size:
                parts.append(hashlib.md5(chunk).digest())  # noqa: S324
    if not part_size:
        return whole.hexdigest(), ""
    joined = hashlib.md5(b"".join(parts)).hexdigest()  # noqa: S324
    return whole.hexdigest(), f"{joined}-{len(parts)}"


def _send(job: Job, bucket: StorageBucket, content: "_Content", content_type: str, mtime_ns: int):
    """(how the object came to be, its ETag, the photo copied from)."""
    if not job.upload and _same_content(job.remote, content):
        return Sent.FOUND, job.remote.etag, None
    if job.candidates:
        md5 = content.md5().hex()
        for source in (photo for photo in job.candidates if photo.md5 == md5):
            try:
                etag = bucket.copy(source.key, job.key, size=content.size)
            except FileNotFoundError:
                continue  # its object is gone too: another candidate, or an upload
            if _plain_md5(etag) and etag != md5:
                continue  # its key holds other bytes now: the upload below replaces the copy
            return Sent.COPIED, etag, source
    body = content.body()  # the MD5 is known once the body is ready
    etag = bucket.upload(
        job.key,
        body,
        size=content.size,
        content_type=content_type,
        md5=content.md5(),
        mtime_ns=mtime_ns,
    )
    return Sent.UPLOADED, etag, None


def _plain_md5(etag: str) -> bool:
    """Whether an ETag is the MD5 of the object's bytes (not of its parts, not encrypted
    with a key of the bucket's): 32 hex digits, no part count."""
    return len(etag) == 32 and "-" not in etag


def _same_content(remote: RemoteObject, content: "_Content") -> bool:
    """Size matched already; where the listing gave a plain MD5 ETag, compare it too."""
    etag = remote.etag
    if not etag or "-" in etag or len(etag) != 32:
        content.md5()  # not comparable; known all the same, for the record
        return True
    return content.md5().hex() == etag


class _Content:
    """A photo file's bytes as the transfer needs them, read as few times as possible."""

    def __init__(self, file, path: str, size: int, *, small: int):
        self.file = file
        self.path = path
        self.size = size
        self.data = file.read(small) if size < small else None
        self.known_md5 = hashlib.md5(self.data).digest() if self.data is not None else None  # noqa: S324 - an ETag, not security

    def header(self):
        """Something to read the image header from."""
        if self.data is not None:
            return io.BytesIO(self.data)
        self.file.seek(0)
        return self.file

    def body(self):
        """What to upload: the bytes read; or, once its MD5 is known, the open file from its
        start (the bucket sends it as it reads it, or in parts read from its name)."""
        if self.data is not None:
            return self.data
        self.md5()
        self.file.seek(0)
        return self.file

    def md5(self) -> bytes:
        """The file's MD5: from the read already done, or from a read now."""
        if self.known_md5 is None:
            self.file.seek(0)
            self.known_md5 = hashlib.file_digest(self.file, "md5").digest()
        return self.known_md5
