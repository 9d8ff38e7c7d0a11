"""Background runs: queue a sync for the django-q2 cluster, and tell whether one is running.

Every door that starts a background sync (admin button and action, `sync_albums --async`,
the API, the schedule) calls `queue_sync` (or `queue_syncs`); the worker side is
`albums.sync.service.run_queued_sync`, called by the task `albums.tasks.run_sync`.
"""

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.status import Stat
from django_q.tasks import async_task

from .. import conf
from ..models import Album, SyncRun
from . import runs

RUN_SYNC_TASK = "albums.tasks.run_sync"


def queue_sync(
    *,
    album: Album,
    trigger: str,
    dry_run: bool = False,
    prune: bool = False,
    kind: str = SyncRun.Kind.SYNC,
    repair: bool = False,
) -> SyncRun:
    """A queued run for `album`, handed to the cluster once the transaction commits: a sync,
    or with `kind` a verification (`repair` for verify_albums --repair) or a restore of the
    album's missing photos.

    If the album is being synced, the running sync is returned; if a run of the same kind
    is waiting (queued, not yet taken by a worker), that run is: a click and a scheduled
    run at the same moment give one sync. Two calls racing past these checks still give
    one sync, as the album's lease makes the later run "skipped". Waiting runs older than
    the cluster's `retry` are not reused: their task may have been lost. With
    Q_CLUSTER["sync"] (tests) the run runs in this process when the transaction commits.
    """
    now = timezone.now()
    if not dry_run and Album.objects.filter(pk=album.pk).syncing(now).exists():
        running = runs.running(album)
        if running is not None:
            return running
    fresh = now - timedelta(seconds=conf.queue_retry_seconds())
    options = {"dry_run": dry_run, "prune": prune, "repair": repair}
    waiting = runs.waiting(album, kind=kind, since=fresh, **options)
    if waiting is not None:
        return waiting
    run = runs.queue(album, kind=kind, trigger=trigger, **options)
    # Enqueue only once the run row is committed, or a fast worker would not find it.
    transaction.on_commit(lambda: _enqueue(run))
    return run


def queue_syncs(*, albums: Iterable[Album], **options) -> list[SyncRun]:
    """`queue_sync` for each album, in order, with the same `options`."""
    return [queue_sync(album=album, **options) for album in albums]


def queue_scheduled_syncs() -> list[SyncRun]:
    """A run for every album synced on schedule that is not being synced right now (its
    lease is free); the next slot picks the others up."""
    albums = Album.objects.filter(sync_on_schedule=True).free_to_sync()
    return queue_syncs(albums=albums, trigger=SyncRun.Trigger.SCHEDULE)


def _enqueue(run: SyncRun) -> None:
    async_task(RUN_SYNC_TASK, run.pk, task_name=f"{run.kind} {run.album.slug} #{run.pk}")


def worker_seen() -> bool:
    """True when a django-q2 cluster has reported in the last few seconds.

    Every cluster saves its status (django_q.status.Stat) each guard cycle with a
    3-second expiry: to Redis with the Redis broker, to Q_CLUSTER["cache"] otherwise
    (a file cache shared by the processes on this machine, see settings). In sync mode
    tasks run in the caller, so a worker is always there.
    """
    if Conf.SYNC:
        return True
    try:
        stats = Stat.get_all()
    except Exception:  # a broker we cannot ask is a worker we cannot see
        return False
    return any(stat.status != Conf.STOPPED for stat in stats)
