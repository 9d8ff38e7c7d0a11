"""A background sync that spent its task's time budget (albums.sync.engine.budget): how it
ends, and the run that goes on from it.

The run ends "continued", its message naming the run that goes on from it, which is queued
in the same transaction as the outcome (and as the album's lease given back, so that the new
task never finds the album held by the old one). The task timeout then bounds a stall, never
the work: a library of any size is synced by as many tasks as it takes, each a run of its
own, none of them sending again what an earlier one recorded.

A run that recorded nothing within its budget is not continued: the next run would start
over from the same place and spend its budget the same way, for ever. It fails with a
message that says what to change. A dry run records nothing to go on from: it fails too.
"""

import logging

from django.db import transaction

from ...exceptions import TimeBudgetSpent
from ...models import SyncRun, SyncStatus
from ..engine.album_sync import AlbumSync
from ..engine.budget import describe_seconds
from ..outcome.result import SyncResult
from ..records import runs
from .queue import queue_continuation

logger = logging.getLogger("albums")

CONTINUED = "Stopped after its time budget ({seconds}); the rest continues in run #{run}."
NO_PROGRESS = (
    "Spent its time budget ({seconds}) without recording a photo, so it was not continued: "
    "the next run would only start over. Raise Q_TIMEOUT (the budget is three quarters of "
    "it) or ALBUMS_TASK_BUDGET_SECONDS, or sync the album with manage.py sync_albums, which "
    "has no time limit."
)
DRY_RUN_STOPPED = (
    "Stopped after its time budget ({seconds}): a dry run records nothing to go on from, so "
    "its counts are those of the photos it reached. manage.py sync_albums --dry-run has no "
    "time limit."
)


def continue_album(engine: AlbumSync, run: SyncRun, spent: TimeBudgetSpent) -> SyncResult:
    """End `run`, whose pass `engine` stopped when its budget was spent (`spent`), as
    continued, with the run that goes on from it queued; its result. Raises
    TimeBudgetSpent, the run failed, when it recorded nothing (or was a dry run)."""
    album, tally = engine.album, engine.tally
    seconds = describe_seconds(engine.budget.seconds)
    progress = engine.progress_made()
    if not progress:
        message = (DRY_RUN_STOPPED if progress is None else NO_PROGRESS).format(seconds=seconds)
        failed = TimeBudgetSpent(message)
        failed.result = engine.result(status=SyncStatus.FAILED, message=message)
        logger.error("Sync of album %r failed: %s", album.name, message)
        runs.finish(run, album, failed.result, done=tally.done, found=tally.found_count)
        raise failed from spent
    with transaction.atomic():
        following = queue_continuation([run])[album.pk]
        message = CONTINUED.format(seconds=seconds, run=following.pk)
        result = engine.result(status=SyncStatus.CONTINUED, message=message)
        runs.finish(run, album, result, done=tally.done, found=tally.found_count)
        if engine.lease is not None:
            engine.lease.release()
    logger.info("Sync of album %r: %s", album.name, message)
    return result
