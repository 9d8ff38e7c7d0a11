"""The use cases every door calls: sync albums here and now, or run a queued sync.

Each takes the album's lease, keeps the run record (albums.sync.runs) and lets the engine
(albums.sync.engine) do the work; the doors only read input, call one of these and report.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured, ValidationError

from ... import conf
from ...exceptions import (
    AlbumsNotFound,
    StorageError,
    SyncAlreadyRunning,
    SyncError,
    TimeBudgetSpent,
)
from ...models import Album, SyncRun, SyncStatus
from ..engine.album_sync import AlbumSync, SyncOptions
from ..engine.budget import TimeBudget
from ..library.discover import discover_albums
from ..outcome.result import (
    INTERRUPTED,
    STOPPED_BY_EXIT,
    AlbumOutcome,
    RestoreResult,
    SyncResult,
    VerifyResult,
)
from ..outcome.tally import ProgressCallback
from ..records import runs
from ..records.lease import AlbumLease
from ..records.photos import forget_vanished
from ..recovery.restore import AlbumRestore
from ..recovery.verify import AlbumVerify
from .continued import continue_album
from .many import ManyAlbums

logger = logging.getLogger("albums")

UNKNOWN_ALBUMS = "Unknown album {slugs}. Known albums: {known}."
BAD_NEW_ALBUM = "Cannot make album {slug!r} from the bucket: {errors}"
ALREADY_RECORDED = (
    "Album {slug!r} already has {count} recorded photos: restore them without --from-bucket."
)
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
    kept_vanished: list[int] | None = None,
    render_all: bool = False,
    force_render: bool = False,
    budget: TimeBudget | None = None,
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
    - A file modified in the last ALBUMS_SETTLE_SECONDS is synced once it has stopped
      changing (two looks a second apart agree); one still changing after that long is
      left for the next run, and named.
    - One file that cannot be read or uploaded is a failure in the result (status
      "partial"); the run goes on, also when its upload gets no answer while the endpoint
      answers other requests (see Failures.judge).
    - An endpoint that answers nothing, or a credential or bucket error, stops the run: what
      was uploaded before it is recorded, nothing else is, and a SyncError is raised with
      the run marked failed (and, once the album is free again, the storage's diagnosis kept
      on it, asking nothing the failure already answered).
    - KeyboardInterrupt (Ctrl-C): no new upload starts, the uploads in flight finish and are
      recorded, the run is marked failed with INTERRUPTED, and KeyboardInterrupt goes on.
    - Two syncs of one album never run at once: the second raises SyncAlreadyRunning.
    - With `budget` (a background task's; see albums.sync.engine.budget), once it is spent
      no new photo starts, those in flight finish and are recorded, and the run ends
      "continued", the rest queued as a run of its own in the same transaction (a run that
      recorded nothing in its budget fails instead: it would only start over). A run after
      an interrupted one (killed, Ctrl-C, the task timeout) sends nothing it had recorded,
      and says so (SyncRun.follows).
    - A dry run changes nothing in the bucket or the database (beyond its run record).
    - Every image it sends gets its web renditions (ALBUMS_RENDITIONS), unless the bucket
      has them for that content already; a photo that cannot be rendered is backed up all
      the same, its reason recorded. Of the unchanged photos without them, it renders
      ALBUMS_RENDITIONS_PER_RUN, all of them with `render_all`, every photo again with
      `force_render`. A no-op reads and sends nothing for renditions.

    `run` is a SyncRun created earlier (a queued run); otherwise one is created. A raised
    SyncError carries the run's result as `.result`. With `kept_vanished` (see
    `sync_albums`), the records of photos gone from disk are not deleted but their ids
    added to it.
    """
    options = SyncOptions.resolve(
        dry_run=dry_run,
        prune=prune,
        prune_excluded=prune_excluded,
        batch_size=batch_size,
        workers=workers,
        max_delete=max_delete,
        render_all=render_all,
        force_render=force_render,
    )

    def engine(run: SyncRun, lease: AlbumLease | None) -> AlbumSync:
        return AlbumSync(
            album=album,
            run=run,
            options=options,
            lease=lease,
            progress=progress,
            kept_vanished=kept_vanished,
            budget=budget,
        )

    return _run(
        album,
        run,
        engine,
        kind=SyncRun.Kind.SYNC,
        trigger=trigger,
        lease=None if dry_run else AlbumLease(album),
        options={"dry_run": dry_run, "prune": prune},
        skipped=SyncResult,
    )


def verify_album(
    *,
    album: Album,
    repair: bool = False,
    trigger: str = SyncRun.Trigger.COMMAND,
    run: SyncRun | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Check that every recorded photo of the album is sound: its file, its record and its
    bucket copy agree; record the run (of kind "verify").

    Guarantees:
    - Reads every recorded photo's file once; asks the bucket for one listing of the album's
      prefix (on S3), never a download.
    - Reports each photo whose bucket copy is missing or holds other bytes, whose file's
      bytes changed while its size and modification time did not, whose file changed since
      the last sync, or whose file is gone; the status is "partial" if any is left.
    - With `repair`, uploads again a bucket copy that is missing or differs, from a file
      that still matches its record; never from one that does not (reported instead).
    - Photos recorded before checksums were kept, found whole, get their MD5 and ETag.
    - Takes the album's lease: never beside a sync of the same album.
    """
    workers = workers or conf.workers()

    def engine(run: SyncRun, lease: AlbumLease | None) -> AlbumVerify:
        return AlbumVerify(
            album=album, run=run, repair=repair, workers=workers, lease=lease, progress=progress
        )

    return _run(
        album,
        run,
        engine,
        kind=SyncRun.Kind.VERIFY,
        trigger=trigger,
        lease=AlbumLease(album),
        options={"repair": repair},
        skipped=VerifyResult,
    )


def restore_album(
    *,
    album: Album,
    to: Path | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    trigger: str = SyncRun.Trigger.COMMAND,
    run: SyncRun | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """Bring back every recorded photo of the album missing from its folder (or from `to`),
    checked against what was uploaded; record the run (of kind "restore").

    Guarantees:
    - Never deletes anything, on disk or in the bucket; a file that exists and is not as
      recorded is left alone and reported (with `overwrite`, moved aside as
      `name.local-<date>.ext` and the recorded one restored).
    - A download that does not match its record is not written; the run is partial.
    - A photo appears whole under its name or not at all: it is written to a hidden file
      beside it, flushed, given the recorded modification time, then renamed. A killed
      restore leaves no partial photo; running it again goes on where it stopped.
    - Restored into the album's own folder, the photos look to the next sync exactly as
      recorded: it reads and uploads nothing.
    - Takes the album's lease (a dry run does not): never beside a sync of the same album.
    """
    workers = workers or conf.workers()

    def engine(run: SyncRun, lease: AlbumLease | None) -> AlbumRestore:
        return AlbumRestore(
            album=album,
            run=run,
            target=to,
            dry_run=dry_run,
            overwrite=overwrite,
            from_bucket=False,
            workers=workers,
            lease=lease,
            progress=progress,
        )

    return _run(
        album,
        run,
        engine,
        kind=SyncRun.Kind.RESTORE,
        trigger=trigger,
        lease=None if dry_run else AlbumLease(album),
        options={"dry_run": dry_run},
        skipped=RestoreResult,
    )


def restore_from_bucket(
    *,
    slug: str,
    folder: str,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """When the database is gone too: make the album `slug` for `folder` (under PHOTOS_ROOT)
    from the bucket's objects under its prefix, restore every one of them and record each
    photo as restored, so that the next sync is a no-op.

    Refuses an album that already has recorded photos (restore those with `restore_album`).
    """
    album = Album.objects.filter(slug=slug).first()
    if album is None:
        album = Album(name=folder, slug=slug, folder=folder)
        try:
            album.full_clean()
        except ValidationError as exc:
            errors = "; ".join(
                message for messages in exc.message_dict.values() for message in messages
            )
            raise AlbumsNotFound(BAD_NEW_ALBUM.format(slug=slug, errors=errors)) from None
        album.save()
    elif album.photos.exists():
        raise AlbumsNotFound(ALREADY_RECORDED.format(slug=slug, count=album.photos.count()))
    workers = workers or conf.workers()

    def engine(run: SyncRun, lease: AlbumLease | None) -> AlbumRestore:
        return AlbumRestore(
            album=album,
            run=run,
            target=None,
            dry_run=False,
            overwrite=False,
            from_bucket=True,
            workers=workers,
            lease=lease,
            progress=progress,
        )

    return _run(
        album,
        None,
        engine,
        kind=SyncRun.Kind.RESTORE,
        trigger=SyncRun.Trigger.COMMAND,
        lease=AlbumLease(album),
        options={},
        skipped=RestoreResult,
    )


def _run(album, run, engine, *, kind, trigger, lease, options, skipped):
    """Run `engine(run, lease)` under the album's lease (None: no lease, a dry run), with
    the run record kept: started, then finished with the result, or skipped."""
    try:
        with lease or nullcontext():
            if lease is not None:
                runs.close_abandoned(album, starting=run)
            run = runs.start(run, album=album, kind=kind, trigger=trigger, **options)
            if kind == SyncRun.Kind.SYNC and lease is not None:
                runs.note_resumptions([run])
            return _run_and_record(engine(run, lease), run)
    except SyncAlreadyRunning as exc:
        if run is not None:
            runs.skip(run, message=str(exc))
            exc.result = skipped(
                album=album.slug, run_id=run.pk, status=SyncStatus.SKIPPED, message=str(exc)
            )
        raise
    except StorageError as exc:
        # Taken once the lease is released: the diagnosis makes requests of its own, and the
        # album need not wait for them.
        if getattr(exc, "result", None) is not None:
            runs.add_diagnosis([exc.result.run_id], runs.diagnose(getattr(exc, "problem", None)))
        raise


def _run_and_record(engine: AlbumSync | AlbumVerify, run: SyncRun):
    album, tally = engine.album, engine.tally
    try:
        result = engine.run()
    except TimeBudgetSpent as exc:
        # Only a sync has a budget: its records are written, its pass ended where it was.
        return continue_album(engine, run, exc)
    except SyncError as exc:
        exc.result = engine.result(status=SyncStatus.FAILED, message=str(exc))
        logger.error("%s of album %r failed: %s", run.get_kind_display(), album.name, exc)
        runs.finish(run, album, exc.result, done=tally.done, found=tally.found_count)
        raise
    except KeyboardInterrupt:
        # Ctrl-C: the engine let the uploads in flight finish and recorded what went up.
        stopped = engine.result(status=SyncStatus.FAILED, message=INTERRUPTED)
        runs.finish(run, album, stopped, done=tally.done, found=tally.found_count)
        raise
    except SystemExit:
        # The task timeout (django-q2's SIGALRM), which the worker's guard follows with a
        # kill three seconds later: what reached the bucket is recorded (AlbumSync.run).
        stopped = engine.result(status=SyncStatus.FAILED, message=STOPPED_BY_EXIT)
        runs.finish(run, album, stopped, done=tally.done, found=tally.found_count)
        raise
    except BaseException as exc:
        failed = engine.result(status=SyncStatus.FAILED, message=f"Unexpected error: {exc!r}")
        runs.finish(run, album, failed, done=tally.done, found=tally.found_count)
        raise
    runs.finish(run, album, result, done=tally.done, found=tally.found_count)
    return result


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
    trigger: str = SyncRun.Trigger.COMMAND,
    queued: dict[int, SyncRun] | None = None,
    budget: TimeBudget | None = None,
    **options,
) -> Iterator[AlbumOutcome]:
    """Sync the albums (see `sync_album` for `options`), yielding how each went as it ends.

    Several albums are synced as one run (albums.sync.many): one client, one listing where
    it serves them all, the albums side by side, the bookkeeping in bulk; a dry run goes
    album by album. An album that fails, or that a setting keeps from syncing, does not stop
    the others; one that finds the bucket unusable stops them all. The records of photos
    gone from an album's folder are deleted once every album has been synced, not before: a
    photo moved to an album synced later is then found there by its content, and copied
    inside the bucket rather than uploaded again. `queued` holds runs a worker claimed;
    `budget` is the time their task gives them (see `sync_album`): the albums it leaves
    unfinished go on in one task of their own, queued with the outcomes.
    """
    albums = list(albums)
    kept_vanished: dict[int, list[int]] = {}
    try:
        if len(albums) > 1 and not options.get("dry_run"):
            try:
                sync_options = SyncOptions.resolve(**options)
            except ImproperlyConfigured as exc:
                for run in (queued or {}).values():
                    runs.fail_unstarted(run.pk, exc, unexpected=False)  # never left "running"
                yield from (AlbumOutcome(album, None, exc) for album in albums)
                return
            yield from ManyAlbums(
                albums,
                options=sync_options,
                trigger=trigger,
                queued=queued,
                progress=progress,
                kept_vanished=kept_vanished,
                budget=budget,
            ).run()
            return
        for album in albums:
            run = (queued or {}).get(album.pk)
            try:
                result = sync_album(
                    album=album,
                    progress=progress(album),
                    trigger=trigger,
                    run=run,
                    kept_vanished=kept_vanished.setdefault(album.pk, []),
                    budget=budget,
                    **options,
                )
            except (SyncError, ImproperlyConfigured) as exc:
                if isinstance(exc, ImproperlyConfigured) and run is not None:
                    runs.fail_unstarted(run.pk, exc, unexpected=False)  # never left "running"
                yield AlbumOutcome(album, getattr(exc, "result", None), exc)
            else:
                yield AlbumOutcome(album, result)
    finally:
        forget_vanished(kept_vanished)


def run_queued_syncs(run_ids: list[int]) -> dict[str, int]:
    """Run the queued syncs `run_ids` (a task of `queue_syncs`) as one run over their
    albums; how many runs ended in each status. Each run is claimed as `run_queued_sync`
    claims one: a task delivered twice syncs each album once. The task's time budget
    starts here: what it leaves unfinished goes on in a task of its own."""
    claimed = [run for run in map(runs.claim, run_ids) if run is not None]
    statuses: dict[str, int] = {}
    try:
        budget = TimeBudget.for_task()
        outcomes = sync_albums(
            [run.album for run in claimed],
            trigger=claimed[0].trigger if claimed else SyncRun.Trigger.TASK,
            queued={run.album_id: run for run in claimed},
            prune=any(run.prune for run in claimed),
            render_all=any(run.render_all for run in claimed),
            budget=budget,
        )
        for outcome in outcomes:
            status = outcome.result.status if outcome.result else SyncStatus.FAILED
            statuses[status] = statuses.get(status, 0) + 1
    except Exception as exc:
        for run in claimed:
            runs.fail_unstarted(run.pk, exc)
        raise
    return statuses


def run_queued_sync(run_id: int) -> SyncResult | VerifyResult | None:
    """Run the queued run `run_id`, a sync or a verification (the worker's side of
    `queue_sync`); its result, or None when it was no longer queued.

    Idempotent under re-delivery (django-q2 #327): the run is claimed with one conditional
    UPDATE from "queued", so a task delivered twice syncs once. A sync refused because
    another holds the album's lease is recorded as skipped. A sync gets the task's time
    budget, which starts here (see `sync_album`): never killed by the task timeout while it
    makes progress, it goes on in a run of its own.
    """
    run = runs.claim(run_id)
    if run is None:
        logger.info("Run #%s is no longer queued; nothing to do.", run_id)
        return None
    try:
        if run.kind == SyncRun.Kind.VERIFY:
            return verify_album(album=run.album, run=run, repair=run.repair, trigger=run.trigger)
        if run.kind == SyncRun.Kind.RESTORE:
            return restore_album(album=run.album, run=run, trigger=run.trigger)
        return sync_album(
            album=run.album,
            run=run,
            dry_run=run.dry_run,
            prune=run.prune,
            trigger=run.trigger,
            render_all=run.render_all,
            budget=TimeBudget.for_task(),
        )
    except SyncError as exc:
        return exc.result  # recorded on the run: failed, or skipped when the album was busy
    except Exception as exc:
        runs.fail_unstarted(run_id, exc)
        raise
