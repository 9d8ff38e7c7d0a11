"""django-q2 tasks. They take ids (arguments are pickled; an instance would be stale) and
call the sync service, which records every outcome on the run.

Never name a parameter timeout, group, hook, sync or cached: async_task takes those.
"""

import logging

from django.db.models import Q
from django.utils import timezone

from .exceptions import SyncError
from .models import Album, SyncRun, SyncStatus
from .sync import queue_sync, sync_album

logger = logging.getLogger("albums.tasks")


def run_sync(run_id: int) -> dict | None:
    """Run the queued SyncRun `run_id`; its result as a dict, or None if there was nothing to do.

    Idempotent under re-delivery (django-q2 #327): the run is claimed with one conditional
    UPDATE from "queued", so a task delivered twice syncs once. A sync refused because
    another holds the album's lease is recorded as skipped by the service.
    """
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncStatus.QUEUED).update(
        status=SyncStatus.RUNNING
    )
    if not claimed:
        logger.info("Sync run #%s is no longer queued; nothing to do.", run_id)
        return None
    run = SyncRun.objects.select_related("album").get(pk=run_id)
    try:
        result = sync_album(
            album=run.album, run=run, dry_run=run.dry_run, prune=run.prune, trigger=run.trigger
        )
    except SyncError as exc:
        # Recorded on the run by the service (failed, or skipped when the album was busy).
        result = getattr(exc, "result", None)
        if result is None:
            run.refresh_from_db()
            return {"run_id": run_id, "status": run.status, "message": str(exc)}
        return result.as_dict()
    except Exception as exc:
        # Raised before the service took the run over (a bad setting, say): do not leave
        # it "running" for ever. django-q2 records the traceback on its task.
        SyncRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
            status=SyncStatus.FAILED, message=f"Unexpected error: {exc}", finished_at=timezone.now()
        )
        raise
    return result.as_dict()


def sync_due_albums() -> list[int]:
    """Queue a run for every album synced on schedule whose lease is free; the run ids.

    An album being synced right now is left alone (its lease is held); the next slot
    picks it up again.
    """
    now = timezone.now()
    albums = Album.objects.filter(sync_on_schedule=True).filter(
        Q(sync_lease_expires_at__isnull=True) | Q(sync_lease_expires_at__lt=now)
    )
    return [queue_sync(album=album, trigger=SyncRun.Trigger.SCHEDULE).pk for album in albums]
