"""The use cases every door calls: sync albums here and now, or run a queued sync.

Each takes the album's lease, keeps the run record (albums.sync.runs) and lets the engine
(albums.sync.engine) do the work; the doors only read input, call one of these and report.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from ..exceptions import AlbumsNotFound, StorageError, SyncAlreadyRunning, SyncError
from ..models import Album, SyncRun, SyncStatus
from ..storage.diagnostics import diagnose_storage
from . import runs
from .discover import discover_albums
from .engine import AlbumSync, SyncOptions
from .lease import AlbumLease
from .result import SyncResult
from .tally import ProgressCallback

logger = logging.getLogger("albums")

UNKNOWN_ALBUMS = "Unknown album {slugs}. Known albums: {known}."
NO_ALBUMS = "No albums to sync. Create one in the admin, or run with --discover to make one per folder of PHOTOS_ROOT."


def sync_album(
    *,
    album: Album,
    dry_run: bool = False,
    prune: bool = False,
    prune_excluded: bool = False,
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
    - Never deletes from the bucket unless `prune` is true (photos gone from disk) or
      `prune_excluded` is (recorded photos an exclusion now covers), never more than
      `max_delete` objects (ALBUMS_MAX_DELETE) in one run, and never anything when the
      album's folder is missing or suddenly empty (it raises instead).
    - What an exclusion covers (built-in NAS and OS clutter, ALBUMS_EXCLUDE, the album's
      .photosite-ignore) is neither read nor sent; a recorded photo it covers keeps its
      record and its bucket copy (unless `prune_excluded`), and is never taken as deleted.
    - Files modified in the last ALBUMS_SETTLE_SECONDS are left for the next run.
    - One file that cannot be read or uploaded is a failure in the result (status
      "partial"); the run goes on.
    - A network, credential or bucket error stops the run: what was uploaded before it is
      recorded, nothing else is, and a SyncError is raised with the run marked failed (and,
      once the album is free again, the storage's diagnosis kept on it).
    - Two syncs of one album never run at once: the second raises SyncAlreadyRunning.
    - A dry run changes nothing in the bucket or the database (beyond its run record).

    `run` is a SyncRun created earlier (a queued run); otherwise one is created. A raised
    SyncError carries the run's result as `.result`.
    """
    options = SyncOptions.resolve(
        dry_run=dry_run,
        prune=prune,
        prune_excluded=prune_excluded,
        batch_size=batch_size,
        workers=workers,
        max_delete=max_delete,
    )
    lease = None if dry_run else AlbumLease(album)
    try:
        with lease or nullcontext():
            if lease is not None:
                runs.close_abandoned(album, starting=run)
            run = runs.start(run, album=album, trigger=trigger, dry_run=dry_run, prune=prune)
            return _sync_and_record(AlbumSync(
                album=album, run=run, options=options, lease=lease, progress=progress
            ), run)  # fmt: skip
    except SyncAlreadyRunning as exc:
        if run is not None:
            runs.skip(run, message=str(exc))
            exc.result = SyncResult(
                album=album.slug, run_id=run.pk, status=SyncStatus.SKIPPED, message=str(exc)
            )
        raise
    except StorageError as exc:
        # Taken once the lease is released: the diagnosis makes requests of its own, and the
        # album need not wait for them.
        if getattr(exc, "result", None) is not None:
            runs.add_diagnosis(exc.result.run_id, _diagnose())
        raise


def _sync_and_record(sync: AlbumSync, run: SyncRun) -> SyncResult:
    album = sync.album
    try:
        result = sync.run()
    except SyncError as exc:
        exc.result = sync.result(status=SyncStatus.FAILED, message=str(exc))
        logger.error("Sync of album %r failed: %s", album.name, exc)
        runs.finish(run, album, exc.result, done=sync.tally.done)
        raise
    except BaseException as exc:
        failed = sync.result(status=SyncStatus.FAILED, message=f"Unexpected error: {exc!r}")
        runs.finish(run, album, failed, done=sync.tally.done)
        raise
    runs.finish(run, album, result, done=sync.tally.done)
    return result


def _diagnose() -> dict:
    """check_storage's findings; a diagnosis that fails is left out, never hiding the error
    that stopped the run."""
    try:
        return diagnose_storage().as_dict()
    except Exception:
        logger.exception("Could not diagnose the storage after a failed sync")
        return {}


@dataclass(frozen=True, slots=True)
class AlbumOutcome:
    """One album of `sync_albums`: its result, and the error that stopped it, if any."""

    album: Album
    result: SyncResult | None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.ok


def select_albums(
    slugs: Iterable[str], *, discover: bool = False
) -> tuple[list[Album], list[Album]]:
    """(the albums named by `slugs`, or all of them; the albums `discover` created first).

    Raises AlbumsNotFound for unknown slugs or when there is no album at all, and
    AlbumFolderMissing when `discover` finds no PHOTOS_ROOT.
    """
    slugs = list(slugs)
    created = discover_albums() if discover else []
    albums = list(Album.objects.filter(slug__in=slugs) if slugs else Album.objects.all())
    unknown = sorted(set(slugs) - {album.slug for album in albums})
    if unknown:
        known = ", ".join(Album.objects.values_list("slug", flat=True)[:20]) or "none"
        raise AlbumsNotFound(UNKNOWN_ALBUMS.format(slugs=", ".join(unknown), known=known))
    if not albums:
        raise AlbumsNotFound(NO_ALBUMS)
    return albums, created


def sync_albums(
    albums: Iterable[Album],
    *,
    progress: Callable[[Album], ProgressCallback | None] = lambda album: None,
    **options,
) -> Iterator[AlbumOutcome]:
    """Sync each album in turn (see `sync_album` for `options`), yielding how each went.

    An album that fails, or that a setting keeps from syncing, does not stop the others.
    """
    for album in albums:
        try:
            result = sync_album(album=album, progress=progress(album), **options)
        except (SyncError, ImproperlyConfigured) as exc:
            yield AlbumOutcome(album, getattr(exc, "result", None), exc)
        else:
            yield AlbumOutcome(album, result)


def run_queued_sync(run_id: int) -> SyncResult | None:
    """Run the queued SyncRun `run_id` (the worker's side of `queue_sync`); its result, or
    None when it was no longer queued.

    Idempotent under re-delivery (django-q2 #327): the run is claimed with one conditional
    UPDATE from "queued", so a task delivered twice syncs once. A sync refused because
    another holds the album's lease is recorded as skipped.
    """
    run = runs.claim(run_id)
    if run is None:
        logger.info("Sync run #%s is no longer queued; nothing to do.", run_id)
        return None
    try:
        return sync_album(
            album=run.album, run=run, dry_run=run.dry_run, prune=run.prune, trigger=run.trigger
        )
    except SyncError as exc:
        return exc.result  # recorded on the run: failed, or skipped when the album was busy
    except Exception as exc:
        runs.fail_unstarted(run_id, exc)
        raise
