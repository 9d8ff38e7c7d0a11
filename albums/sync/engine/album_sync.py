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
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ... import conf
from ...exceptions import SyncError
from ...models import Album, SyncRun, SyncStatus
from ...renditions import RenditionSpec
from ...storage import RemoteObject
from ..bucket.bucket_pool import BucketPool
from ..bucket.transfer import Job, Sent, Transferred
from ..library.exclusions import ExcludedSpan, Exclusions
from ..library.folders import AlbumFolder, Census, album_folder, readable, take_census
from ..library.merge import merge_by_path
from ..library.scan import FolderWalk, printable
from ..outcome.result import FileFailure, SyncResult
from ..outcome.tally import ProgressCallback, Tally
from ..records.lease import AlbumLease
from ..records.photos import RecordedPhotos, RecordWriter, RunRecords
from .budget import TimeBudget
from .failures import FILE_ERRORS, Failures
from .moves import Moves
from .orphans import Orphans
from .photo_pass import PhotoPass, RenditionPlan

logger = logging.getLogger("albums")


@dataclass(frozen=True, slots=True)
class SyncOptions:
    dry_run: bool
    prune: bool
    batch_size: int  # requests in flight when the run starts (it adapts from there)
    workers: int  # the most threads checking and uploading: requests in flight
    max_delete: int  # most objects --prune and --prune-excluded delete in one run
    prune_excluded: bool = False  # delete the bucket copies of recorded photos now excluded
    exclude: tuple[str, ...] = ()  # ALBUMS_EXCLUDE
    renditions: RenditionSpec | None = None  # None: ALBUMS_RENDITIONS is off
    # Unchanged photos without renditions rendered per album: None for all of them.
    render_missing: int | None = 0
    force_render: bool = False  # render every photo again (render_albums --force)

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
        render_all=False,
        force_render=False,
    ):
        """The options of a run, the settings filling in what the caller left out.
        `render_all` renders every photo whose renditions are missing (render_albums),
        rather than ALBUMS_RENDITIONS_PER_RUN of them; `force_render` every photo."""
        options = cls(
            dry_run=dry_run,
            prune=prune,
            prune_excluded=prune_excluded,
            batch_size=batch_size or conf.batch_size(),
            workers=workers or conf.workers(),
            max_delete=conf.max_delete() if max_delete is None else max_delete,
            exclude=conf.exclude_patterns(),
            renditions=RenditionSpec.from_settings(),
            render_missing=None if render_all or force_render else conf.renditions_per_run(),
            force_render=force_render,
        )
        if options.batch_size < 1 or options.workers < 1:
            raise ValueError("batch_size and workers must be at least 1")
        return options


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
        kept_vanished: list[int] | None = None,
        writer: RecordWriter | None = None,
        listing: Iterable[tuple[str, RemoteObject]] | None = None,
        known_elsewhere: bool | None = None,
        recorded: RecordedPhotos | None = None,
        moved_keys: set[str] | None = None,
        budget: TimeBudget | None = None,
    ):
        """`lease` is renewed as the run goes; `budget` (a background task's) stops the pass
        between two photos once spent (TimeBudgetSpent, what went up recorded);
        `kept_vanished`, `writer` (a RecordWriter shared by the albums of a run), `listing` (this album's part of a listing of the
        whole prefix), `known_elsewhere` (whether other albums have photos known by
        content), `recorded` (its recorded photos, read ahead with other albums') and
        `moved_keys` (the old keys of the photos the run moved) come from a run over
        several albums (albums.sync.many)."""
        self.album = album
        self.kept_vanished = kept_vanished
        self.shared_listing = listing
        self.known_elsewhere = known_elsewhere
        self.moved_keys = set() if moved_keys is None else moved_keys
        self.options = options
        self.lease = lease
        self.budget = budget
        self.log = DryRunLog(logger, {}) if options.dry_run else logger
        self.prefix = f"{conf.key_prefix()}/{album.slug}/"
        self.tally = Tally(progress=progress)
        self.failures = Failures(album_name=album.name, log=self.log)
        self.records = RunRecords(
            album=album,
            run=run,
            dry_run=options.dry_run,
            progress=self._progress_row,
            writer=writer,
        )
        # Read once for the census and the pass.
        self.recorded = recorded if recorded is not None else RecordedPhotos(album)
        self.moves: Moves | None = None  # photos gone from disk a new file may turn out to be
        self.orphans: Orphans | None = None
        self.still_changing: list[str] = []  # photos left for the next run
        self.rendition_problems: list[FileFailure] = []  # photos without renditions, and why
        self.exclusions = Exclusions(options.exclude, album_name=album.name)
        self.excluded = ExcludedSpan()
        self.walk: FolderWalk | None = None
        self.bucket: BucketPool | None = None
        self.folder: AlbumFolder | None = None
        self.census: Census | None = None

    def run(self) -> SyncResult:
        """Sync the album; its result, or a SyncError once what was done is recorded."""
        self.prepare()
        try:
            if self.options.dry_run:
                self._count_dry_run(self.jobs())
            else:
                try:
                    self._transfer(self.jobs())
                    self.finish_pass()
                finally:
                    # Also when the pass stops midway (the listing failed, a delete was
                    # refused, the folder went away): what reached the bucket is recorded
                    # before the error goes on.
                    self.records.flush()
        finally:
            self.bucket.close()
        return self.outcome()

    def prepare(self, *, shared: BucketPool | None = None, root: Path | None = None) -> None:
        """Everything before the first request: the folder found and safe, its census taken
        (too many deletions refused here), the bucket opened (or `shared`'s, a run over
        several albums, which also gives PHOTOS_ROOT as `root`)."""
        self.folder = folder = album_folder(self.album, root=root)
        self.census = census = take_census(self.album, folder, self.recorded, self.exclusions)
        self.moves = Moves.for_run(
            self.album,
            census.vanished,
            new_photos=census.new,
            elsewhere=self.known_elsewhere,
            lease_token=self.lease.token if self.lease is not None else "",
            taken_keys=self.moved_keys,
        )
        self.orphans = Orphans(
            album=self.album,
            prune=self.options.prune,
            prune_excluded=self.options.prune_excluded,
            max_delete=self.options.max_delete,
            records=self.records,
            tally=self.tally,
            moves=self.moves,
            log=self.log,
            kept_vanished=self.kept_vanished,
            renditions=self.options.renditions,
            exclusions=self.exclusions,
            moved_keys=self.moved_keys,
        )
        self.orphans.check_limit(
            self.orphans.deletions(orphaned=census.orphaned, excluded=census.excluded_recorded)
        )
        self.tally.total = census.photos
        self.bucket = BucketPool(
            album_name=self.album.name,
            prefix=self.prefix,
            workers=self.options.workers,
            start=self.options.batch_size,
            on_wait=self._tick,
            log=self.log,
            shared=shared,
        )

    def outcome(self) -> SyncResult:
        """The result of a run that went to its end."""
        return self.result(status=SyncStatus.PARTIAL if self.failures else SyncStatus.SUCCESS)

    def result(self, *, status: str, message: str = "") -> SyncResult:
        return SyncResult(
            album=self.album.slug,
            run_id=self.records.run.pk,
            status=status,
            dry_run=self.options.dry_run,
            message=message,
            failures=tuple(self.failures.items),
            still_changing=tuple(self.still_changing),
            rendition_problems=tuple(self.rendition_problems),
            **self.tally.counts(),
        )

    # Deciding ------------------------------------------------------------------------------

    def jobs(self) -> Iterator[Job]:
        """The pass: every photo decided as it is reached, what the bucket must receive
        coming out as jobs for the pool (see `take` for their results)."""
        census, folder = self.census, self.folder
        # A prune lists the prefix whatever it costs: the untracked objects it deletes are
        # found nowhere else.
        listing = (
            self.shared_listing is not None
            or (self.options.prune and self.bucket.can_list)
            or self.bucket.listing_is_cheaper(
                photos=census.photos, recorded=census.recorded, batch_size=self.options.batch_size
            )
        )
        if census.new:
            self.log.info(
                "Processing %d new photos in batches of %d", census.new, self.options.batch_size
            )
        self.walk = FolderWalk(
            folder.path,
            conf.photo_extensions(),
            on_failure=lambda failure: self.failures.add(failure.path, failure.error),
            exclusions=self.exclusions,
            real=folder.real,
        )
        if self.shared_listing is not None:
            objects = self.shared_listing
        else:
            objects = self.bucket.listing(census.boundaries) if listing else ()
        entries = merge_by_path(
            readable(((found.path, found) for found in self.walk), self.album, folder.path),
            self.recorded,
            objects,
        )
        decide_each = PhotoPass(
            walk=self.walk,
            excluded=self.excluded,
            orphans=self.orphans,
            records=self.records,
            bucket=self.bucket,
            tally=self.tally,
            failures=self.failures,
            log=self.log,
            prefix=self.prefix,
            dry_run=self.options.dry_run,
            tick=self._pass_tick,
            still_changing=self.still_changing,
            renditions=self._rendition_plan(),
        )
        jobs = decide_each.photos(entries)
        if not listing:
            jobs = decide_each.checked_one_by_one(jobs)
        jobs = self.moves.attach(decide_each.planned(jobs))
        jobs = jobs if self.options.dry_run else self.bucket.cleaned_up_first(jobs)
        return jobs if self.budget is None else self._within_budget(jobs)

    def take(self, job: Job, future: Future) -> SyncError | None:
        """A job back from the pool, recorded (or its failure); and the error that must
        stop the run, when it is one that says so."""
        try:
            self._record(future.result())
        except FILE_ERRORS as exc:
            try:
                self.failures.judge(job.local.path, exc, self.bucket)
            except SyncError as stop:
                return stop
            self.tally.settle()
        return None

    def finish_pass(self, *, moved_away: frozenset[int] | set[int] = frozenset()) -> None:
        """After the last job: photos gone from disk for good, and the deletions of a prune
        (but for `moved_away`, photos another album of the run moved)."""
        self.orphans.after_the_pass()
        self.orphans.prune_all(self.bucket, self.failures, FILE_ERRORS, moved_away=moved_away)

    def prune_may_wait(self) -> bool:
        """After the last job: whether a photo to prune may have moved to another album,
        which would copy it from its object (a run over several albums then prunes this
        album once every other album is synced)."""
        self.orphans.after_the_pass()
        return self.orphans.may_have_moved()

    def progress_made(self) -> int | None:
        """How many photos this run recorded that a run after it will not handle again:
        sent, found in the bucket, moved or rendered (not those found unchanged, which a run
        after it walks past again). None for a dry run, which records nothing."""
        if self.options.dry_run:
            return None
        tally = self.tally
        return sum(
            tally[name]
            for name in ("uploaded", "reuploaded", "already_in_bucket", "moved", "rendered")
        )

    def moved_from_other_albums(self) -> set[int]:
        """The photos of other albums this run found moved here (their records are this
        album's now)."""
        if self.moves is None:  # stopped before its pass
            return set()
        return {photo.id for photo in self.moves.taken() if photo.album_id != self.album.pk}

    def _count_dry_run(self, jobs: Iterator[Job]) -> None:
        """What a real run would do, reading only the new files that may be moved photos."""
        for job, future in self.bucket.hashes(job for job in jobs if self._dry_settled(job)):
            try:
                md5 = future.result()
            except FILE_ERRORS as exc:
                self.failures.judge(job.local.path, exc, self.bucket)
                self.tally.settle()
                continue
            moved = self.moves.source_of(job, md5, None) is not None
            self.tally.settle("moved" if moved else "uploaded")
        self.orphans.count_dry_run()

    def _dry_settled(self, job: Job) -> bool:
        """Count a job of a dry run; True when only its MD5 can tell (a possible move)."""
        if job.candidates:
            return True
        if not job.upload:
            self.tally.settle("already_in_bucket")
        else:
            self.tally.settle("uploaded" if job.known is None else "reuploaded")
        if job.also_count:
            self.tally.add(job.also_count)
        return False

    # Recording what the pool did -----------------------------------------------------------

    def _transfer(self, jobs: Iterator[Job]) -> None:
        """Upload (or just record) on the pool; record results from this thread.

        When the run must stop, no new file is started; files already in flight finish,
        whatever reached the bucket is recorded, and the error is raised.
        """
        stopping: list[SyncError] = []
        for job, future in self.bucket.transfers(jobs, stop=lambda: bool(stopping)):
            if (stop := self.take(job, future)) is not None:
                stopping.append(stop)
        if stopping:
            raise stopping[0]

    def _rendition_plan(self) -> RenditionPlan | None:
        options = self.options
        if options.renditions is None:
            return None
        return RenditionPlan(
            options.renditions, missing=options.render_missing, force=options.force_render
        )

    def _record(self, done: Transferred) -> None:
        job = done.job
        self._count_renditions(done)
        if job.render_only:
            self.tally.settle("unchanged")
            self.records.rendered(done)
            self.tally.report()
            return
        # A photo gone from disk follows the new file its object was copied from (or, after
        # a killed run, found copied already); one uploaded after all stays gone.
        came_from = job.candidates and done.sent is not Sent.UPLOADED
        source = self.moves.source_of(job, done.md5, done.source) if came_from else None
        if source is not None:
            self.log.info(
                "Photo moved from %s, copied in the bucket: %s", source.path, job.local.path
            )
            self.tally.settle("moved")
            if source.departed:  # no record is left: the new file gets its own
                self.records.sent(done)
                self.records.claimed(source.id)
            else:
                self.records.moved(source.id, done)
        else:
            if job.known is not None:
                self.tally.settle("reuploaded")
            else:
                self.tally.settle("already_in_bucket" if done.sent is Sent.FOUND else "uploaded")
            self.records.sent(done)
        if job.also_count:
            self.tally.add(job.also_count)
        if done.uploaded:
            self.tally.add("bytes_uploaded", done.size)
        self.tally.report()

    def _count_renditions(self, done: Transferred) -> None:
        rendition = done.rendition
        if rendition.made:
            self.tally.add("rendered")
        elif rendition.tried and rendition.problem:
            self.log.info("No rendition (%s): %s", rendition.problem, done.job.local.path)
            self.tally.add("not_rendered")
            path = printable(done.job.local.path)
            self.rendition_problems.append(FileFailure(path, rendition.problem))

    def _tick(self) -> None:
        """Between photos and while waiting on the pool: progress, the lease, due writes."""
        self.tally.report()
        if self.lease is not None:
            self.lease.renew_if_due()
        self.records.flush_if_due()

    def _within_budget(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """The jobs, until the time budget is spent: then TimeBudgetSpent, as from the pass.
        Jobs decided ahead (a chunk of new photos looked up as possible moves, photos whose
        size was checked) are never all sent after it."""
        for job in jobs:
            self.budget.check()
            yield job

    def _pass_tick(self) -> None:
        """Between two photos of the pass: `_tick`, and the end of the pass once the task's
        time budget is spent. Raised from inside the pass, TimeBudgetSpent reaches the pool
        as the pass's own error: no new photo starts, those in flight finish and are
        recorded, then it goes on (albums.sync.bucket.pool.in_pool)."""
        self._tick()
        if self.budget is not None:
            self.budget.check()

    def _progress_row(self) -> dict[str, int]:
        return {
            "files_done": self.tally.done,
            "files_total": self.tally.total,
            "failed": len(self.failures),
        }
