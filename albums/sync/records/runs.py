"""A run's record and every change of its state, in one place.

    queued ──claim──> running ──finish──> success | partial | failed | continued
     ↑ │ │               ↑  │                  (abandoned: failed, by the next run)
     │ │ └─────skip──────┴──┼──> skipped (another sync held the album)
     │ └──drop──> failed    │  (the broker never took its task, or lost it)
     └──────requeue─────────┘  (a run over several albums stopped before it reached this one)

A run made by a door for the worker starts queued (`queue`); a run the command starts itself
is created running (`start`). The doors, the task and the service change a run only
through these functions.

A background sync that spends its task's time budget ends "continued", and the run that goes
on from it is queued with it (`queue_continuations`), following it (`SyncRun.follows`). A sync
that starts after one that was interrupted (killed, Ctrl-C, the task timeout) follows it too,
with how many of the photos it had sent are not sent again (`note_resumptions`).

The outcome of a real sync run in the background (`SyncRun.in_background`) is also counted in
its album's streak of failures (`Album.sync_failures_in_row`), here, where the outcome is
stored; once that is written, `streak_counted` tells whoever listens (albums.alerts, which
emails the admins: this layer knows nothing of email).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import ngettext

from ...models import Album, Photo, SyncRun, SyncStatus
from ...storage import StorageProblem
from ...storage.diagnostics import diagnose_storage
from ..outcome.result import INTERRUPTED, STOPPED_BY_EXIT, RunOutcome
from .rows import create_for_each, update_each

logger = logging.getLogger("albums")

FINISHED_FIELDS = [
    "failed",
    "errors",
    "rendition_problems",
    "status",
    "message",
    "finished_at",
    "files_total",
    "files_done",
]
MAX_RECORDED_ERRORS = 1000  # per-file errors kept on the run; the count stays exact
ABANDONED = (
    "The process running this sync stopped before it finished (killed, crashed or restarted); "
    "the next sync picked up where it left off."
)
UNEXPECTED = "Unexpected error: {error}"
# How a run that was cut short ends: what makes the next one a resumption of it.
INTERRUPTIONS = (ABANDONED, INTERRUPTED, STOPPED_BY_EXIT)
RESUMED = (
    "Resumed after run #{run}, which was interrupted: {photos} it had sent and recorded "
    "{were} not sent again."
)
CONTINUES = "Continues run #{run}, which stopped after its time budget."
ENDED = (SyncStatus.SUCCESS, SyncStatus.PARTIAL, SyncStatus.FAILED, SyncStatus.CONTINUED)
ACTIVE = (SyncStatus.QUEUED, SyncStatus.RUNNING)
FAILING = (SyncStatus.FAILED, SyncStatus.PARTIAL)  # what makes or lengthens a streak

# Sent with `run` and `streak` (a Streak) once a background sync's outcome has changed its
# album's streak and the database is written (on commit). Receivers must not raise; those
# that do are logged (send_robust), never failing the run.
streak_counted = Signal()


@dataclass(frozen=True, slots=True)
class Streak:
    """How a background sync changed its album's streak of failures.

    `failures` is the streak's length after the run (0: it succeeded); `ended`, for a
    success, the length of the streak it ended; `alerted`, whether the admins were told of
    the streak (a failure alert was sent for it)."""

    album_id: int
    failures: int
    ended: int = 0
    alerted: bool = False


def queue(album: Album, *, kind: str, trigger: str, **options: bool) -> SyncRun:
    """A new run waiting for a worker; `options` are its dry_run, prune or repair."""
    return SyncRun.objects.create(
        album=album,
        kind=kind,
        trigger=trigger,
        status=SyncStatus.QUEUED,
        queued_at=timezone.now(),
        **options,
    )


def queue_many(albums: list[Album], *, kind: str, trigger: str, **options: bool) -> list[SyncRun]:
    """`queue` for several albums, in one query."""
    now = timezone.now()
    new = [
        SyncRun(
            album=album,
            kind=kind,
            trigger=trigger,
            status=SyncStatus.QUEUED,
            queued_at=now,
            **options,
        )
        for album in albums
    ]
    return SyncRun.objects.bulk_create(new, batch_size=500)


def queue_continuations(continued: list[SyncRun]) -> list[SyncRun]:
    """A queued run for the album of each of `continued` (runs that spent their time
    budget), with its trigger and options, following it; in one query."""
    now = timezone.now()
    new = [
        SyncRun(
            album=run.album,
            kind=SyncRun.Kind.SYNC,
            trigger=run.trigger,
            status=SyncStatus.QUEUED,
            queued_at=now,
            prune=run.prune,
            render_all=run.render_all,
            follows=run,
        )
        for run in continued
    ]
    return SyncRun.objects.bulk_create(new, batch_size=500)


def requeue(started: list[SyncRun]) -> None:
    """Runs a run over several albums started and stopped before it reached their albums
    (its time budget was spent): queued again, as if never taken, for the task that goes
    on from it. In one query."""
    now = timezone.now()
    SyncRun.objects.filter(pk__in=[run.pk for run in started], status=SyncStatus.RUNNING).update(
        status=SyncStatus.QUEUED, started_at=None, queued_at=now
    )
    for run in started:
        run.status, run.started_at, run.queued_at = SyncStatus.QUEUED, None, now


def drop(run: SyncRun, *, message: str) -> None:
    """A queued run whose task the broker never took, or lost: failed, so that no door hands
    it back as waiting. A worker that gets its task after all finds it no longer queued."""
    SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
        status=SyncStatus.FAILED, message=message, finished_at=timezone.now()
    )
    run.refresh_from_db(fields=["status", "message", "finished_at"])


def claim(run_id: int) -> SyncRun | None:
    """Take a queued run for this worker: one conditional UPDATE, so a task delivered twice
    (django-q2 #327) claims it once. None when it is no longer queued."""
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncStatus.QUEUED).update(
        status=SyncStatus.RUNNING
    )
    if not claimed:
        return None
    return SyncRun.objects.select_related("album").get(pk=run_id)


def start(
    run: SyncRun | None, *, album: Album, kind: str, trigger: str, **options: bool
) -> SyncRun:
    """The run, now running: `run` (queued or claimed) or a new one with `options` (its
    dry_run, prune or repair)."""
    now = timezone.now()
    if run is None:
        return SyncRun.objects.create(
            album=album, kind=kind, trigger=trigger, started_at=now, **options
        )
    run.status, run.started_at = SyncStatus.RUNNING, now
    run.save(update_fields=["status", "started_at"])
    return run


def skip(run: SyncRun, *, message: str) -> None:
    """The run did not start: another sync holds the album."""
    _close(run, status=SyncStatus.SKIPPED, message=message)


def finish(run: SyncRun, album: Album, result: RunOutcome, *, done: int, found: int) -> None:
    """Store the outcome on the run and, for real syncs, on the album. `found` is how many
    photos the run found to handle, `done` how many it finished."""
    _set_outcome(run, result, done=done, found=found)
    run.save()
    if _counts_for_the_album(run, result):
        Album.objects.filter(pk=album.pk).update(
            last_synced_at=run.finished_at, last_sync_status=result.status
        )
        album.last_synced_at, album.last_sync_status = run.finished_at, result.status
        _count_in_streaks([run])


@dataclass(frozen=True, slots=True)
class Finished:
    """A run's outcome, waiting to be stored with others (`finish_many`)."""

    run: SyncRun
    album: Album
    result: RunOutcome
    done: int
    found: int
    # False once the album's lease was lost: another sync has it, whose outcome is the one
    # its album shows and counts in its streak.
    holds_album: bool = True


def finish_many(finished: list[Finished]) -> None:
    """`finish` for the runs of a run over several albums: one statement for the runs and
    one for their albums, each run for every row (rows.update_each), in the caller's
    transaction."""
    for item in finished:
        _set_outcome(item.run, item.result, done=item.done, found=item.found)
    by_kind: dict[tuple[str, ...], list[SyncRun]] = {}
    for item in finished:
        by_kind.setdefault((*item.result.COUNTS.names(), *FINISHED_FIELDS), []).append(item.run)
    for fields, finished_runs in by_kind.items():
        update_each(SyncRun, finished_runs, fields)
    counted = [
        item
        for item in finished
        if item.holds_album and _counts_for_the_album(item.run, item.result)
    ]
    for item in counted:
        item.album.last_synced_at = item.run.finished_at
        item.album.last_sync_status = item.result.status
    if counted:
        albums = [item.album for item in counted]
        update_each(Album, albums, ("last_synced_at", "last_sync_status"))
        _count_in_streaks([item.run for item in counted])


def _set_outcome(run: SyncRun, result: RunOutcome, *, done: int, found: int) -> None:
    for name in result.COUNTS.names():
        setattr(run, name, getattr(result, name))
    run.failed = result.failed
    reported = [*result.failures, *getattr(result, "problems", ())][:MAX_RECORDED_ERRORS]
    run.errors = [{"path": f.path, "error": f.error} for f in reported]
    unrendered = getattr(result, "rendition_problems", ())[:MAX_RECORDED_ERRORS]
    run.rendition_problems = [{"path": f.path, "error": f.error} for f in unrendered]
    run.status, run.message, run.finished_at = result.status, result.message, timezone.now()
    run.files_total, run.files_done = max(found, done), done


def _counts_for_the_album(run: SyncRun, result: RunOutcome) -> bool:
    """The album shows the outcome of its last real sync."""
    return run.kind == SyncRun.Kind.SYNC and not result.dry_run


def diagnose(problem: StorageProblem | None) -> dict:
    """check_storage's findings, without asking again what `problem` (what stopped the run)
    has shown; a diagnosis that fails is left out, never hiding the error that stopped the
    run."""
    try:
        return diagnose_storage(known=problem).as_dict()
    except Exception:
        logger.exception("Could not diagnose the storage after a failed sync")
        return {}


def add_diagnosis(run_ids: list[int], diagnosis: dict) -> None:
    """Keep check_storage's findings on the runs the bucket stopped, for the admin to show."""
    SyncRun.objects.filter(pk__in=run_ids).update(diagnosis=diagnosis)


def fail_unstarted(run_id: int, error: Exception, *, unexpected: bool = True) -> None:
    """A claimed run whose sync raised before it took the run over (a bad setting, say):
    failed, never left "running" for ever, and counted in its album's streak: a setting that
    breaks every scheduled sync is what the admins must hear of."""
    message = UNEXPECTED.format(error=error) if unexpected else str(error)
    failed = SyncRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
        status=SyncStatus.FAILED, message=message, finished_at=timezone.now()
    )
    if failed:
        run = SyncRun.objects.select_related("album").get(pk=run_id)
        if run.kind == SyncRun.Kind.SYNC and not run.dry_run:
            _count_in_streaks([run])


def mark_alerted(streak: Streak) -> None:
    """The admins were told of `streak` (a failure alert went out): no other alert until it
    ends. Left alone if the streak ended meanwhile."""
    Album.objects.filter(
        pk=streak.album_id, sync_failures_in_row__gt=0, failure_alert_sent_at__isnull=True
    ).update(failure_alert_sent_at=timezone.now())


def start_many(
    albums: list[Album], *, kind: str, trigger: str, queued: dict[int, SyncRun], **options: bool
) -> dict[int, SyncRun]:
    """`start` for the albums of a run over several (their runs by album id; an album
    deleted meanwhile has none), in a few queries: `queued` holds the runs a worker claimed
    for some of them."""
    now = timezone.now()
    claimed = [queued[album.pk] for album in albums if album.pk in queued]
    for run in claimed:
        run.status, run.started_at = SyncStatus.RUNNING, now
    if claimed:
        SyncRun.objects.bulk_update(claimed, ["status", "started_at"], batch_size=500)
    new = create_for_each(
        SyncRun(kind=kind, trigger=trigger, started_at=now, **options),
        "album",
        [album for album in albums if album.pk not in queued],
    )
    return {run.album_id: run for run in [*claimed, *new]}


def note_resumptions(started: list[SyncRun]) -> None:
    """Each of these real syncs, just started, whose album's last run was interrupted
    (killed and closed as abandoned, Ctrl-C, the task timeout) follows it, with how many
    photos it had sent and recorded: this run finds them recorded and does not send them
    again. One query for any number of runs, and one more when there is something to note.

    The photos counted are those the interrupted run uploaded (their upload time within
    its own); a photo sent in its last seconds, whose record was not written yet, is found
    in the bucket by this run (counted as already there), never sent twice either."""
    if not started:
        return
    ids = [run.pk for run in started]
    latest = (
        SyncRun.objects.filter(
            album=OuterRef("album"), kind=SyncRun.Kind.SYNC, dry_run=False, status__in=ENDED
        )
        .exclude(pk__in=ids)
        .order_by("-id")
        .values("pk")[:1]
    )
    kept = (
        Photo.objects.filter(
            album=OuterRef("album"),
            verified_at__gte=OuterRef("started_at"),  # (album, verified_at) is indexed
            uploaded_at__gte=OuterRef("started_at"),
            uploaded_at__lte=OuterRef("finished_at"),
        )
        .order_by()
        .values("album")
        .annotate(count=Count("pk"))
        .values("count")
    )
    interrupted = (
        SyncRun.objects.filter(
            album__in=[run.album_id for run in started],
            status=SyncStatus.FAILED,
            message__in=INTERRUPTIONS,
            pk=Subquery(latest),
        )
        .annotate(kept=Coalesce(Subquery(kept), 0))
        .values_list("album_id", "pk", "kept")
    )
    found = {album_id: (pk, count) for album_id, pk, count in interrupted}
    noted = [run for run in started if run.album_id in found]
    for run in noted:
        run.follows_id, run.resumed_photos = found[run.album_id]
    update_each(SyncRun, noted, ("follows", "resumed_photos"))


def follow_note(run: SyncRun) -> str:
    """What the run picks up from, in words ("" for most runs): the admin's run and album
    pages and the API say it."""
    if run.follows_id is None:
        return ""
    if run.resumed_photos is None:
        return CONTINUES.format(run=run.follows_id)
    count = run.resumed_photos
    photos = ngettext("%(n)d photo", "%(n)d photos", count) % {"n": count}
    return RESUMED.format(run=run.follows_id, photos=photos, were="was" if count == 1 else "were")


def close_abandoned_many(albums: list[Album], *, starting: list[SyncRun]) -> None:
    """`close_abandoned` for the albums of a run over several, whose leases it holds."""
    abandoned = SyncRun.objects.filter(
        album__in=albums, status=SyncStatus.RUNNING, dry_run=False
    ).exclude(pk__in=[run.pk for run in starting])
    abandoned.update(status=SyncStatus.FAILED, finished_at=timezone.now(), message=ABANDONED)


def close_abandoned(album: Album, *, starting: SyncRun | None) -> None:
    """Runs still "running" once their album's lease is free died without finishing.

    `starting` is the run about to start, which a worker may already have marked running.
    """
    abandoned = SyncRun.objects.filter(album=album, status=SyncStatus.RUNNING, dry_run=False)
    if starting is not None:
        abandoned = abandoned.exclude(pk=starting.pk)
    abandoned.update(status=SyncStatus.FAILED, finished_at=timezone.now(), message=ABANDONED)


def running(album: Album) -> SyncRun | None:
    """The album's run in progress that holds its lease (any but a dry run), if any."""
    runs = SyncRun.objects.filter(album=album, status=SyncStatus.RUNNING, dry_run=False)
    return runs.order_by("-id").first()


def waiting(album: Album, *, kind: str, since: datetime, **options: bool) -> SyncRun | None:
    """A run of this kind and these options queued for the album since `since`, not yet
    taken by a worker."""
    runs = SyncRun.objects.filter(
        album=album, kind=kind, status=SyncStatus.QUEUED, queued_at__gte=since, **options
    )
    return runs.order_by("-id").first()


def run_as_dict(run: SyncRun) -> dict:
    """A run as the API and the admin's progress poll report it."""
    return {
        "id": run.pk,
        "album": run.album.slug,
        "kind": run.kind,
        "status": run.status,
        "status_display": run.get_status_display(),
        "active": run.status in ACTIVE,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
        "prune": run.prune,
        "repair": run.repair,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "message": run.message,
        "files_done": run.files_done,
        "files_total": run.files_total,
        **{name: getattr(run, name) for name in run.counts_class.names()},
        "failed": run.failed,
        "follows": run.follows_id,
        "resumed_photos": run.resumed_photos,
        "note": follow_note(run),
    }


def _count_in_streaks(finished: list[SyncRun]) -> None:
    """Real syncs' outcomes, each counted in its album's streak if it ran in the background:
    a failed or partial run lengthens it, a success ends it (a skipped run, or one the command
    ran, changes nothing). Then, once committed, `streak_counted` is sent for each change.

    One query for the streaks as they stand, then one for each streak that changes (most
    runs are a success after a success, which change nothing). Read then written: only one
    real sync of an album runs at a time (its lease)."""
    counted = [
        run
        for run in finished
        if run.in_background and run.status in (SyncStatus.SUCCESS, *FAILING)
    ]
    if not counted:
        return
    standing = {
        pk: (failures, alerted_at is not None)
        for pk, failures, alerted_at in Album.objects.filter(
            pk__in=[run.album_id for run in counted]
        ).values_list("pk", "sync_failures_in_row", "failure_alert_sent_at")
    }
    for run in counted:
        failures, alerted = standing[run.album_id]
        album = Album.objects.filter(pk=run.album_id)
        if run.status in FAILING:
            album.update(sync_failures_in_row=F("sync_failures_in_row") + 1)
            streak = Streak(album_id=run.album_id, failures=failures + 1, alerted=alerted)
        elif failures:
            album.update(sync_failures_in_row=0, failure_alert_sent_at=None)
            streak = Streak(album_id=run.album_id, failures=0, ended=failures, alerted=alerted)
        else:
            continue  # a success after a success: nothing to tell
        transaction.on_commit(
            lambda run=run, streak=streak: streak_counted.send_robust(
                sender=SyncRun, run=run, streak=streak
            ),
            robust=True,
        )


def _close(run: SyncRun, *, status: str, message: str) -> None:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.started_at = run.started_at or run.finished_at
    run.save(update_fields=["status", "message", "started_at", "finished_at"])
