"""Background runs: queue a sync for the django-q2 cluster, and tell whether one is running.

Every door that starts a background sync (admin button and action, `sync_albums --async`,
the API, the schedule) calls `queue_sync`; the worker side is `albums.tasks.run_sync`.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.status import Stat
from django_q.tasks import async_task

from .. import conf
from ..models import Album, SyncRun, SyncStatus

RUN_SYNC_TASK = "albums.tasks.run_sync"


def queue_sync(
    *, album: Album, trigger: str, dry_run: bool = False, prune: bool = False
) -> SyncRun:
    """A queued SyncRun for `album`, handed to the cluster once the transaction commits.

    If the album is being synced, the running sync is returned; if a run of the same kind
    is waiting (queued, not yet taken by a worker), that run is: a click and a scheduled
    run at the same moment give one sync. Two calls racing past these checks still give
    one sync, as the album's lease makes the later run "skipped". Waiting runs older than
    the cluster's `retry` are not reused: their task may have been lost. With
    Q_CLUSTER["sync"] (tests) the run runs in this process when the transaction commits.
    """
    now = timezone.now()
    if not dry_run and Album.objects.filter(pk=album.pk, sync_lease_expires_at__gt=now).exists():
        running = (
            SyncRun.objects.filter(album=album, status=SyncStatus.RUNNING, dry_run=False)
            .order_by("-id")
            .first()
        )
        if running is not None:
            return running
    fresh = now - timedelta(seconds=conf.queue_retry_seconds())
    waiting = (
        SyncRun.objects.filter(
            album=album,
            status=SyncStatus.QUEUED,
            dry_run=dry_run,
            prune=prune,
            queued_at__gte=fresh,
        )
        .order_by("-id")
        .first()
    )
    if waiting is not None:
        return waiting
    run = SyncRun.objects.create(
        album=album,
        trigger=trigger,
        dry_run=dry_run,
        prune=prune,
        status=SyncStatus.QUEUED,
        queued_at=now,
    )
    # Enqueue only once the run row is committed, or a fast worker would not find it.
    transaction.on_commit(lambda: _enqueue(run))
    return run


def _enqueue(run: SyncRun) -> None:
    async_task(RUN_SYNC_TASK, run.pk, task_name=f"sync {run.album.slug} #{run.pk}")


def worker_seen() -> bool:
    """True when a django-q2 cluster, on any machine, has reported in the last few seconds.

    Every cluster saves its status (django_q.status.Stat) each guard cycle with a
    3-second expiry: to Redis with the Redis broker, to Q_CLUSTER["cache"] otherwise,
    a database cache (settings.CACHES["django_q"]), so every machine sharing the database
    sees every worker; never a local file (issue 16). In sync mode tasks run in the
    caller, so a worker is always there.
    """
    if Conf.SYNC:
        return True
    try:
        stats = Stat.get_all()
    except Exception:  # a broker we cannot ask is a worker we cannot see
        return False
    return any(stat.status != Conf.STOPPED for stat in stats)
