"""Bring an album's photos back from the bucket, checked, without breaking the next sync.

Every recorded photo missing from the target folder is downloaded on the pool, hashed as it
arrives and compared with its record (the MD5 of the bytes uploaded, or the ETag recorded);
only a download that matches is put in place: written to a hidden temporary file beside its
real name, flushed to disk, given the recorded modification time, then renamed. A killed
restore leaves no partial file under a photo's name, and a restored photo looks to the next
sync exactly as recorded (size and time), so nothing is read or uploaded again.

Nothing is ever deleted, on disk or in the bucket: a file that exists and differs from its
record is left alone, or with `overwrite` moved aside as `name.local-<date>.ext`.

With `from_bucket` (the database is gone too), the photos are the bucket's objects under the
album's prefix, and each is recorded as it is restored.
"""

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError

from ... import conf
from ...counts import RestoreCounts
from ...exceptions import AlbumFolderUnsafe, SyncError
from ...models import Album, SyncRun, SyncStatus, validate_album_folder
from ...storage import ObjectChanged, RemoteObject
from ..bucket.bucket_pool import BucketPool
from ..engine.failures import Failures
from ..library.folders import FOLDER_UNSAFE, photos_root
from ..library.media import content_type_for
from ..library.merge import KnownPhoto, merge_by_path
from ..library.scan import printable
from ..outcome.result import FileFailure, RestoreResult
from ..outcome.tally import ProgressCallback, Tally
from ..records.lease import AlbumLease
from ..records.photos import RunRecords, recorded_photos

logger = logging.getLogger("albums")

FILE_ERRORS = (OSError, ClientError, BotoCoreError, SyncError, ObjectChanged)
HASH_CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".photosite-restore"  # hidden, beside the real name: never taken for a photo
# Renames made durable (their folders fsynced) together: every this many photos or seconds.
DURABLE_EVERY = 500
DURABLE_SECONDS = 2.0
LOCAL_DIFFERS = "on disk, but not as recorded (size or time): left alone; --overwrite keeps it aside and restores the recorded one"
KEPT_ASIDE = "the file on disk was not as recorded: kept as {aside}"
BUCKET_DIFFERS = "the bucket copy of it does not match what was uploaded: not written"
MISSING_IN_BUCKET = "not in the bucket: nothing to restore it from"


class NotAsUploaded(Exception):
    """A download whose bytes are not those recorded at upload."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """A photo to bring back: where it goes, and what it must be."""

    path: str  # in the album
    target: Path
    key: str
    known: KnownPhoto | None  # None when restoring from the bucket alone
    remote: RemoteObject | None


@dataclass(frozen=True, slots=True)
class Restored:
    wanted: Wanted
    size: int
    md5: str
    etag: str
    mtime_ns: int


class AlbumRestore:
    """The state of one restore of one album; `run()` does the work."""

    def __init__(
        self,
        *,
        album: Album,
        run: SyncRun,
        target: Path | None,
        dry_run: bool,
        overwrite: bool,
        from_bucket: bool,
        workers: int,
        lease: AlbumLease | None = None,
        progress: ProgressCallback | None = None,
    ):
        self.album = album
        self.target = target
        self.dry_run = dry_run
        self.overwrite = overwrite
        self.from_bucket = from_bucket
        self.workers = workers
        self.lease = lease
        self.prefix = f"{conf.key_prefix()}/{album.slug}/"
        self.tally = Tally(counts=RestoreCounts, found_as="recorded", progress=progress)
        self.failures = Failures(album_name=album.name, log=logger)
        self.problems: list[FileFailure] = []
        # Records are written only for a restore from the bucket alone, into the album's folder.
        self.records = RunRecords(
            album=album, run=run, dry_run=dry_run or not from_bucket, progress=self._progress_row
        )
        self.bucket: BucketPool | None = None
        self._placed: list[Restored] = []  # renamed into place, their folders not yet fsynced
        self._placed_since = 0.0

    def run(self) -> RestoreResult:
        folder = self._target_folder()
        self.bucket = BucketPool(
            album_name=self.album.name,
            prefix=self.prefix,
            workers=self.workers,
            on_wait=self._tick,
            log=logger,
        )
        try:
            wanted = self._missing(folder)
            if not self.dry_run:
                for item, future in self.bucket.map(self._fetch, wanted):
                    self._put_in_place(item, future)
            else:
                for _ in wanted:
                    self.tally.settle("restored")
        finally:
            self._make_durable()
            self.records.flush()
            self.bucket.close()
        clean = not self.failures and not self.unresolved()
        return self.result(status=SyncStatus.SUCCESS if clean else SyncStatus.PARTIAL)

    def result(self, *, status: str, message: str = "") -> RestoreResult:
        return RestoreResult(
            album=self.album.slug,
            run_id=self.records.run.pk,
            status=status,
            dry_run=self.dry_run,
            message=message,
            failures=tuple(self.failures.items),
            problems=tuple(self.problems),
            **self.tally.counts(),
        )

    def unresolved(self) -> int:
        return sum(
            self.tally[name] for name in ("local_differs", "bucket_differs", "missing_in_bucket")
        )

    # On this thread -------------------------------------------------------------------------

    def _target_folder(self) -> Path:
        """The album's folder (made if the disk is new), or the folder asked for. PHOTOS_ROOT
        itself must be there: restoring into an unmounted disk's mount point would fill the
        system disk instead."""
        folder = self.target
        if folder is None:
            root = photos_root()
            try:
                validate_album_folder(self.album.folder)
            except ValidationError:
                raise AlbumFolderUnsafe(
                    FOLDER_UNSAFE.format(album=self.album.name, folder=self.album.folder)
                ) from None
            folder = root / self.album.folder
        if not self.dry_run:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _missing(self, folder: Path) -> Iterator[Wanted]:
        """The photos to download; the rest are settled here. The records (or, from the
        bucket alone, the objects) in path order, with the listing alongside."""
        listing = self.bucket.listing() if self.bucket.can_list else ()
        for entry in merge_by_path((), self._photos(), listing):
            self._tick()
            known, remote = entry.known, entry.remote
            if known is None and not self.from_bucket:
                continue  # in the bucket but not recorded: not this album's to restore
            if self.from_bucket and remote is None:
                continue
            self.tally.found()
            wanted = Wanted(
                entry.path, folder / entry.path, self.prefix + entry.path, known, remote
            )
            if self._settled_on_disk(wanted):
                continue
            if not self.bucket.can_list:
                wanted = self._with_remote(wanted)
            if wanted.remote is None:
                self._problem(wanted.path, "missing_in_bucket", MISSING_IN_BUCKET)
            elif known is not None and known.etag and wanted.remote.etag not in ("", known.etag):
                self._problem(wanted.path, "bucket_differs", BUCKET_DIFFERS)
            else:
                yield wanted

    def _photos(self):
        return () if self.from_bucket else recorded_photos(self.album)

    def _settled_on_disk(self, wanted: Wanted) -> bool:
        """Whether the photo needs no download: on disk as recorded, or on disk otherwise
        and left alone (moved aside first with `overwrite`)."""
        try:
            stat = os.lstat(wanted.target)
        except FileNotFoundError:
            return False
        known = wanted.known
        if known is not None and (stat.st_size, stat.st_mtime_ns) == (known.size, known.mtime_ns):
            self.tally.settle("already_present")
            return True
        if known is None and wanted.remote is not None and stat.st_size == wanted.remote.size:
            self.tally.settle("already_present")  # from the bucket alone: sizes agree
            return True
        if not self.overwrite:
            self._problem(wanted.path, "local_differs", LOCAL_DIFFERS)
            return True
        if not self.dry_run:
            aside = _aside(wanted.target)
            os.rename(wanted.target, aside)  # never deleted
            logger.warning("%s: %s", printable(wanted.path), KEPT_ASIDE.format(aside=aside.name))
        self.tally.add("kept_aside")
        return False

    def _with_remote(self, wanted: Wanted) -> Wanted:
        remote = self.bucket.bucket.size(wanted.key)
        return Wanted(wanted.path, wanted.target, wanted.key, wanted.known, remote)

    def _put_in_place(self, wanted: Wanted, future) -> None:
        try:
            restored: Restored = future.result()
        except NotAsUploaded:
            self._problem(wanted.path, "bucket_differs", BUCKET_DIFFERS)
            return
        except FileNotFoundError as exc:
            if exc.filename == wanted.key:  # the object went away meanwhile
                self._problem(wanted.path, "missing_in_bucket", MISSING_IN_BUCKET)
                return
            self.failures.judge(wanted.path, exc, self.bucket)
            self.tally.settle()
            return
        except FILE_ERRORS as exc:
            self.failures.judge(wanted.path, exc, self.bucket)
            self.tally.settle()
            return
        self.tally.add("bytes_downloaded", restored.size)
        self.tally.settle("restored")
        if not self._placed:
            self._placed_since = time.monotonic()
        self._placed.append(restored)
        if (
            len(self._placed) >= DURABLE_EVERY
            or time.monotonic() - self._placed_since >= DURABLE_SECONDS
        ):
            self._make_durable()

    def _make_durable(self) -> None:
        """Flush to disk the entries of the folders the photos placed since the last call
        were renamed in, then (from the bucket alone) record those photos: one fsync per
        folder and batch rather than per photo, and never a record of a rename that a power
        cut could still undo. A rename lost that way leaves the photo missing (its hidden
        temporary file at most), which the next restore brings back."""
        for folder in {restored.wanted.target.parent for restored in self._placed}:
            _sync_folder(folder)
        if self.from_bucket:
            for restored in self._placed:
                self.records.restored(
                    path=restored.wanted.path,
                    key=restored.wanted.key,
                    size=restored.size,
                    mtime_ns=restored.mtime_ns,
                    md5=restored.md5,
                    etag=restored.etag,
                    content_type=content_type_for(restored.wanted.path),
                )
        self._placed.clear()

    def _problem(self, path: str, count: str, text: str) -> None:
        logger.warning("%s: %s", printable(path), text)
        self.problems.append(FileFailure(printable(path), text))
        self.tally.settle(count)

    # On the pool's threads --------------------------------------------------------------------

    def _fetch(self, wanted: Wanted) -> Restored:
        """Download into a hidden file beside the target, check it, give it the recorded
        time, flush it to disk, and only then rename it into place (the rename itself is
        flushed with others, by `_make_durable`)."""
        wanted.target.parent.mkdir(parents=True, exist_ok=True)
        # One name per photo: a restore killed midway leaves at most this hidden file,
        # which the next restore of the photo writes over and renames.
        partial = wanted.target.with_name(f".{wanted.target.name}{PARTIAL_SUFFIX}")
        expected = wanted.remote.size if wanted.remote else 0
        part_size = self._part_size(wanted, expected)
        bucket = self.bucket.bucket
        try:
            with open(partial, "wb") as file:
                if bucket.downloads_in_parts(expected):
                    downloaded = bucket.download_in_parts(
                        wanted.key,
                        file,
                        size=expected,
                        etag=wanted.remote.etag,
                        with_time=wanted.known is None,
                    )
                    file.flush()
                    # The ranges arrive in any order: hash the file once they are all in
                    # (read back from the page cache).
                    hashing = _Hashing.of_file(partial, part_size)
                else:
                    hashing = _Hashing(file, part_size)
                    downloaded = bucket.download(wanted.key, hashing)
                    file.flush()
                os.fsync(file.fileno())
            md5 = hashing.md5.hexdigest()
            _check(wanted, hashing, downloaded.etag)
            mtime_ns = wanted.known.mtime_ns if wanted.known else downloaded.mtime_ns
            os.utime(partial, ns=(mtime_ns, mtime_ns))
            os.replace(partial, wanted.target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return Restored(wanted, hashing.size, md5, downloaded.etag or wanted.remote.etag, mtime_ns)

    def _part_size(self, wanted: Wanted, size: int) -> int | None:
        """The part size to check a multipart ETag with, when that is what there is."""
        etag = (wanted.known.etag if wanted.known else "") or (wanted.remote.etag or "")
        needed = "-" in etag and not (wanted.known and wanted.known.md5)
        return self.bucket.bucket.part_size(size) if needed else None

    # Helpers ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        self.tally.report()
        if self.lease is not None:
            self.lease.renew_if_due()
        self.records.flush_if_due()

    def _progress_row(self) -> dict[str, int]:
        return {
            "files_done": self.tally.done,
            "files_total": self.tally.total,
            "failed": len(self.failures),
        }


class _Hashing:
    """A file being written, hashed as the bytes go in: its MD5, and the ETag S3 gives it
    when it is uploaded in parts of `part_size` (the MD5 of the parts' MD5s, "-N")."""

    def __init__(self, file, part_size: int | None):
        self.file = file
        self.md5 = hashlib.md5()  # noqa: S324 - checksums, not security
        self.size = 0
        self._part_size = part_size
        self._part = hashlib.md5()  # noqa: S324
        self._in_part = 0
        self._parts: list[bytes] = []

    @classmethod
    def of_file(cls, path: Path, part_size: int | None) -> "_Hashing":
        """The hashes of the file at `path`, read once."""
        hashing = cls(None, part_size)
        with open(path, "rb") as file:
            while chunk := file.read(HASH_CHUNK):
                hashing.update(chunk)
        return hashing

    def write(self, data: bytes) -> int:
        self.update(data)
        return self.file.write(data)

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.size += len(data)
        rest = memoryview(data)
        while self._part_size and rest:
            take = rest[: self._part_size - self._in_part]
            self._part.update(take)
            self._in_part += len(take)
            rest = rest[len(take) :]
            if self._in_part == self._part_size:
                self._end_part()

    def _end_part(self) -> None:
        self._parts.append(self._part.digest())
        self._part, self._in_part = hashlib.md5(), 0  # noqa: S324

    def multipart_etag(self) -> str:
        if self._in_part:
            self._end_part()
        joined = hashlib.md5(b"".join(self._parts)).hexdigest()  # noqa: S324
        return f"{joined}-{len(self._parts)}"


def _check(wanted: Wanted, hashing: _Hashing, etag: str) -> None:
    """Raise NotAsUploaded unless the downloaded bytes are those recorded at upload: the
    record's MD5 where it has one; else the ETag (the recorded one, or the object's), by
    S3's own rule, where it follows it. An opaque ETag (SSE-KMS, some services) and no MD5
    recorded leave only the size to compare."""
    known = wanted.known
    if known is not None and hashing.size != known.size:
        raise NotAsUploaded(wanted.path)
    if known is not None and known.md5:
        if hashing.md5.hexdigest() != known.md5:
            raise NotAsUploaded(wanted.path)
        return
    expected = (known.etag if known is not None else "") or etag
    if "-" in expected:
        if hashing.multipart_etag() != expected:
            raise NotAsUploaded(wanted.path)
    elif len(expected) == 32 and expected != hashing.md5.hexdigest():
        raise NotAsUploaded(wanted.path)


def _aside(target: Path) -> Path:
    """`name.local-<date>.ext` beside `target`, numbered if that is taken."""
    stem, ext = os.path.splitext(target.name)
    base = f"{stem}.local-{date.today().isoformat()}"
    candidate, number = target.with_name(base + ext), 2
    while os.path.lexists(candidate):
        candidate, number = target.with_name(f"{base}-{number}{ext}"), number + 1
    return candidate


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk: the folder's entry, not only the file's bytes."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
