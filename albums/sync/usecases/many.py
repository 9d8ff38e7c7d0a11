"""One run over several albums (the command over all or several, the schedule, the admin's
bulk action), whose cost grows with the photos, not with the albums.

- One S3 client and one thread pool for the whole run.
- When the run covers every album, one listing of the albums' common prefix: each album
  takes its own objects from it (SharedListing), so that the run costs ceil(objects / 1000)
  listing requests, not one or more per album.
- The albums side by side: their jobs go through one window of the pool, so that an
  album's last uploads overlap with the next album's first and nothing waits for a tail.
- The bookkeeping in bulk: the leases taken and released, the runs started and finished and
  the records written and read for many albums at a time, in a few queries.

Each album is still its own AlbumSync, with its own run record, counts, failures, orphans and
moves, and one that fails (its folder gone, say) fails alone. An error that says the bucket
cannot be used stops them all, as it would stop each.

An album's prune waits for the other albums when what it would delete may have moved to one
of them: the photo's new album then copies it from the object (and deletes that), where a
prune done first would have made it upload the photo again.

A run of a background task has the task's time budget (albums.sync.engine.budget). Once it
is spent, nothing new starts and what is in flight finishes; the albums that passed end as
usual, the one (or those) stopped midway end "continued" and the albums not reached are
queued again: one task of their own goes on with them all (albums.sync.usecases.continued).
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import transaction

from ... import conf
from ...exceptions import StorageError, SyncError, TimeBudgetSpent
from ...models import Album, Photo, SyncRun, SyncStatus
from ..bucket.bucket_pool import LIST_PAGE, BucketPool, SharedListing
from ..bucket.pool import CtrlC
from ..bucket.transfer import transfer
from ..engine.album_sync import AlbumSync, SyncOptions
from ..engine.budget import TimeBudget, describe_seconds
from ..library.folders import photos_root
from ..outcome.result import INTERRUPTED, STOPPED_BY_EXIT, AlbumOutcome, SyncResult
from ..outcome.tally import ProgressCallback
from ..records import runs
from ..records.lease import AlbumLeases
from ..records.photos import ReadAhead, RecordWriter, anything_departed, listing_boundaries
from ..records.runs import diagnose
from .continued import CONTINUED, NO_PROGRESS
from .queue import queue_continuation

logger = logging.getLogger("albums")

FINISH_EVERY = 50  # albums whose outcomes are stored (and leases released) together


@dataclass(eq=False)
class _Album:
    """One album of the run, and how far it has got."""

    album: Album
    run: SyncRun
    sync: AlbumSync | None = None
    pending: int = 0  # jobs on the pool
    submitted: bool = False  # every job handed to the pool, or it stopped
    error: SyncError | None = None  # what stops this album (the first, if several)
    lease_lost: bool = False  # another sync took the album meanwhile
    waiting: bool = False  # its pass is over, its prune waits for the other albums
    cut: bool = False  # its pass stopped midway (the run stops): never ended as passed
    result: SyncResult | None = None

    @property
    def done(self) -> bool:
        return self.submitted and not self.pending and self.result is None and not self.cut


class ManyAlbums:
    """A sync of `albums` as one run; `run()` yields each album's outcome as it ends."""

    def __init__(
        self,
        albums: list[Album],
        *,
        options: SyncOptions,
        trigger: str,
        queued: dict[int, SyncRun] | None = None,
        progress: Callable[[Album], ProgressCallback | None] = lambda album: None,
        kept_vanished: dict[int, list[int]] | None = None,
        budget: TimeBudget | None = None,
    ):
        """`queued` holds the runs a worker claimed, by album id; `kept_vanished` the ids of
        photos gone from disk, forgotten once the run is over (see service.sync_albums);
        `budget` the time the worker's task gives the run."""
        # In the order of their keys, which the shared listing comes in.
        self.albums = sorted(albums, key=lambda album: f"{album.slug}/")
        self.options = options
        self.trigger = trigger
        self.queued = queued or {}
        self.progress = progress
        self.kept_vanished = {} if kept_vanished is None else kept_vanished
        self.budget = budget
        self.leases = AlbumLeases()
        self.writer = RecordWriter()
        self.items: dict[int, _Album] = {}  # by album id
        self.stopping: list[StorageError] = []  # what says the bucket cannot be used
        self.finished: list[_Album] = []  # ended, their outcomes not stored yet
        self.waiting: list[_Album] = []  # passed, their prunes waiting for the other albums
        self.moved_away: set[int] = set()  # photos moved to another album, by the ended ones
        self.moved_keys: set[str] = set()  # their old keys, as each move is found
        self.outcomes: list[AlbumOutcome] = []  # stored, not yielded yet

    def run(self) -> Iterator[AlbumOutcome]:
        held, refused = self.leases.acquire(self.albums)
        try:
            for album in refused:
                yield self._refused(album)
            if not held:
                return
            runs.close_abandoned_many(held, starting=list(self.queued.values()))
            started = runs.start_many(
                held,
                kind=SyncRun.Kind.SYNC,
                trigger=self.trigger,
                queued=self.queued,
                dry_run=False,
                prune=self.options.prune,
            )
            runs.note_resumptions(list(started.values()))
            self.items = {
                album.pk: _Album(album, started[album.pk]) for album in held if album.pk in started
            }
            yield from self._sync(list(self.items.values()))
        finally:
            self.leases.release(held)  # those still held: the run stopped early

    def _sync(self, items: list[_Album]) -> Iterator[AlbumOutcome]:
        owner = BucketPool(
            album_name="",
            subject=f"{len(items)} albums",
            prefix=f"{conf.key_prefix()}/",
            workers=self.options.workers,
            start=self.options.batch_size,
            on_wait=self._tick,
            log=logger,
        )
        # One listing of the common prefix when the run covers most albums (it then reads
        # few objects of albums not in it); otherwise one per album, of its own prefix.
        most = 2 * len(items) >= Album.objects.count()
        listing = None
        if most and owner.can_list:
            # Cut into ranges of about a page, listed side by side (see BucketPool.listing).
            cuts = listing_boundaries([item.album for item in items], every=LIST_PAGE)
            listing = SharedListing(owner.listing(cuts))
        # Whether any photo is known by its content (recorded, or forgotten by an earlier
        # run while its object stayed): if none is, no album looks for moves.
        known = Photo.objects.exclude(md5="").exists() or anything_departed()
        # Ctrl-C is taken here rather than in in_pool: it must also stop the albums between
        # two of them, and while the caller handles an outcome.
        with CtrlC() as ctrl_c:

            def halt() -> bool:
                return bool(self.stopping) or ctrl_c.pressed

            def stop() -> bool:
                return halt() or self._out_of_time()

            jobs = self._jobs(
                items, owner, listing, known, ReadAhead([item.album for item in items]), stop, halt
            )
            try:
                for (item, job), future in owner.map(
                    lambda pair: transfer(pair[1], owner.bucket),
                    jobs,
                    # Not the time budget: the pass of the album under way must be asked for
                    # its next photo to find out whether it has one (see _jobs).
                    stop=halt,
                ):
                    if (error := item.sync.take(job, future)) is not None:
                        self._stop(item, error)
                    item.pending -= 1
                    self._end_if_done(item)
                    yield from self._take_outcomes()
                if ctrl_c.pressed:
                    raise KeyboardInterrupt
                if not stop():
                    self._end_waiting()
            except (KeyboardInterrupt, GeneratorExit):
                # Ctrl-C, or the caller stopped listening: the albums not ended end failed,
                # with what went up recorded; nothing more is yielded.
                self._stop_all(items, message=INTERRUPTED)
                self._write()
                raise
            except SystemExit:  # the task timeout: see service._run_and_record
                self._stop_all(items, message=STOPPED_BY_EXIT)
                self._write()
                raise
            except BaseException as exc:
                self._stop_all(items, message=f"Unexpected error: {exc!r}")
                self._write()
                raise
            finally:
                owner.close()
        if self.stopping:
            self._stop_all(items, error=self.stopping[0])
        if self._out_of_time() and not self.stopping:
            with transaction.atomic():  # the outcomes and the runs that go on, together
                self._continue_rest(items)
                self._write()
        else:
            self._write()
        yield from self._take_outcomes()
        if self.stopping:
            self._diagnose(items, self.stopping[0])

    def _jobs(
        self, items, owner, listing, known, ahead, stop, halt
    ) -> Iterator[tuple[_Album, object]]:
        """Every album's jobs, one album after the other, as (album, job): none from an
        album after `stop()`; none more from the album under way after `halt()` (an error,
        Ctrl-C) or, its time budget spent, from its next photo on (the pass itself stops
        there: an album whose last photo was the last job passed)."""
        root = None  # PHOTOS_ROOT, resolved once for every album
        for item in items:
            self._tick()
            if stop():
                break
            if item.error is None:  # its lease may be lost already
                item.sync = AlbumSync(
                    album=item.album,
                    run=item.run,
                    options=self.options,
                    lease=self.leases,
                    progress=self.progress(item.album),
                    kept_vanished=self.kept_vanished.setdefault(item.album.pk, []),
                    writer=self.writer,
                    listing=listing.album(f"{item.album.slug}/") if listing else None,
                    known_elsewhere=known,
                    recorded=ahead.recorded(item.album),
                    moved_keys=self.moved_keys,
                    budget=self.budget,
                )
                try:
                    root = root or photos_root()
                    item.sync.prepare(shared=owner, root=root)
                    for job in item.sync.jobs():
                        item.pending += 1
                        yield item, job
                        if item.error is not None:
                            break
                        if halt():  # its pass is not over: the run's end decides its fate
                            item.cut = True
                            break
                except TimeBudgetSpent:  # its pass stopped between two photos
                    item.cut = True
                except SyncError as exc:  # its folder, its deletion limit; or the bucket's
                    self._stop(item, exc)
            item.submitted = True
            self._end_if_done(item)

    def _stop(self, item: _Album, error: SyncError) -> None:
        """`error` stops the album (its jobs on the pool still come back and are recorded);
        and the whole run, when it says that the bucket cannot be used."""
        item.error = item.error or error
        if isinstance(error, StorageError):
            self.stopping.append(error)

    def _end_if_done(self, item: _Album) -> None:
        """End the album once its every job is back, and store the outcomes of the albums
        ended a batch at a time (they are yielded by the next `_take_outcomes`)."""
        if item.done:
            self._end(item)
        if len(self.finished) >= FINISH_EVERY:
            self._write()

    def _take_outcomes(self) -> list[AlbumOutcome]:
        outcomes, self.outcomes = self.outcomes, []
        return outcomes

    def _end(self, item: _Album, *, last: bool = False) -> None:
        """End the album; but for its prune, which waits while another album of the run may
        yet claim a photo it would delete (until `last`)."""
        if item.result is not None or (item.waiting and not last):
            return
        if item.sync is None:  # stopped before it started: its run says why
            item.sync = AlbumSync(
                album=item.album, run=item.run, options=self.options, writer=self.writer
            )
        sync = item.sync
        self.moved_away |= sync.moved_from_other_albums()  # also when it failed: they moved
        if item.error is None:
            if not last and sync.prune_may_wait() and self._others_on(item):
                item.waiting = True
                self.waiting.append(item)
                return
            try:
                # Photos gone for good, the deletions of a prune.
                sync.finish_pass(moved_away=self.moved_away)
            except SyncError as exc:
                self._stop(item, exc)
        if item.error is None:
            item.result = sync.outcome()
        else:
            item.result = sync.result(status=SyncStatus.FAILED, message=str(item.error))
            item.error.result = item.result
            logger.error("Sync of album %r failed: %s", item.album.name, item.error)
        sync.records.done()
        self.finished.append(item)

    def _others_on(self, item: _Album) -> bool:
        """Whether an album of the run other than `item` has not ended its pass."""
        return any(
            other is not item and other.result is None and not other.waiting
            for other in self.items.values()
        )

    def _end_waiting(self) -> None:
        """Every album has passed: the prunes that waited for them go ahead."""
        waiting, self.waiting = self.waiting, []
        for item in waiting:
            self._end(item, last=True)
            if len(self.finished) >= FINISH_EVERY:
                self._write()

    def _stop_all(self, items: list[_Album], *, error: SyncError | None = None, message=""):
        """The run stopped: every album not ended yet ends failed, with `error` (or a
        message), what its jobs sent being recorded."""
        for item in items:
            if item.result is None:
                item.error = item.error or error or SyncError(message)
                item.pending, item.submitted = 0, True
                self._end(item, last=True)

    def _out_of_time(self) -> bool:
        return self.budget is not None and self.budget.spent()

    def _continue_rest(self, items: list[_Album]) -> None:
        """The time budget is spent: what was left of the run goes on in a task of its own.

        An album stopped by an error of its own ends failed, as it would have. If every
        other album has passed, the prunes that waited go ahead (`_end_waiting`). Otherwise
        the albums whose pass stopped midway (or waited, or lost jobs the pool dropped) end
        "continued", each with a new run following it, and those not reached have their
        runs queued again; their leases are given back in the same transaction. A run that
        neither ended an album nor recorded a photo goes on with none of them: they fail,
        as a single album would (continued.NO_PROGRESS), rather than loop for ever."""
        left = [item for item in items if item.result is None]
        for item in left:
            if item.error is not None and not isinstance(item.error, TimeBudgetSpent):
                item.pending, item.submitted, item.cut = 0, True, False
                self._end(item, last=True)
        left = [item for item in left if item.result is None]
        if all(item.waiting for item in left):
            self._end_waiting()
            return
        seconds = describe_seconds(self.budget.seconds)
        progressed = len(left) < len(items) or any(
            item.sync is not None and item.sync.progress_made() for item in left
        )
        if not progressed:
            for item in left:
                item.error = TimeBudgetSpent(NO_PROGRESS.format(seconds=seconds))
                item.pending, item.submitted, item.cut = 0, True, False
                self._end(item, last=True)
            return
        stopped = [item for item in left if item.sync is not None]
        unreached = [item for item in left if item.sync is None]
        following = queue_continuation(
            [item.run for item in stopped], requeued=[item.run for item in unreached]
        )
        for item in stopped:
            message = CONTINUED.format(seconds=seconds, run=following[item.album.pk].pk)
            item.result = item.sync.result(status=SyncStatus.CONTINUED, message=message)
            item.sync.records.done()
            self.finished.append(item)
        self.leases.release([item.album for item in unreached])
        self.waiting = []
        logger.info(
            "Time budget of %s spent: %d albums continue in their own runs, %d queued again",
            seconds,
            len(stopped),
            len(unreached),
        )

    def _write(self) -> None:
        """Write the records, then the outcomes of the albums ended, and free them."""
        finished, self.finished = self.finished, []
        with transaction.atomic():  # one commit: records, outcomes and leases together
            self._store(finished)
        self.outcomes += [AlbumOutcome(item.album, item.result, item.error) for item in finished]

    def _store(self, finished: list[_Album]) -> None:
        self.writer.flush()
        runs.finish_many(
            [
                runs.Finished(
                    item.run,
                    item.album,
                    item.result,
                    item.sync.tally.done,
                    item.sync.tally.found_count,
                    holds_album=not item.lease_lost,
                )
                for item in finished
            ]
        )
        self.leases.release([item.album for item in finished])

    def _diagnose(self, items: list[_Album], error: StorageError) -> None:
        """What check_storage finds, kept on the runs the bucket stopped (once the leases
        are free: the diagnosis makes requests of its own)."""
        stopped = [item.run.pk for item in items if isinstance(item.error, StorageError)]
        runs.add_diagnosis(stopped, diagnose(getattr(error, "problem", None)))

    def _refused(self, album: Album) -> AlbumOutcome:
        """Another sync holds the album: its queued run, if any, is skipped."""
        exc = self.leases.refused(album)
        run = self.queued.get(album.pk)
        if run is not None:
            runs.skip(run, message=str(exc))
            exc.result = SyncResult(
                album=album.slug, run_id=run.pk, status=SyncStatus.SKIPPED, message=str(exc)
            )
        return AlbumOutcome(album, getattr(exc, "result", None), exc)

    def _tick(self) -> None:
        """While the run goes on: the leases renewed, the records written when due."""
        self.leases.renew_if_due()
        for album_id in self.leases.take_lost():
            item = self.items[album_id]
            item.lease_lost = True  # its outcome no longer speaks for the album
            if item.result is None:
                self._stop(item, self.leases.lost_error(item.album))
        self.writer.flush_if_due()
