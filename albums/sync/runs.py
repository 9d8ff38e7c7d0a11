"""The SyncRun record of a run: opened before the work, closed with its result."""

from django.utils import timezone

from ..models import Album, SyncRun, SyncStatus
from .result import SyncResult

MAX_RECORDED_ERRORS = 1000  # per-file errors kept on the run; the count stays exact
ABANDONED = (
    "The process running this sync stopped before it finished (killed, crashed or restarted); "
    "the next sync picked up where it left off."
)


def start_run(run, *, album, trigger, dry_run, prune) -> SyncRun:
    now = timezone.now()
    if run is None:
        return SyncRun.objects.create(
            album=album, trigger=trigger, dry_run=dry_run, prune=prune, started_at=now
        )
    run.status, run.started_at = SyncStatus.RUNNING, now
    run.save(update_fields=["status", "started_at"])
    return run


def close_abandoned_runs(album: Album, *, starting: SyncRun | None) -> None:
    """Runs still "running" once their album's lease is free died without finishing.

    `starting` is the run about to start, which a worker may already have marked running.
    """
    abandoned = SyncRun.objects.filter(album=album, status=SyncStatus.RUNNING, dry_run=False)
    if starting is not None:
        abandoned = abandoned.exclude(pk=starting.pk)
    abandoned.update(status=SyncStatus.FAILED, finished_at=timezone.now(), message=ABANDONED)


def close_run(run: SyncRun, *, status: str, message: str) -> None:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.started_at = run.started_at or run.finished_at
    run.save(update_fields=["status", "message", "started_at", "finished_at"])


def finish_run(
    run: SyncRun, album: Album, result: SyncResult, *, done: int, diagnosis: dict | None = None
) -> None:
    """Store the outcome on the run and, for real runs, on the album."""
    counts = result.as_dict()
    for field in (
        "scanned", "new", "existing", "orphaned", "uploaded", "reuploaded",
        "already_in_bucket", "unchanged", "deferred", "removed", "pruned", "failed",
        "bytes_uploaded",
    ):  # fmt: skip
        setattr(run, field, counts[field])
    run.errors = counts["failures"][:MAX_RECORDED_ERRORS]
    run.diagnosis = diagnosis or {}
    run.status, run.message, run.finished_at = result.status, result.message, timezone.now()
    run.files_total, run.files_done = max(result.scanned, done), done
    run.save()
    if not result.dry_run:
        Album.objects.filter(pk=album.pk).update(
            last_synced_at=run.finished_at, last_sync_status=result.status
        )
        album.last_synced_at, album.last_sync_status = run.finished_at, result.status
