"""The deciding steps of an album's pass (albums.sync.engine): each photo the merge reaches
either becomes a job for the pool or is settled on the spot.

Settled here: a name that cannot be a key (a failure, never renamed), a recorded photo gone
from disk (an orphan), an object with neither a file nor a record (untracked: a prune deletes
it), one an exclusion covers (left alone), an unchanged photo (marked
verified), one still being written after the settle window (left for the next run). What
the pool did with the jobs is recorded by AlbumSync.
"""

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from ... import conf
from ...renditions import RenditionSpec
from ..bucket.bucket_pool import BucketPool
from ..bucket.pool import TICK_SECONDS
from ..bucket.transfer import Job
from ..library.exclusions import Excluded, ExcludedSpan
from ..library.media import content_type_for, is_image
from ..library.merge import Entry, KnownPhoto
from ..library.scan import FolderWalk, printable
from ..outcome.tally import Tally
from ..records.photos import RunRecords
from .decide import Action, decide
from .failures import FILE_ERRORS, Failures
from .orphans import Orphans
from .settle import Look, Settling

WATCHING = "Photo modified moments ago, syncing it once it stops changing: %s"
WAITING_TO_SETTLE = "Waiting for photos written moments ago to stop changing (%d)"
STILL_CHANGING = "Still changing after %d seconds, not uploaded this time (the next run will): %s"


class PhotoPass:
    """The steps from merged entries to jobs, for one run of one album; the parts of the run
    they decide with are passed in, and `still_changing` gathers the photos left for the
    next run."""

    def __init__(
        self,
        *,
        walk: FolderWalk,
        excluded: ExcludedSpan,
        orphans: Orphans,
        records: RunRecords,
        bucket: BucketPool,
        tally: Tally,
        failures: Failures,
        log: logging.Logger | logging.LoggerAdapter,
        prefix: str,
        dry_run: bool,
        tick: Callable[[], None],
        still_changing: list[str],
        renditions: "RenditionPlan | None" = None,
    ):
        self.walk = walk
        self.excluded = excluded
        self.orphans = orphans
        self.records = records
        self.bucket = bucket
        self.tally = tally
        self.failures = failures
        self.log = log
        self.prefix = prefix
        self.dry_run = dry_run
        self.tick = tick  # between photos and while waiting: progress, lease, due writes
        self.still_changing = still_changing
        self.renditions = renditions

    def photos(self, entries: Iterator[Entry]) -> Iterator[Job]:
        """The photos on disk this run can sync, as jobs; everything else is settled here.

        One whose name cannot become a key byte for byte is a failure (never renamed), a
        recorded photo gone from disk is an orphan, and one an exclusion now covers is left
        alone. A photo modified moments ago is watched until it stops changing while the
        pass goes on (albums.sync.settle), then synced; the pass ends by waiting for the
        last of them.
        """
        settling = Settling(conf.settle_seconds())
        for entry in entries:
            self.tick()
            yield from self._settled(settling)
            local, known = entry.local, entry.known
            if excluded := self.excluded.covering(entry.path, local):
                self._exclude(excluded if excluded is local else None, known)
                continue
            if local is None:
                if known is not None:
                    self._orphan(known)
                elif entry.remote is not None:
                    self._untracked(entry)
                continue
            self.tally.found()
            job = Job(local, self.prefix + local.path, known, entry.remote)
            if problem := self.bucket.key_problem(job.key):
                self.failures.add(local.path, problem)
                self.tally.settle()
            elif settling.is_fresh(local.mtime_ns):
                self.log.info(WATCHING, local.path)
                settling.watch(job)
            else:
                self.tally.add("new" if known is None else "existing")
                yield job
        if settling:
            self.log.info(WAITING_TO_SETTLE, len(settling))
        while settling:
            time.sleep(min(settling.next_look_in(), TICK_SECONDS))
            self.tick()
            yield from self._settled(settling)

    def _settled(self, settling: Settling) -> Iterator[Job]:
        """The watched photos whose watch is over: the stable ones as jobs."""
        for look, job, error in settling.looked_again():
            path = job.local.path
            if look is Look.STABLE:
                self.tally.add("new" if job.known is None else "existing")
                yield job
            elif look is Look.GONE:
                self.failures.judge(path, error, self.bucket)
                self.tally.settle()
            else:
                self.log.warning(STILL_CHANGING, settling.longest, printable(path))
                self.still_changing.append(printable(path))
                self.tally.settle("deferred")

    def checked_one_by_one(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Where a listing would cost more: one size check (a HEAD) per photo, on the pool."""
        for job, future in self.bucket.sizes(jobs):
            try:
                found = future.result()
            except FILE_ERRORS as exc:
                self.failures.judge(job.local.path, exc, self.bucket)
                self.tally.settle()
                continue
            yield replace(job, remote=found)

    def planned(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """Decide each photo's fate: unchanged ones are recorded as verified on the spot
        (but those whose renditions are missing, which go on to be rendered, as many as the
        run's plan allows), the rest go on as jobs to upload (or, when the bucket already
        has them, to record), with the renditions they should have."""
        plan = self.renditions
        for job in jobs:
            decision = decide(job.local, job.known, job.remote)
            for level, note in decision.notes:
                self.log.log(level, note, job.local.path)
            if decision.action is Action.UNCHANGED:
                if plan is not None and not self.dry_run and plan.takes(job):
                    yield replace(job, upload=False, render_only=True, **plan.job_fields)
                    continue
                self.tally.settle("unchanged")
                self.records.verified(job.known.id)
            else:
                upload = decision.action is Action.UPLOAD
                fields = plan.job_fields if plan is not None else {}
                yield replace(job, upload=upload, also_count=decision.also_count, **fields)

    def _exclude(self, left_out: Excluded | None, known: KnownPhoto | None) -> None:
        """What an exclusion covers: a file or folder the walk left out (`left_out`, named
        at -v 2), and a recorded photo it covers, which is neither synced nor taken as gone
        from disk: its record is kept, marked excluded, and its bucket copy stays unless
        the run prunes excluded photos."""
        if left_out is not None:
            self.tally.add("excluded")
            self.log.info("Excluded (%s): %s", left_out.reason, left_out.path)
        if known is not None:
            self.orphans.excluded(known, dry_run=self.dry_run)

    def _untracked(self, entry: Entry) -> None:
        """An object with neither a file nor a record: a prune deletes it. Under a folder
        that could not be read, the file may well be there."""
        if not self.walk.may_hide(entry.path):
            self.orphans.untracked_object(entry.path, self.prefix + entry.path)

    def _orphan(self, photo: KnownPhoto) -> None:
        """A recorded photo the walk did not find. Under a folder that could not be read it
        is not an orphan: it may well be there."""
        if not self.walk.may_hide(photo.path):
            self.orphans.found(photo, dry_run=self.dry_run)


class RenditionPlan:
    """The web renditions of a run: the spec every photo it sends gets, and how many of
    the unchanged photos still without them (synced before renditions existed, or with
    other settings) it renders: `missing` of them (None: all), or every one with `force`."""

    def __init__(self, spec: RenditionSpec, *, missing: int | None, force: bool = False):
        self.spec = spec
        self.left = missing
        self.force = force
        self.job_fields = {"renditions": spec, "force_render": force}

    def takes(self, job: Job) -> bool:
        """Whether this unchanged photo is rendered by this run (counted against the plan)."""
        if not self.force and job.known.renditions == self.spec.signature:
            return False  # made, or tried and refused: --force tries again
        if not is_image(content_type_for(job.local.path)):
            return False
        if self.left is not None:
            if self.left <= 0:
                return False
            self.left -= 1
        return True
