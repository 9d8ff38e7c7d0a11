"""A run's record and every change of its state, in one place.

    queued ──claim──> running ──finish──> success | partial | failed
       │ │               ↑                     (abandoned: failed, by the next run)
       │ └─────skip──────┴──> skipped (another sync held the album)
       └──drop──> failed (the broker never took its task, or lost it)

A run made by a door for the worker starts queued (`queue`); a run the command starts itself
is created running (`start`). The doors, the task and the service change a run only
through these functions.

The outcome of a real sync run in the background (`SyncRun.in_background`) is also counted in
its album's streak of failures (`Album.sync_failures_in_row`), here, where the outcome is
stored; once that is written, `streak_counted` tells whoever listens (albums.alerts, which
emails the admins: this layer knows nothing of email).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from ..models import Album, SyncRun, SyncStatus
from .result import RunOutcome

MAX_RECORDED_ERRORS = 1000  # per-file errors kept on the run; the count stays exact
ABANDONED = (
    "The process running this sync stopped before it finished (killed, crashed or restarted); "
    "the next sync picked up where it left off."
)
UNEXPECTED = "Unexpected error: {error}"
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
    for name in result.COUNTS.names():
        setattr(run, name, getattr(result, name))
    run.failed = result.failed
    reported = [*result.failures, *getattr(result, "problems", ())][:MAX_RECORDED_ERRORS]
    run.errors = [{"path": f.path, "error": f.error} for f in reported]
    run.status, run.message, run.finished_at = result.status, result.message, timezone.now()
    run.files_total, run.files_done = max(found, done), done
    run.save()
    if run.kind == SyncRun.Kind.SYNC and not result.dry_run:
        Album.objects.filter(pk=album.pk).update(
            last_synced_at=run.finished_at, last_sync_status=result.status
        )
        album.last_synced_at, album.last_sync_status = run.finished_at, result.status
        _count_in_streak(run)


def add_diagnosis(run_id: int, diagnosis: dict) -> None:
    """Keep check_storage's findings on a run the bucket stopped, for the admin to show."""
    SyncRun.objects.filter(pk=run_id).update(diagnosis=diagnosis)


def fail_unstarted(run_id: int, error: Exception) -> None:
    """A claimed run whose sync raised before it took the run over (a bad setting, say):
    failed, never left "running" for ever, and counted in its album's streak: a setting that
    breaks every scheduled sync is what the admins must hear of."""
    failed = SyncRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
        status=SyncStatus.FAILED, message=UNEXPECTED.format(error=error), finished_at=timezone.now()
    )
    if failed:
        run = SyncRun.objects.select_related("album").get(pk=run_id)
        if run.kind == SyncRun.Kind.SYNC and not run.dry_run:
            _count_in_streak(run)


def mark_alerted(streak: Streak) -> None:
    """The admins were told of `streak` (a failure alert went out): no other alert until it
    ends. Left alone if the streak ended meanwhile."""
    Album.objects.filter(
        pk=streak.album_id, sync_failures_in_row__gt=0, failure_alert_sent_at__isnull=True
    ).update(failure_alert_sent_at=timezone.now())


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
    }


def _count_in_streak(run: SyncRun) -> None:
    """A real sync's outcome, counted in its album's streak if it ran in the background: a
    failed or partial run lengthens it, a success ends it (a skipped run, or one the command
    ran, changes nothing). Then, once committed, `streak_counted` is sent.

    Read then written: only one real sync of an album runs at a time (its lease)."""
    if not run.in_background or run.status not in (SyncStatus.SUCCESS, *FAILING):
        return
    album = Album.objects.filter(pk=run.album_id)
    failures, alerted_at = album.values_list("sync_failures_in_row", "failure_alert_sent_at").get()
    alerted = alerted_at is not None
    if run.status in FAILING:
        album.update(sync_failures_in_row=F("sync_failures_in_row") + 1)
        streak = Streak(album_id=run.album_id, failures=failures + 1, alerted=alerted)
    elif failures:
        album.update(sync_failures_in_row=0, failure_alert_sent_at=None)
        streak = Streak(album_id=run.album_id, failures=0, ended=failures, alerted=alerted)
    else:
        return  # a success after a success: nothing to tell
    transaction.on_commit(
        lambda: streak_counted.send_robust(sender=SyncRun, run=run, streak=streak), robust=True
    )


def _close(run: SyncRun, *, status: str, message: str) -> None:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.started_at = run.started_at or run.finished_at
    run.save(update_fields=["status", "message", "started_at", "finished_at"])
