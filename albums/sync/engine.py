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
from .result import FileFailure, SyncResult
from .runs import close_abandoned_runs, close_run, finish_run, start_run
from .scan import LocalFile, printable, scan_folder

logger = logging.getLogger("albums")

ProgressCallback = Callable[[int, int], None]

DB_CHUNK = 2000  # rows per bulk write: a fixed number of queries per chunk
FLUSH_SECONDS = 10.0  # record finished uploads at least this often, so a crash loses little
TICK_SECONDS = 1.0  # how often the main thread wakes to renew the lease while waiting
LIST_PAGE = 1000  # keys per ListObjectsV2 request

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
CHANGED_WHILE_UPLOADING = "changed while it was being uploaded; it will be uploaded on the next run"


@dataclass(frozen=True, slots=True)
class KnownPhoto:
    id: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Job:
    """One file to send to the bucket (upload=True) or only to record (upload=False)."""

    local: LocalFile
    key: str
    known: KnownPhoto | None
    upload: bool


@dataclass(frozen=True, slots=True)
class Transferred:
    job: Job
    size: int
    mtime_ns: int
    content_type: str
    info: ImageInfo
    uploaded: bool


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
    """The state of one run; `run()` does the work. Only this thread touches the database."""

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
        self._creates: list[Photo] = []
        self._updates: list[Photo] = []
        self._last_flush = time.monotonic()
        self.storage: Storage | None = None
        self.bucket: StorageBucket | None = None
        self.remote: dict[str, RemoteObject] = {}
        self.pool: ThreadPoolExecutor | None = None

    # The steps ---------------------------------------------------------------------------

    def run(self) -> SyncResult:
        folder = self._album_folder()
        try:
            files, unreadable = scan_folder(folder, conf.photo_extensions())
        except OSError as exc:
            raise AlbumFolderMissing(
                FOLDER_UNREADABLE.format(album=self.album.name, folder=folder, cause=exc.strerror)
            ) from exc
        self.failures.extend(unreadable)
        known = self._known_photos()
        if not files and known and not unreadable:
            raise AlbumFolderEmpty(
                FOLDER_EMPTY.format(album=self.album.name, folder=folder, count=len(known))
            )
        self.storage = open_photo_storage(workers=self.workers)
        on_disk = {local.path for local in files}
        files = self._drop_unstorable(self._settled(files))
        new, existing, orphaned = self._classify(files, on_disk, known, unreadable)
        self.total = len(on_disk)  # progress: every photo found is done once decided
        self.done = len(on_disk) - len(files)  # left for later, or not storable
        self._report_progress()

        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="albums-sync")
        self.bucket = open_bucket(self.storage, workers=self.workers)
        try:
            keys = [self._key(local) for local in files]
            self.remote = self._check_bucket(keys, expected=len(known))
            jobs = self._plan(new, existing, known, self.remote)
            if self.dry_run:
                self._count_dry_run(jobs, orphaned)
            else:
                self._abort_unfinished_uploads(jobs)
                self._transfer(jobs)
                self._remove_orphans(orphaned, known)
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

    def _known_photos(self) -> dict[str, KnownPhoto]:
        rows = Photo.objects.filter(album=self.album).values_list("id", "path", "size", "mtime_ns")
        return {
            path: KnownPhoto(pk, size, mtime_ns) for pk, path, size, mtime_ns in rows.iterator(2000)
        }

    def _drop_unstorable(self, files: list[LocalFile]) -> list[LocalFile]:
        """Files whose name cannot become a key byte for byte are failures, not renamed."""
        kept = []
        for local in files:
            problem = key_problem(self.storage, self._key(local))
            if problem:
                self._fail(local.path, problem)
            else:
                kept.append(local)
        return kept

    def _settled(self, files: list[LocalFile]) -> list[LocalFile]:
        """Leave files modified in the last ALBUMS_SETTLE_SECONDS for the next run: they
        may still be being written (a camera import, a copy in progress)."""
        settle_ns = conf.settle_seconds() * 1_000_000_000
        if not settle_ns:
            return files
        now_ns = time.time_ns()
        ready = []
        for local in files:
            if 0 <= now_ns - local.mtime_ns < settle_ns:
                self.log.info(
                    "Photo modified seconds ago, leaving it for the next run: %s", local.path
                )
                self.counts["deferred"] += 1
            else:
                ready.append(local)
        return ready

    def _classify(self, files, on_disk, known, unreadable):
        """Sort into new (disk only), existing (both) and orphaned (database only).

        `on_disk` holds every photo found, including those this run leaves alone. A photo
        under a folder that could not be read is not orphaned: it may well be there.
        """
        new = [f for f in files if f.path not in known]
        existing = [f for f in files if f.path in known]
        blind_spots = tuple(failure.path.rstrip("/") + "/" for failure in unreadable)
        orphaned = [
            path
            for path in known
            if path not in on_disk and not (blind_spots and path.startswith(blind_spots))
        ]
        self.counts.update(
            scanned=len(on_disk), new=len(new), existing=len(existing), orphaned=len(orphaned)
        )
        return new, existing, orphaned

    def _check_bucket(self, keys: list[str], *, expected: int) -> dict[str, RemoteObject]:
        """What the bucket holds under the album's keys.

        Fast path: where the backend can list (S3), one paginated listing of the album's
        prefix costs ceil(objects / 1000) requests instead of one HEAD per photo; it is
        used whenever that is fewer requests. Otherwise one size check per key, concurrently.
        """
        if not keys:
            return {}
        pages = math.ceil(max(expected, len(keys)) / LIST_PAGE)
        if self.bucket.can_list and pages < len(keys):
            self.log.info("Listing %s to check %d photos", self.prefix, len(keys))
            try:
                return self.bucket.list(self.prefix)
            except (ClientError, BotoCoreError) as exc:
                raise self._fatal(exc) from exc
        self.log.info(
            "Checking %d photos in the bucket in batches of %d", len(keys), self.batch_size
        )
        remote = {}
        for key, future in self._in_pool(self.bucket.size, keys):
            try:
                found = future.result()
            except (ClientError, BotoCoreError) as exc:
                raise self._fatal(exc) from exc
            if found is not None:
                remote[key] = found
        return remote

    def _plan(self, new, existing, known, remote) -> list[Job]:
        """Decide each file's fate; record unchanged photos as verified right away."""
        jobs = []
        for local in new:
            key = self._key(local)
            found = remote.get(key)
            if found is not None and found.size == local.size:
                self.log.info("Photo already exists in S3, skipping upload: %s", local.path)
                jobs.append(Job(local, key, None, upload=False))
            else:
                if found is not None:
                    self.log.info("Object in S3 has another size, uploading: %s", local.path)
                self.log.info("Uploading new photo: %s", local.path)
                jobs.append(Job(local, key, None, upload=True))
        verified = []
        for local in existing:
            key = self._key(local)
            photo = known[local.path]
            found = remote.get(key)
            if found is None:
                self.log.warning("Existing photo missing from S3, will re-upload: %s", local.path)
            elif (photo.size, photo.mtime_ns) != (local.size, local.mtime_ns):
                self.log.info("Photo changed on disk, will re-upload: %s", local.path)
            elif found.size != local.size:
                self.log.warning(
                    "Photo in S3 has %d bytes instead of %d, will re-upload: %s",
                    found.size, local.size, local.path,
                )  # fmt: skip
            else:
                verified.append(photo.id)
                continue
            jobs.append(Job(local, key, photo, upload=True))
        self.counts["unchanged"] = len(verified)
        if not self.dry_run:
            self._mark_verified(verified)
        self.done += len(verified)
        self._report_progress()
        return jobs

    def _abort_unfinished_uploads(self, jobs: list[Job]) -> None:
        """Before sending large files again, abort the parts a killed run left behind.

        Only when this run has a file big enough to go up in parts: one request, and none
        at all in the common case. Without the permission, the bucket's lifecycle rule
        (see README) is the safety net, so a refusal is only logged.
        """
        threshold = self.bucket.multipart_threshold
        if threshold is None or not any(j.upload and j.local.size >= threshold for j in jobs):
            return
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

    def _transfer(self, jobs: list[Job]) -> None:
        """Upload (or just record) on the pool; write results from this thread in chunks.

        On a network or credential error no new file is started; files already in flight
        finish, whatever reached the bucket is recorded, and the error is raised.
        """
        new_count = sum(1 for job in jobs if job.known is None)
        if new_count:
            self.log.info("Processing %d new photos in batches of %d", new_count, self.batch_size)
        fatal: list[StorageError] = []  # the first one stops new files from starting
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
        if fatal:
            self._flush()
            raise fatal[0]

    def _remove_orphans(self, orphaned: list[str], known: dict[str, KnownPhoto]) -> None:
        """Forget photos gone from disk; delete their bucket copies only when pruning."""
        if not orphaned:
            return
        removable = orphaned
        if self.prune:
            self._check_deletion_limit(len(orphaned))
            removable = []
            keys = {self.prefix + path: path for path in orphaned}
            for key, future in self._in_pool(self.bucket.delete, list(keys)):
                try:
                    future.result()
                except (ClientError, BotoCoreError, OSError) as exc:
                    error = self._fatal(exc)
                    if error is not None:
                        raise error from exc
                    self._fail(keys[key], file_error_text(exc))
                    continue
                self.log.info("Deleted from S3, gone from disk: %s", keys[key])
                removable.append(keys[key])
            self.counts["pruned"] = len(removable)
        for path in removable:
            self.log.info("Photo gone from disk, forgetting it: %s", path)
        ids = [known[path].id for path in removable]
        for start in range(0, len(ids), DB_CHUNK):
            Photo.objects.filter(pk__in=ids[start : start + DB_CHUNK]).delete()
        self.counts["removed"] = len(removable)

    def _check_deletion_limit(self, count: int) -> None:
        if count > self.max_delete:
            raise TooManyDeletions(
                TOO_MANY_DELETIONS.format(album=self.album.name, count=count, limit=self.max_delete)
            )

    def _count_dry_run(self, jobs: list[Job], orphaned: list[str]) -> None:
        if self.prune and orphaned:
            self._check_deletion_limit(len(orphaned))
        for job in jobs:
            if not job.upload:
                self.counts["already_in_bucket"] += 1
            elif job.known is None:
                self.counts["uploaded"] += 1
            else:
                self.counts["reuploaded"] += 1
        self.counts["removed"] = len(orphaned)
        self.counts["pruned"] = len(orphaned) if self.prune else 0
        self.done = self.total

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
        etag = getattr(self.remote.get(job.key), "etag", "")
        if not etag or "-" in etag or len(etag) != 32:
            return True
        file.seek(0)
        return hashlib.file_digest(file, "md5").hexdigest() == etag

    # Helpers ----------------------------------------------------------------------------

    def _key(self, local: LocalFile) -> str:
        return self.prefix + local.path

    def _in_pool(
        self, fn: Callable, items: Iterable, *, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[tuple[object, Future]]:
        """Run `fn` over `items` on the pool with at most max(batch, workers) in flight,
        yielding (item, future) as each finishes. Stops taking new items once `stop()`."""
        window = max(self.batch_size, self.workers)
        items = iter(items)
        pending: dict[Future, object] = {}

        def fill():
            while len(pending) < window and not stop():
                try:
                    item = next(items)
                except StopIteration:
                    return
                pending[self.pool.submit(fn, item)] = item

        fill()
        while pending:
            finished, _ = wait(pending, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
            self._tick()
            for future in finished:
                yield pending.pop(future), future
            fill()

    def _tick(self) -> None:
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
        """Write recorded photos and the run's progress: a few queries per chunk."""
        self._last_flush = time.monotonic()
        if self.dry_run:
            return
        creates, updates = self._creates, self._updates
        self._creates, self._updates = [], []
        with transaction.atomic():
            if creates:
                Photo.objects.bulk_create(creates, batch_size=DB_CHUNK)
            if updates:
                # A CASE per field takes two parameters per row (Django counts one): half
                # a chunk stays under SQLite's 32,766 parameters.
                Photo.objects.bulk_update(updates, UPDATED_FIELDS, batch_size=DB_CHUNK // 2)
            SyncRun.objects.filter(pk=self.run_record.pk).update(
                files_done=self.done, files_total=self.total, failed=len(self.failures)
            )

    def _mark_verified(self, ids: list[int]) -> None:
        now = timezone.now()
        for start in range(0, len(ids), DB_CHUNK * 2):
            Photo.objects.filter(pk__in=ids[start : start + DB_CHUNK * 2]).update(verified_at=now)

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
