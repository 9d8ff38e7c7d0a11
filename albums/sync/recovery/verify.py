"""Check that the backup is sound: every recorded photo's file, record and bucket copy agree.

Every photo file is read and hashed (on the pool), and compared with its record (the MD5 of
the bytes uploaded) and with the bucket's copy (by the listing's ETag; where the ETag cannot
answer, by what the storage can tell). `repair` uploads again a bucket copy that is missing
or differs, but only from a file that still matches its record: a file whose bytes changed
while its size and modification time did not may be the corrupted one, and is reported
instead, with the way to get it back.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from ... import conf
from ...counts import VerifyCounts
from ...exceptions import SyncError
from ...models import Album, SyncRun, SyncStatus
from ...storage import RemoteObject
from ..bucket.bucket_pool import BucketPool
from ..bucket.transfer import FileChanged, Job, file_digests, transfer
from ..engine.failures import Failures
from ..library.folders import album_folder, readable, take_census
from ..library.merge import KnownPhoto, merge_by_path
from ..library.scan import FolderWalk, LocalFile, printable
from ..outcome.result import FileFailure, VerifyResult
from ..outcome.tally import ProgressCallback, Tally
from ..records.lease import AlbumLease
from ..records.photos import RecordedPhotos, RunRecords

logger = logging.getLogger("albums")

FILE_ERRORS = (OSError, ClientError, BotoCoreError, FileChanged, SyncError)
MISSING_IN_BUCKET = "missing in the bucket"
DIFFERS_IN_BUCKET = "the bucket copy is not what was uploaded"
REPAIRED = "; repaired: uploaded again from the file, which matches its record"
NOT_SENT = "; the repair failed (see the failures)"
CORRUPTED = (
    "the file's bytes changed while its size and modification time did not (silent "
    "corruption on disk, or an edit that kept the time); the bucket copy was left alone. "
    "If the file is the damaged one, get the bucket copy back with restore_album"
)
CHANGED = "changed on disk since the last sync; the next sync uploads it"
MISSING_ON_DISK = "gone from the album folder; restore_album can bring it back"


@dataclass(frozen=True, slots=True)
class Examined:
    """A photo as the pool found it: its file's digests and the bucket's copy."""

    md5: str
    multipart_etag: str  # what S3 gives it when sent in parts, "" for one part
    remote: RemoteObject | None
    remote_md5: str | None  # read back where the storage can (a local folder)


class AlbumVerify:
    """The state of one verification of one album; `run()` does the work."""

    def __init__(
        self,
        *,
        album: Album,
        run: SyncRun,
        repair: bool,
        workers: int,
        lease: AlbumLease | None = None,
        progress: ProgressCallback | None = None,
    ):
        self.album = album
        self.repair = repair
        self.workers = workers
        self.lease = lease
        self.prefix = f"{conf.key_prefix()}/{album.slug}/"
        self.tally = Tally(counts=VerifyCounts, found_as="checked", progress=progress)
        self.failures = Failures(album_name=album.name, log=logger)
        self.problems: list[FileFailure] = []  # what was found wrong, repaired or not
        self.unresolved = 0  # problems not repaired
        self.to_repair: list[tuple[Job, str, str]] = []  # (job, count, problem)
        self.records = RunRecords(album=album, run=run, dry_run=False, progress=self._progress_row)
        self.bucket: BucketPool | None = None

    def run(self) -> VerifyResult:
        folder = album_folder(self.album)
        recorded = RecordedPhotos(self.album)
        census = take_census(self.album, folder, recorded)
        self.tally.total = census.recorded
        self.bucket = BucketPool(
            album_name=self.album.name,
            prefix=self.prefix,
            workers=self.workers,
            on_wait=self._tick,
            log=logger,
        )
        try:
            walk = FolderWalk(
                folder.path,
                conf.photo_extensions(),
                on_failure=self._walk_failed,
                real=folder.real,
            )
            entries = merge_by_path(
                readable(((found.path, found) for found in walk), self.album, folder.path),
                recorded,
                self.bucket.listing() if self.bucket.can_list else (),
            )
            photos = self._recorded_on_disk(entries, walk)
            for (local, known, _), future in self.bucket.map(self._examine, photos):
                self._judge(local, known, future)
            self._repair()
        finally:
            self.records.flush()
            self.bucket.close()
        clean = not self.failures and not self.unresolved
        return self.result(status=SyncStatus.SUCCESS if clean else SyncStatus.PARTIAL)

    def result(self, *, status: str, message: str = "") -> VerifyResult:
        return VerifyResult(
            album=self.album.slug,
            run_id=self.records.run.pk,
            status=status,
            message=message,
            failures=tuple(self.failures.items),
            problems=tuple(self.problems),
            **self.tally.counts(),
        )

    # On this thread -------------------------------------------------------------------------

    def _recorded_on_disk(self, entries, walk) -> Iterator[tuple]:
        """(file, record, bucket object) of each recorded photo found on disk; the others
        are reported here (gone from disk) or left to the next sync (new files)."""
        for entry in entries:
            self._tick()
            if entry.known is None:
                continue  # not recorded yet: the next sync's
            if entry.local is None:
                if not walk.may_hide(entry.path):
                    self._problem(entry.path, "missing_on_disk", MISSING_ON_DISK)
                continue
            self.tally.found()
            yield entry.local, entry.known, entry.remote

    def _judge(self, local: LocalFile, known: KnownPhoto, future) -> None:
        try:
            seen: Examined = future.result()
        except FILE_ERRORS as exc:
            self.failures.judge(local.path, exc, self.bucket)
            self.tally.settle()
            return
        self.tally.add("bytes_read", local.size)
        if (local.size, local.mtime_ns) != (known.size, known.mtime_ns):
            self._problem(local.path, "changed_on_disk", CHANGED)
            return
        if known.md5 and seen.md5 != known.md5:
            self._problem(local.path, "corrupted_on_disk", CORRUPTED)
            return
        if seen.remote is None:
            self._bucket_wrong(local, known, "missing_in_bucket", MISSING_IN_BUCKET)
        elif not _same_object(seen, known):
            self._bucket_wrong(local, known, "differs_in_bucket", DIFFERS_IN_BUCKET)
        else:
            self.tally.settle("matched")
            if known.md5:
                self.records.verified(known.id)
            else:  # recorded before checksums were kept: known by content from now on
                etag = seen.remote.etag or ""
                self.records.identified(known.id, md5=seen.md5, etag=etag)

    def _bucket_wrong(self, local: LocalFile, known: KnownPhoto, count: str, text: str) -> None:
        """The file matches its record (or, recorded before checksums, its size and time),
        but the bucket copy is missing or holds other bytes: --repair sends the file again."""
        if self.repair:
            self.to_repair.append((Job(local, self.prefix + local.path, known, None), count, text))
        else:
            self._problem(local.path, count, text)

    def _repair(self) -> None:
        waiting = {job.key: (count, text) for job, count, text in self.to_repair}
        jobs = (job for job, _, _ in self.to_repair)
        for job, future in self.bucket.map(lambda job: transfer(job, self.bucket.bucket), jobs):
            count, text = waiting[job.key]
            try:
                done = future.result()
            except FILE_ERRORS as exc:
                self.failures.judge(job.local.path, exc, self.bucket)
                self._problem(job.local.path, count, text + NOT_SENT)
                continue
            self.records.sent(done)
            self.tally.add("repaired")
            self.tally.add("bytes_read", done.size)
            self._problem(job.local.path, count, text + REPAIRED, repaired=True)

    def _problem(self, path: str, count: str, text: str, *, repaired: bool = False) -> None:
        logger.log(logging.INFO if repaired else logging.WARNING, "%s: %s", printable(path), text)
        self.problems.append(FileFailure(printable(path), text))
        self.unresolved += not repaired
        self.tally.settle(count)

    # On the pool's threads --------------------------------------------------------------------

    def _examine(self, item) -> Examined:
        local, _, remote = item
        bucket = self.bucket.bucket
        md5, multipart = file_digests(local.abspath, bucket.part_size(local.size))
        if not self.bucket.can_list:
            remote = bucket.size(self.prefix + local.path)
        remote_md5 = None
        if remote is not None and not remote.etag:
            remote_md5 = bucket.content_md5(self.prefix + local.path)
        return Examined(md5, multipart, remote, remote_md5)

    # Helpers ----------------------------------------------------------------------------------

    def _walk_failed(self, failure: FileFailure) -> None:
        self.failures.add(failure.path, failure.error)

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


def _same_object(seen: Examined, known: KnownPhoto) -> bool:
    """Whether the bucket's copy holds the photo's bytes, by the best evidence at hand."""
    remote = seen.remote
    if remote.size != known.size:
        return False
    if known.etag and remote.etag:
        return remote.etag == known.etag  # what the bucket said when it was uploaded
    if remote.etag:  # recorded before ETags were kept: S3's own rule for its ETags
        return remote.etag in {seen.md5, seen.multipart_etag}
    if seen.remote_md5 is not None:
        return seen.remote_md5 == seen.md5
    return True  # the size is all the storage can tell
