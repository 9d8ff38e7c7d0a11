"""One sync of one album: the pass that decides each photo and sends what the bucket lacks.

The pass goes through the album in path order (see albums.sync.merge): the folder walk, the
database rows and the bucket listing stream in side by side, each photo is decided as the
pass reaches it (albums.sync.decide), and its upload goes to the pool at once
(albums.sync.transfer). Results are recorded from this thread (albums.sync.records). What is
held at any moment is a bounded window: one folder's listing, a page of rows, a page of the
bucket listing, the uploads in flight and the records not yet written.

The run record's state and the album's lease belong to the caller (albums.sync.service).
"""

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousFileOperation

from .. import conf
from ..exceptions import SyncError, TooManyDeletions
from ..models import Album, SyncRun, SyncStatus
from .bucket_pool import LIST_PAGE, BucketPool
from .decide import Action, decide
from .exclusions import Excluded, ExcludedSpan, Exclusions
from .failures import Failures
from .folders import Census, album_folder, readable, take_census
from .lease import AlbumLease
from .merge import Entry, KnownPhoto, merge_by_path
from .records import RunRecords, recorded_photos
from .result import SyncResult
from .scan import FolderWalk
from .tally import ProgressCallback, Tally
from .transfer import FileChanged, Job, Transferred

logger = logging.getLogger("albums")

# What the work on a file may raise that the run understands: that file's failure, or (a
# StorageError, or a backend error that says so) the end of the run. Anything else is a bug
# and stops the run as an unexpected error.
FILE_ERRORS = (OSError, ClientError, BotoCoreError, FileChanged, SuspiciousFileOperation, SyncError)

TOO_MANY_DELETIONS = (
    "Pruning album {album!r} would delete {count} objects from the bucket, more than the "
    "limit of {limit}; nothing was deleted. If that many photos really are gone, run again "
    "with --max-delete {count}."
)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    dry_run: bool
    prune: bool
    batch_size: int  # files handed to the pool at a time
    workers: int  # threads checking and uploading
    max_delete: int  # most objects --prune and --prune-excluded delete in one run
    prune_excluded: bool = False  # delete the bucket copies of recorded photos now excluded
    exclude: tuple[str, ...] = ()  # ALBUMS_EXCLUDE

    @classmethod
    def resolve(
        cls,
        *,
        dry_run=False,
        prune=False,
        prune_excluded=False,
        batch_size=None,
        workers=None,
        max_delete=None,
    ):
        """The options of a run, the settings filling in what the caller left out."""
        options = cls(
            dry_run=dry_run,
            prune=prune,
            prune_excluded=prune_excluded,
            batch_size=batch_size or conf.batch_size(),
            workers=workers or conf.workers(),
            max_delete=conf.max_delete() if max_delete is None else max_delete,
            exclude=conf.exclude_patterns(),
        )
        if options.batch_size < 1 or options.workers < 1:
            raise ValueError("batch_size and workers must be at least 1")
        return options

    @property
    def in_flight(self) -> int:
        return max(self.batch_size, self.workers)


class DryRunLog(logging.LoggerAdapter):
    """Marks every line of a dry run, which only says what it would do."""

    def process(self, msg, kwargs):
        return f"[dry run] {msg}", kwargs


class AlbumSync:
    """The state of one run; `run()` does the work. Only this thread touches the database."""

    def __init__(
        self,
        *,
        album: Album,
        run: SyncRun,
        options: SyncOptions,
        lease: AlbumLease | None = None,
        progress: ProgressCallback | None = None,
    ):
        self.album = album
        self.options = options
        self.lease = lease
        self.log = DryRunLog(logger, {}) if options.dry_run else logger
        self.prefix = f"{conf.key_prefix()}/{album.slug}/"
        self.tally = Tally(progress=progress)
        self.failures = Failures(album_name=album.name, log=self.log)
        self.records = RunRecords(
            album=album, run=run, dry_run=options.dry_run, progress=self._progress_row
        )
        # Photos whose bucket copies to delete (orphans when pruning, excluded ones with
        # prune_excluded), kept until the run knows how many there are: at most
        # max_delete + 1 of them, since one more stops the run.
        self.to_prune: list[tuple[KnownPhoto, bool]] = []  # (photo, excluded)
        self.exclusions = Exclusions(options.exclude, album_name=album.name)
        self.excluded = ExcludedSpan()
        self.walk: FolderWalk | None = None
        self.bucket: BucketPool | None = None

    def run(self) -> SyncResult:
        """Sync the album; its result, or a SyncError once what was done is recorded."""
        folder = album_folder(self.album)
        census = take_census(
            self.album, folder, recorded_photos(self.album, paths_only=True), self.exclusions
        )
        self._check_deletion_limit(
            self._deletions(orphaned=census.orphaned, excluded=census.excluded_recorded)
        )
        self.tally.total = census.photos
        self.bucket = BucketPool(
            album_name=self.album.name,
            prefix=self.prefix,
            workers=self.options.workers,
            in_flight=self.options.in_flight,
            on_wait=self._tick,
            log=self.log,
        )
        try:
            self._pass(folder, census)
        finally:
            self.bucket.close()
        return self.result(status=SyncStatus.PARTIAL if self.failures else SyncStatus.SUCCESS)

    def result(self, *, status: str, message: str = "") -> SyncResult:
        return SyncResult(
            album=self.album.slug,
            run_id=self.records.run.pk,
            status=status,
            dry_run=self.options.dry_run,
            message=message,
            failures=tuple(self.failures.items),
            **self.tally.counts(),
        )

    # Deciding ------------------------------------------------------------------------------

    def _pass(self, folder, census: Census) -> None:
        listing = self._should_list(census)
        if census.new:
            self.log.info(
                "Processing %d new photos in batches of %d", census.new, self.options.batch_size
            )
        self.walk = FolderWalk(
            folder,
            conf.photo_extensions(),
            on_failure=lambda failure: self.failures.add(failure.path, failure.error),
            exclusions=self.exclusions,
        )
        entries = merge_by_path(
            readable(((found.path, found) for found in self.walk), self.album, folder),
            recorded_photos(self.album),
            self.bucket.listing() if listing else (),
        )
        jobs = self._photos(entries)
        if not listing:
            jobs = self._check_each(jobs)
        jobs = self._plan(jobs)
        if self.options.dry_run:
            self._count_dry_run(jobs)
            return
        try:
            self._transfer(self.bucket.cleaned_up_first(jobs))
            self._remove_orphans()
        finally:
            # Also when the pass stops midway (the listing failed, a delete was refused,
            # the folder went away): what reached the bucket is recorded before the error
            # goes on.
            self.records.flush()

    def _should_list(self, census: Census) -> bool:
        """Whether to learn what the bucket holds from a listing of the album's prefix.

        Where the backend can list (S3), a listing costs ceil(objects / 1000) requests
        against one HEAD per photo; it is used whenever that is fewer requests. The
        objects under the prefix are about the photos recorded (or found, on a first run).
        """
        photos = census.photos
        pages = math.ceil(max(photos, census.recorded) / LIST_PAGE)
        if self.bucket.can_list and pages < photos:
            self.log.info("Listing %s to check %d photos", self.prefix, photos)
            return True
        self.log.info(
            "Checking %d photos in the bucket in batches of %d", photos, self.options.batch_size
        )
        return False

    def _photos(self, entries: Iterator[Entry]) -> Iterator[Job]:
        """The photos on disk this run can sync, as jobs; everything else is settled here.

        A photo modified seconds ago is left for the next run (ALBUMS_SETTLE_SECONDS: it
        may still be being written), one whose name cannot become a key byte for byte is a
        failure (never renamed), a recorded photo gone from disk is an orphan, and one an
        exclusion now covers is left alone.
        """
        settle_ns = conf.settle_seconds() * 1_000_000_000
        for entry in entries:
            self._tick()
            local, known = entry.local, entry.known
            if excluded := self.excluded.covering(entry.path, local):
                self._exclude(excluded if excluded is local else None, known)
                continue
            if local is None:
                if known is not None:
                    self._orphan(known)
                continue  # only in the bucket: not this run's to judge
            self.tally.found()
            key = self.prefix + local.path
            if settle_ns and 0 <= time.time_ns() - local.mtime_ns < settle_ns:
                self.log.info(
                    "Photo modified seconds ago, leaving it for the next run: %s", local.path
                )
                self.tally.settle("deferred")
            elif problem := self.bucket.key_problem(key):
                self.failures.add(local.path, problem)
                self.tally.settle()
            else:
                self.tally.add("new" if known is None else "existing")
                yield Job(local, key, known, entry.remote)

    def _check_each(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Where a listing would cost more: one size check (a HEAD) per photo, on the pool."""
        for job, future in self.bucket.sizes(jobs):
            try:
                found = future.result()
            except FILE_ERRORS as exc:
                self.failures.judge(job.local.path, exc, where=self.bucket.where)
                self.tally.settle()
                continue
            yield replace(job, remote=found)

    def _plan(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Decide each photo's fate: unchanged ones are recorded as verified on the spot,
        the rest go on as jobs to upload (or, when the bucket already has them, to record)."""
        for job in jobs:
            decision = decide(job.local, job.known, job.remote)
            for level, note in decision.notes:
                self.log.log(level, note, job.local.path)
            if decision.action is Action.UNCHANGED:
                self.tally.settle("unchanged")
                self.records.verified(job.known.id)
            else:
                yield replace(job, upload=decision.action is Action.UPLOAD)

    def _exclude(self, left_out: Excluded | None, known: KnownPhoto | None) -> None:
        """What an exclusion covers: a file or folder the walk left out (`left_out`, named
        at -v 2), and a recorded photo it covers, which is neither synced nor taken as gone
        from disk: its record is kept, marked excluded, and its bucket copy stays unless
        the run prunes excluded photos."""
        if left_out is not None:
            self.tally.add("excluded")
            self.log.info("Excluded (%s): %s", left_out.reason, left_out.path)
        if known is None:
            return
        self.tally.add("excluded_recorded")
        if self.options.dry_run:
            return
        if self.options.prune_excluded:
            self._to_prune(known, excluded=True)
        else:
            self.records.excluded(known.id)

    def _orphan(self, photo: KnownPhoto) -> None:
        """A recorded photo the walk did not find. Under a folder that could not be read it
        is not an orphan: it may well be there."""
        if self.walk.may_hide(photo.path):
            return
        self.tally.add("orphaned")
        if self.options.dry_run:
            return
        if self.options.prune:
            self._to_prune(photo, excluded=False)
            return
        self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
        self.records.forgotten(photo.id)
        self.tally.add("removed")

    def _to_prune(self, photo: KnownPhoto, *, excluded: bool) -> None:
        if len(self.to_prune) <= self.options.max_delete:
            self.to_prune.append((photo, excluded))

    def _count_dry_run(self, jobs: Iterator[Job]) -> None:
        for job in jobs:
            if not job.upload:
                self.tally.settle("already_in_bucket")
            else:
                self.tally.settle("uploaded" if job.known is None else "reuploaded")
        orphaned = self.tally["orphaned"]
        self._check_deletion_limit(self._deletions())
        self.tally.add("removed", orphaned)
        if self.options.prune:
            self.tally.add("pruned", orphaned)
        if self.options.prune_excluded:
            self.tally.add("excluded_pruned", self.tally["excluded_recorded"])

    def _deletions(self, *, orphaned: int | None = None, excluded: int | None = None) -> int:
        """How many bucket objects the run deletes: its orphans when pruning, its recorded
        photos now excluded when pruning those (the counts so far unless given)."""
        orphaned = self.tally["orphaned"] if orphaned is None else orphaned
        excluded = self.tally["excluded_recorded"] if excluded is None else excluded
        return orphaned * self.options.prune + excluded * self.options.prune_excluded

    def _check_deletion_limit(self, count: int) -> None:
        if count > self.options.max_delete:
            raise TooManyDeletions(
                TOO_MANY_DELETIONS.format(
                    album=self.album.name, count=count, limit=self.options.max_delete
                )
            )

    # Recording what the pool did -----------------------------------------------------------

    def _transfer(self, jobs: Iterator[Job]) -> None:
        """Upload (or just record) on the pool; record results from this thread.

        When the run must stop, no new file is started; files already in flight finish,
        whatever reached the bucket is recorded, and the error is raised.
        """
        stopping: list[SyncError] = []
        for job, future in self.bucket.transfers(jobs, stop=lambda: bool(stopping)):
            try:
                self._record(future.result())
            except FILE_ERRORS as exc:
                try:
                    self.failures.judge(job.local.path, exc, where=self.bucket.where)
                except SyncError as stop:
                    stopping.append(stop)
                else:
                    self.tally.settle()
        if stopping:
            raise stopping[0]

    def _record(self, done: Transferred) -> None:
        if done.job.known is None:
            self.tally.settle("uploaded" if done.uploaded else "already_in_bucket")
        else:
            self.tally.settle("reuploaded")
        if done.uploaded:
            self.tally.add("bytes_uploaded", done.size)
        self.tally.report()
        self.records.sent(done)

    def _remove_orphans(self) -> None:
        """Delete the bucket copies of photos gone from disk, when pruning, and of recorded
        photos now excluded, when pruning those; and forget them.

        (Without pruning, orphans were forgotten as the pass found them.)
        """
        if not self.to_prune:
            return
        self._check_deletion_limit(self._deletions())
        keys = {self.prefix + photo.path: (photo, excluded) for photo, excluded in self.to_prune}
        for key, future in self.bucket.deletes(list(keys)):
            photo, excluded = keys[key]
            try:
                future.result()
            except FILE_ERRORS as exc:
                self.failures.judge(photo.path, exc, where=self.bucket.where)
                continue
            self.records.forgotten(photo.id)
            if excluded:
                self.log.info("Deleted from S3, excluded: %s", photo.path)
                self.tally.add("excluded_pruned")
                continue
            self.log.info("Deleted from S3, gone from disk: %s", photo.path)
            self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
            self.tally.add("pruned")
            self.tally.add("removed")

    def _tick(self) -> None:
        """Between photos and while waiting on the pool: progress, the lease, due writes."""
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
