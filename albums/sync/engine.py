"""Sync one album folder with the bucket: the engine every entry point calls."""

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.storage import Storage
from django.db import transaction
from django.utils import timezone

from .. import conf
from ..exceptions import (
    AlbumFolderEmpty,
    AlbumFolderMissing,
    AlbumFolderUnsafe,
    StorageError,
    SyncAlreadyRunning,
    SyncError,
    TooManyDeletions,
)
from ..models import Album, Photo, SyncRun, SyncStatus, validate_album_folder
from ..storage import (
    RemoteObject,
    StorageBucket,
    key_problem,
    open_bucket,
    open_photo_storage,
)
from .errors import fatal_storage_error, file_error_text
from .lease import AlbumLease
from .media import ImageInfo, content_type_for, read_image_info
from .merge import Entry, KnownPhoto, merge_by_path
from .result import FileFailure, SyncResult
from .runs import close_abandoned_runs, close_run, finish_run, start_run
from .scan import FolderWalk, LocalFile, printable

logger = logging.getLogger("albums")

ProgressCallback = Callable[[int, int], None]

DB_CHUNK = 2000  # rows per bulk write: a fixed number of queries per chunk
FLUSH_SECONDS = 10.0  # record finished uploads at least this often, so a crash loses little
TICK_SECONDS = 1.0  # how often the main thread wakes to renew the lease while waiting
LIST_PAGE = 1000  # keys per ListObjectsV2 request: S3's most
READ_CHUNK = 5000  # photo rows per database read

ROOT_MISSING = "PHOTOS_ROOT ({root}) does not exist or is not a folder; is the disk mounted? Nothing was changed."
FOLDER_MISSING = "The folder of album {album!r} ({folder}) does not exist or is not a folder; is the disk mounted? Nothing was changed."
FOLDER_UNREADABLE = (
    "The folder of album {album!r} ({folder}) cannot be read: {cause}. Nothing was changed."
)
FOLDER_UNSAFE = (
    "The folder of album {album!r} ({folder!r}) is outside PHOTOS_ROOT; nothing was synced."
)
FOLDER_EMPTY = (
    "The folder of album {album!r} ({folder}) holds no photos, but {count} are recorded; "
    "refusing to treat them all as deleted. Nothing was changed. If the photos really are "
    "gone, delete the album's photos in the admin."
)
TOO_MANY_DELETIONS = (
    "Pruning album {album!r} would delete {count} objects from the bucket, more than the "
    "limit of {limit}; nothing was deleted. If that many photos really are gone, run again "
    "with --max-delete {count}."
)
LISTING_FAILED = (
    "Listing the bucket for album {album!r} failed: {cause}. The run stopped; what it had "
    "uploaded is recorded, and the next run goes on from there."
)
CHANGED_WHILE_UPLOADING = "changed while it was being uploaded; it will be uploaded on the next run"


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
    job: Job
    size: int
    mtime_ns: int
    content_type: str
    info: ImageInfo
    uploaded: bool


@dataclass(slots=True)
class Census:
    """What the run's first, quick pass found (see AlbumSync._take_census)."""

    photos: int = 0  # on disk
    new: int = 0  # on disk, not recorded
    recorded: int = 0
    orphaned: int = 0  # recorded, gone from disk
    unreadable: int = 0  # folders and files the walk could not read


class DryRunLog(logging.LoggerAdapter):
    """Marks every line of a dry run, which only says what it would do."""

    def process(self, msg, kwargs):
        return f"[dry run] {msg}", kwargs


class FileChanged(Exception):
    """The file changed on disk while the sync was reading it."""


def sync_album(
    *,
    album: Album,
    dry_run: bool = False,
    prune: bool = False,
    trigger: str = SyncRun.Trigger.COMMAND,
    run: SyncRun | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_delete: int | None = None,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """Make the bucket and the database match the album's folder, and record the run.

    Guarantees:
    - Idempotent: a second run with nothing changed on disk uploads nothing and reads no
      file contents; a file is uploaded only when the bucket lacks it, holds a different
      size, or the file changed on disk (size or mtime, to the nanosecond).
    - Never deletes from the bucket unless `prune` is true, never more than `max_delete`
      objects (ALBUMS_MAX_DELETE) in one run, and never anything when the album's folder is
      missing or suddenly empty (it raises instead).
    - Files modified in the last ALBUMS_SETTLE_SECONDS are left for the next run.
    - One file that cannot be read or uploaded is a failure in the result (status
      "partial"); the run goes on.
    - A network, credential or bucket error stops the run: what was uploaded before it is
      recorded, nothing else is, and a SyncError is raised with the run marked failed.
    - Two syncs of one album never run at once: the second raises SyncAlreadyRunning.
    - A dry run changes nothing in the bucket or the database (beyond its run record).

    `run` is a SyncRun created earlier (a queued run); otherwise one is created.
    """
    batch_size = batch_size or conf.batch_size()
    workers = workers or conf.workers()
    max_delete = conf.max_delete() if max_delete is None else max_delete
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")

    lease = None if dry_run else AlbumLease(album)
    if lease is not None:
        try:
            lease.acquire()
        except SyncAlreadyRunning as exc:
            if run is not None:
                close_run(run, status=SyncStatus.SKIPPED, message=str(exc))
            raise
    try:
        if lease is not None:
            close_abandoned_runs(album, starting=run)
        run = start_run(run, album=album, trigger=trigger, dry_run=dry_run, prune=prune)
        sync = AlbumSync(
            album=album,
            run=run,
            lease=lease,
            dry_run=dry_run,
            prune=prune,
            batch_size=batch_size,
            workers=workers,
            max_delete=max_delete,
            progress=progress,
        )
        try:
            result = sync.run()
        except SyncError as exc:
            exc.result = sync.result(status=SyncStatus.FAILED, message=str(exc))
            logger.error("Sync of album %r failed: %s", album.name, exc)
            diagnosis = _diagnose() if isinstance(exc, StorageError) else {}
            finish_run(run, album, exc.result, done=sync.done, diagnosis=diagnosis)
            raise
        except BaseException as exc:
            failed = sync.result(status=SyncStatus.FAILED, message=f"Unexpected error: {exc!r}")
            finish_run(run, album, failed, done=sync.done)
            raise
        finish_run(run, album, result, done=sync.done)
        return result
    finally:
        if lease is not None:
            lease.release()


def _diagnose() -> dict:
    """check_storage's findings, kept on a run the bucket failed, for the admin to show.

    It never hides the error that stopped the run: a diagnosis that fails is left out.
    """
    from ..diagnostics import diagnose_storage  # it builds on this package's errors

    try:
        return diagnose_storage().as_dict()
    except Exception:
        logger.exception("Could not diagnose the storage after a failed sync")
        return {}


class AlbumSync:
    """The state of one run; `run()` does the work. Only this thread touches the database.

    The run is one pass over the album in path order (see albums.sync.merge): the folder
    walk, the database rows and the bucket listing stream in side by side, each photo is
    decided as the pass reaches it, and its upload goes to the pool at once. What is held
    at any moment is a bounded window: one folder's listing, a page of rows, a page of the
    bucket listing, the uploads in flight and the records not yet written.
    """

    def __init__(
        self, *, album, run, lease, dry_run, prune, batch_size, workers, max_delete, progress
    ):
        self.album = album
        self.run_record = run
        self.lease = lease
        self.dry_run = dry_run
        self.prune = prune
        self.batch_size = batch_size
        self.workers = workers
        self.max_delete = max_delete
        self.progress = progress
        self.log = DryRunLog(logger, {}) if dry_run else logger
        self.prefix = f"{conf.key_prefix()}/{album.slug}/"
        self.counts = dict.fromkeys(
            (
                "scanned", "new", "existing", "orphaned", "uploaded", "reuploaded",
                "already_in_bucket", "unchanged", "deferred", "removed", "pruned",
                "bytes_uploaded",
            ),
            0,
        )  # fmt: skip
        self.failures: list[FileFailure] = []
        self.done = 0
        self.total = 0
        # Written to the database by _flush(), a chunk at a time.
        self._creates: list[Photo] = []
        self._updates: list[Photo] = []
        self._verified: list[int] = []
        self._forgotten: list[int] = []
        # Orphans to delete from the bucket (when pruning), kept until the run knows how
        # many there are: at most max_delete + 1 of them, since one more stops the run.
        self._to_prune: list[KnownPhoto] = []
        self._last_flush = time.monotonic()
        self.walk: FolderWalk | None = None
        self.storage: Storage | None = None
        self.bucket: StorageBucket | None = None
        self.pool: ThreadPoolExecutor | None = None

    # The steps ---------------------------------------------------------------------------

    def run(self) -> SyncResult:
        folder = self._album_folder()
        census = self._take_census(folder)
        if not census.photos and census.recorded and not census.unreadable:
            raise AlbumFolderEmpty(
                FOLDER_EMPTY.format(album=self.album.name, folder=folder, count=census.recorded)
            )
        if self.prune:
            self._check_deletion_limit(census.orphaned)
        self.total = census.photos

        self.storage = open_photo_storage(workers=self.workers)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="albums-sync")
        self.bucket = open_bucket(self.storage, workers=self.workers)
        try:
            listing = self._should_list(census)
            if census.new:
                self.log.info(
                    "Processing %d new photos in batches of %d", census.new, self.batch_size
                )
            self.walk = FolderWalk(folder, conf.photo_extensions(), on_failure=self._fail_unread)
            entries = merge_by_path(
                self._unless_folder_unreadable(((f.path, f) for f in self.walk), folder),
                self._recorded_photos(),
                self._listing() if listing else (),
            )
            files = self._files(entries)
            if not listing:
                files = self._check_each(files)
            jobs = self._plan(files)
            if self.dry_run:
                self._count_dry_run(jobs)
            else:
                self._transfer(self._cleaned_up_first(jobs))
                try:
                    self._remove_orphans()
                finally:
                    # Also when a delete stops the run: the uploads and the deletes done
                    # before it are recorded.
                    self._flush()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.bucket.close()
        return self.result(status=SyncStatus.PARTIAL if self.failures else SyncStatus.SUCCESS)

    def _album_folder(self) -> Path:
        root = conf.photos_root()
        if not root.is_dir():
            raise AlbumFolderMissing(ROOT_MISSING.format(root=root))
        try:
            validate_album_folder(self.album.folder)
        except ValidationError:
            raise AlbumFolderUnsafe(
                FOLDER_UNSAFE.format(album=self.album.name, folder=self.album.folder)
            ) from None
        folder = root / self.album.folder
        if not folder.is_dir():
            raise AlbumFolderMissing(FOLDER_MISSING.format(album=self.album.name, folder=folder))
        return folder

    def _take_census(self, folder: Path) -> Census:
        """A quick first pass: the folder without a stat of each file, against the recorded
        paths. It gives the progress total, the count of new photos, and the count of
        orphans, so that too many deletions stop the run before it changes anything. It
        holds no more than the main pass does."""
        walk = FolderWalk(folder, conf.photo_extensions())
        census = Census()
        entries = merge_by_path(
            self._unless_folder_unreadable(((path, True) for path in walk.paths()), folder),
            self._recorded_photos(paths_only=True),
        )
        for entry in entries:
            if entry.known:
                census.recorded += 1
            if not entry.local:
                census.orphaned += not walk.may_hide(entry.path)
                continue
            census.photos += 1
            census.new += not entry.known
        census.unreadable = len(walk.failures)
        return census

    def _unless_folder_unreadable(self, walk: Iterator, folder: Path) -> Iterator:
        """The walk's items, with the album folder itself turning unreadable as a clear error
        (a folder under it that cannot be read is a failure the walk records)."""
        try:
            yield from walk
        except OSError as exc:
            raise AlbumFolderMissing(
                FOLDER_UNREADABLE.format(album=self.album.name, folder=folder, cause=exc.strerror)
            ) from exc

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
        self.log.info("Checking %d photos in the bucket in batches of %d", photos, self.batch_size)
        return False

    def _recorded_photos(self, *, paths_only: bool = False) -> Iterator[tuple[str, object]]:
        """The album's photos as recorded, as (path, KnownPhoto) in path order (or (path,
        True) with `paths_only`), read a page of rows at a time.

        Pages start after the last path read (keyset pagination) rather than reading one
        long cursor, because this thread writes the same table between pages. A page never
        returns a row this run created: rows are created only for paths the merge has
        already passed, and the next page is read as soon as the merge passes the last row
        of a page. The path column sorts in binary order (see migration 0005).
        """
        fields = ("path",) if paths_only else ("path", "id", "size", "mtime_ns")
        rows = Photo.objects.filter(album=self.album).order_by("path").values_list(*fields)
        after = None
        while True:
            page = list((rows if after is None else rows.filter(path__gt=after))[:READ_CHUNK])
            for row in page:
                yield row[0], (True if paths_only else KnownPhoto(*row))
            if len(page) < READ_CHUNK:
                return
            after = page[-1][0]

    def _listing(self) -> Iterator[tuple[str, RemoteObject]]:
        """The bucket's objects under the album's prefix, as (path, object) in path order.

        The next page is requested on the pool while this one is merged, so the listing's
        round trips overlap with the work on each page.
        """
        strip = len(self.prefix)
        pages = self.bucket.list_pages(self.prefix, page_size=LIST_PAGE)
        ahead = self.pool.submit(next, pages, None)
        while True:
            try:
                page = ahead.result()
            except (ClientError, BotoCoreError) as exc:
                # Without the listing nothing can be decided: any error stops the run.
                raise self._fatal(exc) or StorageError(
                    LISTING_FAILED.format(album=self.album.name, cause=file_error_text(exc))
                ) from exc
            if page is None:
                return
            ahead = self.pool.submit(next, pages, None)
            for name, found in page:
                yield name[strip:], found

    def _files(self, entries: Iterator[Entry]) -> Iterator[Job]:
        """The photos on disk this run can sync, as jobs; everything else is settled here.

        A photo modified seconds ago is left for the next run (ALBUMS_SETTLE_SECONDS: it
        may still be being written), one whose name cannot become a key byte for byte is a
        failure (never renamed), and a recorded photo gone from disk is an orphan.
        """
        settle_ns = conf.settle_seconds() * 1_000_000_000
        for entry in entries:
            self._tick()
            local, known = entry.local, entry.known
            if local is None:
                if known is not None:
                    self._orphan(known)
                continue  # only in the bucket: not this run's to judge
            self.counts["scanned"] += 1
            self.total = max(self.total, self.counts["scanned"])
            key = self.prefix + local.path
            if settle_ns and 0 <= time.time_ns() - local.mtime_ns < settle_ns:
                self.log.info(
                    "Photo modified seconds ago, leaving it for the next run: %s", local.path
                )
                self.counts["deferred"] += 1
                self.done += 1
            elif problem := key_problem(self.storage, key):
                self._fail(local.path, problem)
                self.done += 1
            else:
                self.counts["new" if known is None else "existing"] += 1
                yield Job(local, key, known, entry.remote)

    def _check_each(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Where a listing would cost more: one size check (a HEAD) per photo, on the pool."""
        for job, future in self._in_pool(lambda job: self.bucket.size(job.key), jobs):
            try:
                found = future.result()
            except (ClientError, BotoCoreError, OSError) as exc:
                error = self._fatal(exc)
                if error is not None:
                    raise error from exc
                self._fail(job.local.path, file_error_text(exc))
                self.done += 1
                continue
            yield replace(job, remote=found)

    def _plan(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Decide each photo's fate: unchanged ones are recorded as verified on the spot,
        the rest go on as jobs to upload (or, when the bucket already has them, to record)."""
        for job in jobs:
            local, photo, found = job.local, job.known, job.remote
            if photo is None:
                if found is not None and found.size == local.size:
                    self.log.info("Photo already exists in S3, skipping upload: %s", local.path)
                    yield replace(job, upload=False)
                    continue
                if found is not None:
                    self.log.info("Object in S3 has another size, uploading: %s", local.path)
                self.log.info("Uploading new photo: %s", local.path)
            elif found is None:
                self.log.warning("Existing photo missing from S3, will re-upload: %s", local.path)
            elif (photo.size, photo.mtime_ns) != (local.size, local.mtime_ns):
                self.log.info("Photo changed on disk, will re-upload: %s", local.path)
            elif found.size != local.size:
                self.log.warning(
                    "Photo in S3 has %d bytes instead of %d, will re-upload: %s",
                    found.size, local.size, local.path,
                )  # fmt: skip
            else:
                self.counts["unchanged"] += 1
                self.done += 1
                if not self.dry_run:
                    self._verified.append(photo.id)
                    if len(self._verified) >= DB_CHUNK * 2:
                        self._flush()
                continue
            yield job

    def _orphan(self, photo: KnownPhoto) -> None:
        """A recorded photo the walk did not find. Under a folder that could not be read it
        is not an orphan: it may well be there."""
        if self.walk.may_hide(photo.path):
            return
        self.counts["orphaned"] += 1
        if self.dry_run:
            return
        if self.prune:
            if len(self._to_prune) <= self.max_delete:
                self._to_prune.append(photo)
            return
        self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
        self._forgotten.append(photo.id)
        self.counts["removed"] += 1
        if len(self._forgotten) >= DB_CHUNK * 2:
            self._flush()

    def _cleaned_up_first(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Before the run's first upload in parts, abort the parts a killed run left behind.

        One request, made only when this run has a file big enough to go up in parts, so
        none at all in the common case. Without the permission, the bucket's lifecycle rule
        (see README) is the safety net, so a refusal is only logged.
        """
        threshold = self.bucket.multipart_threshold
        if threshold is None:
            yield from jobs
            return
        for job in jobs:
            if job.upload and job.local.size >= threshold:
                self._abort_unfinished_uploads()
                yield job
                yield from jobs
                return
            yield job

    def _abort_unfinished_uploads(self) -> None:
        try:
            aborted = self.bucket.abort_unfinished_uploads(self.prefix)
        except ClientError as exc:
            self.log.warning("Could not clean up unfinished uploads: %s", file_error_text(exc))
            return
        except BotoCoreError as exc:
            raise self._fatal(exc) from exc
        if aborted:
            self.log.warning(
                "Aborted %d unfinished multipart uploads left by an earlier run", aborted
            )

    def _transfer(self, jobs: Iterator[Job]) -> None:
        """Upload (or just record) on the pool; write results from this thread in chunks.

        On a network or credential error no new file is started; files already in flight
        finish, whatever reached the bucket is recorded, and the error is raised.
        """
        fatal: list[StorageError] = []  # the first one stops new files from starting
        try:
            for job, future in self._in_pool(self._transfer_one, jobs, stop=lambda: bool(fatal)):
                try:
                    self._record(future.result())
                except (
                    OSError,
                    ClientError,
                    BotoCoreError,
                    FileChanged,
                    SuspiciousFileOperation,
                ) as exc:
                    error = self._fatal(exc)
                    if error is None:
                        self._fail(job.local.path, file_error_text(exc))
                        self.done += 1
                    else:
                        fatal.append(error)
                except StorageError as exc:
                    fatal.append(exc)
        except Exception:
            # The pass itself stopped (the listing failed, the folder went away): the
            # uploads in flight have finished and are recorded before the error goes on.
            self._flush()
            raise
        if fatal:
            self._flush()
            raise fatal[0]

    def _remove_orphans(self) -> None:
        """Delete the bucket copies of photos gone from disk, when pruning, and forget them.

        (Without pruning, orphans were forgotten as the pass found them.)
        """
        if not self._to_prune:
            return
        self._check_deletion_limit(self.counts["orphaned"])
        keys = {self.prefix + photo.path: photo for photo in self._to_prune}
        for key, future in self._in_pool(self.bucket.delete, list(keys)):
            photo = keys[key]
            try:
                future.result()
            except (ClientError, BotoCoreError, OSError) as exc:
                error = self._fatal(exc)
                if error is not None:
                    raise error from exc
                self._fail(photo.path, file_error_text(exc))
                continue
            self.log.info("Deleted from S3, gone from disk: %s", photo.path)
            self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
            self._forgotten.append(photo.id)
            self.counts["pruned"] += 1
            self.counts["removed"] += 1

    def _check_deletion_limit(self, count: int) -> None:
        if count > self.max_delete:
            raise TooManyDeletions(
                TOO_MANY_DELETIONS.format(album=self.album.name, count=count, limit=self.max_delete)
            )

    def _count_dry_run(self, jobs: Iterator[Job]) -> None:
        for job in jobs:
            if not job.upload:
                self.counts["already_in_bucket"] += 1
            elif job.known is None:
                self.counts["uploaded"] += 1
            else:
                self.counts["reuploaded"] += 1
            self.done += 1
        orphaned = self.counts["orphaned"]
        if self.prune and orphaned:
            self._check_deletion_limit(orphaned)
        self.counts["removed"] = orphaned
        self.counts["pruned"] = orphaned if self.prune else 0
        self.done = self.total = max(self.total, self.counts["scanned"])

    # Work done on the pool's threads: no database access here ---------------------------

    def _transfer_one(self, job: Job) -> Transferred:
        with open(job.local.abspath, "rb") as file:
            opened = os.fstat(file.fileno())
            info = read_image_info(file)
            content_type = content_type_for(job.local.path)
            if job.upload:
                file.seek(0)
                self.bucket.upload(job.key, file, size=opened.st_size, content_type=content_type)
                after = os.fstat(file.fileno())
                if (after.st_size, after.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
                    # What reached the bucket may be a mix of old and new bytes: remove it, so
                    # that the next run cannot mistake it for the photo.
                    self.bucket.delete(job.key)
                    raise FileChanged(CHANGED_WHILE_UPLOADING)
            elif not self._same_content(job, file):
                file.seek(0)
                self.bucket.upload(job.key, file, size=opened.st_size, content_type=content_type)
                job = replace(job, upload=True)
        return Transferred(
            job, opened.st_size, opened.st_mtime_ns, content_type, info, uploaded=job.upload
        )

    def _same_content(self, job: Job, file) -> bool:
        """Size matched already; where the listing gave a plain MD5 ETag, compare it too."""
        etag = job.remote.etag if job.remote is not None else ""
        if not etag or "-" in etag or len(etag) != 32:
            return True
        file.seek(0)
        return hashlib.file_digest(file, "md5").hexdigest() == etag

    # Helpers ----------------------------------------------------------------------------

    def _in_pool(
        self, fn: Callable, items: Iterable, *, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[tuple[object, Future]]:
        """Run `fn` over `items` on the pool with at most max(batch, workers) in flight,
        yielding (item, future) as each finishes. Stops taking new items once `stop()`.
        If taking the next item raises, the items in flight are still yielded, then the
        error is raised: what already went to the bucket gets recorded."""
        window = max(self.batch_size, self.workers)
        items = iter(items)
        pending: dict[Future, object] = {}
        broken: list[Exception] = []  # what stopped `items`, raised once `pending` is done

        def fill():
            while len(pending) < window and not broken and not stop():
                try:
                    item = next(items)
                except StopIteration:
                    return
                except Exception as exc:
                    broken.append(exc)
                    return
                pending[self.pool.submit(fn, item)] = item

        fill()
        while pending:
            finished, _ = wait(pending, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
            self._tick()
            for future in finished:
                yield pending.pop(future), future
            fill()
        if broken:
            raise broken[0]

    def _tick(self) -> None:
        self._report_progress()
        if self.lease is not None:
            self.lease.renew_if_due()
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self._flush()

    def _record(self, done: Transferred) -> None:
        job, now = done.job, timezone.now()
        photo = Photo(
            id=job.known.id if job.known else None,
            album=self.album,
            path=job.local.path,
            key=job.key,
            size=done.size,
            mtime_ns=done.mtime_ns,
            content_type=done.content_type,
            width=done.info.width,
            height=done.info.height,
            taken_at=done.info.taken_at,
            uploaded_at=now if done.uploaded else None,
            verified_at=now,
        )
        if job.known is None:
            self._creates.append(photo)
            self.counts["uploaded" if done.uploaded else "already_in_bucket"] += 1
        else:
            self._updates.append(photo)
            self.counts["reuploaded"] += 1
        if done.uploaded:
            self.counts["bytes_uploaded"] += done.size
        self.done += 1
        self._report_progress()
        if len(self._creates) + len(self._updates) >= DB_CHUNK:
            self._flush()

    def _flush(self) -> None:
        """Write what the run has decided and its progress: a few queries per chunk, in one
        short transaction."""
        self._last_flush = time.monotonic()
        if self.dry_run:
            return
        creates, updates = self._creates, self._updates
        verified, forgotten = self._verified, self._forgotten
        self._creates, self._updates, self._verified, self._forgotten = [], [], [], []
        with transaction.atomic():
            if creates:
                Photo.objects.bulk_create(creates, batch_size=DB_CHUNK)
            if updates:
                # A CASE per field takes two parameters per row (Django counts one): half
                # a chunk stays under SQLite's 32,766 parameters.
                Photo.objects.bulk_update(updates, UPDATED_FIELDS, batch_size=DB_CHUNK // 2)
            if verified:
                Photo.objects.filter(pk__in=verified).update(verified_at=timezone.now())
            if forgotten:
                Photo.objects.filter(pk__in=forgotten).delete()
            SyncRun.objects.filter(pk=self.run_record.pk).update(
                files_done=self.done, files_total=self.total, failed=len(self.failures)
            )

    def _fail_unread(self, failure: FileFailure) -> None:
        self._fail(failure.path, failure.error)

    def _fail(self, path: str, error: str) -> None:
        path = printable(path)
        self.log.warning("Failed: %s: %s", path, error)
        self.failures.append(FileFailure(path, error))

    def _fatal(self, exc: Exception) -> StorageError | None:
        return fatal_storage_error(exc, album=self.album.name, storage=self.storage)

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    def result(self, *, status: str, message: str = "") -> SyncResult:
        return SyncResult(
            album=self.album.slug,
            run_id=self.run_record.pk,
            status=status,
            dry_run=self.dry_run,
            message=message,
            failures=tuple(self.failures),
            **self.counts,
        )


UPDATED_FIELDS = [
    "key", "size", "mtime_ns", "content_type", "width", "height", "taken_at",
    "uploaded_at", "verified_at",
]  # fmt: skip
