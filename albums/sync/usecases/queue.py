"""Background runs: queue a sync for the django-q2 cluster, and tell whether one is running.

Every door that starts a background sync (admin button and action, `sync_albums --async`,
the API, the schedule) calls `queue_sync` (or `queue_syncs`); the worker side is
`albums.sync.service.run_queued_sync`, called by the task `albums.tasks.run_sync`.
"""

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.tasks import async_task

from ... import conf
from ...exceptions import QueueUnavailable
from ...models import Album, SyncRun, SyncStatus
from ..records import runs

logger = logging.getLogger("albums")

RUN_SYNC_TASK = "albums.tasks.run_sync"
RUN_SYNCS_TASK = "albums.tasks.run_syncs"  # several albums, synced as one run
# A waiting run younger than this is handed back without asking the broker for its task: a
# worker may be taking it right now (Redis hands a task over before the run is claimed).
TASK_GRACE_SECONDS = 60
QUEUE_UNREACHABLE = (
    "The task queue ({broker}) cannot be reached: {cause}. Nothing was queued for album "
    "{album!r}; {fix}, then try again."
)
NOT_QUEUED = "Not queued: the task queue ({broker}) could not be reached: {cause}."
TASK_LOST = (
    "Its task was no longer in the task queue ({broker}), which must have been emptied or "
    "restarted; a new run was queued instead."
)


def queue_sync(
    *,
    album: Album,
    trigger: str,
    dry_run: bool = False,
    prune: bool = False,
    kind: str = SyncRun.Kind.SYNC,
    repair: bool = False,
    render_all: bool = False,
) -> SyncRun:
    """A queued run for `album`, handed to the cluster once the transaction commits: a sync,
    or with `kind` a verification (`repair` for verify_albums --repair) or a restore of the
    album's missing photos; `render_all` makes a sync render every photo whose web
    renditions are missing.

    If the album is being synced, the running sync is returned; if a run of the same kind
    is waiting (queued, not yet taken by a worker), that run is: a click and a scheduled
    run at the same moment give one sync. Two calls racing past these checks still give
    one sync, as the album's lease makes the later run "skipped". A waiting run is handed
    back only while its task can still come: it is younger than TASK_GRACE_SECONDS, or the
    broker still holds its task (and never once the cluster's `retry` has passed); otherwise
    it is marked failed and a new run queued. With Q_CLUSTER["sync"] (tests) the run runs in
    this process when the transaction commits.

    Raises QueueUnavailable, with nothing left queued, when the broker cannot be reached:
    a run whose task the broker did not take is marked failed at once (see `_enqueue`).
    """
    now = timezone.now()
    if not dry_run and Album.objects.filter(pk=album.pk).syncing(now).exists():
        running = runs.running(album)
        if running is not None:
            return running
    fresh = now - timedelta(seconds=conf.queue_retry_seconds())
    options = {"dry_run": dry_run, "prune": prune, "repair": repair, "render_all": render_all}
    waiting = runs.waiting(album, kind=kind, since=fresh, **options)
    if waiting is not None:
        young = now - waiting.queued_at < timedelta(seconds=TASK_GRACE_SECONDS)
        if young or _task_waiting(waiting):
            return waiting
        logger.warning("Run #%s lost its task; queueing a new one.", waiting.pk)
        runs.drop(waiting, message=TASK_LOST.format(broker=broker_name()))
    run = runs.queue(album, kind=kind, trigger=trigger, **options)
    # Enqueue only once the run row is committed, or a fast worker would not find it: at
    # once outside a transaction, where a broker that fails raises to the door; inside one,
    # at its commit, where the door has answered already: the run is then failed and logged.
    transaction.on_commit(lambda: _enqueue(run), robust=not transaction.get_autocommit())
    return run


def queue_syncs(
    *,
    albums: Iterable[Album],
    trigger: str,
    dry_run: bool = False,
    prune: bool = False,
    kind: str = SyncRun.Kind.SYNC,
    repair: bool = False,
    render_all: bool = False,
) -> list[SyncRun]:
    """`queue_sync` for each album, in order, with the same options: the runs.

    Syncs of several albums share one task, which the worker runs as one run over them all
    (albums.sync.many), at the cost per album of a run over many: a few queries here for
    any number of albums, one task. A running sync or a waiting run of an album is handed
    back as `queue_sync` would."""
    albums = list(albums)
    options = {"dry_run": dry_run, "prune": prune, "repair": repair, "render_all": render_all}
    if len(albums) < 2 or kind != SyncRun.Kind.SYNC or dry_run:
        return [queue_sync(album=a, trigger=trigger, kind=kind, **options) for a in albums]
    found = _running_or_waiting(albums, options)
    new = runs.queue_many(
        [album for album in albums if album.pk not in found], kind=kind, trigger=trigger, **options
    )
    if new:
        transaction.on_commit(lambda: _enqueue_many(new), robust=not transaction.get_autocommit())
    found.update((run.album_id, run) for run in new)
    return [found[album.pk] for album in albums]


def _running_or_waiting(albums: list[Album], options: dict) -> dict[int, SyncRun]:
    """The runs `queue_sync` would hand back for these albums, by album id: a sync running
    (its lease held), or a sync of these options waiting whose task can still come."""
    now = timezone.now()
    ids = [album.pk for album in albums]
    found: dict[int, SyncRun] = {}
    busy = Album.objects.filter(pk__in=ids).syncing(now).values_list("pk", flat=True)
    running = SyncRun.objects.filter(album__in=list(busy), status=SyncStatus.RUNNING, dry_run=False)
    for run in running.order_by("id"):  # the latest wins
        found[run.album_id] = run
    fresh = now - timedelta(seconds=conf.queue_retry_seconds())
    waiting = SyncRun.objects.filter(
        album__in=ids,
        kind=SyncRun.Kind.SYNC,
        status=SyncStatus.QUEUED,
        queued_at__gte=fresh,
        **options,
    ).select_related("album")
    in_queue: set[int] | None = None  # the broker's queue, read once if at all
    for run in waiting.order_by("id"):
        if run.album_id in found:
            continue
        young = now - run.queued_at < timedelta(seconds=TASK_GRACE_SECONDS)
        if not young and in_queue is None:
            in_queue = _runs_in_queue(run.album)
        if young or run.pk in in_queue:
            found[run.album_id] = run
        else:
            logger.warning("Run #%s lost its task; queueing a new one.", run.pk)
            runs.drop(run, message=TASK_LOST.format(broker=broker_name()))
    return found


def queue_scheduled_syncs() -> list[SyncRun]:
    """A run for every album synced on schedule that is not being synced right now (its
    lease is free); the next slot picks the others up."""
    albums = Album.objects.filter(sync_on_schedule=True).free_to_sync()
    return queue_syncs(albums=albums, trigger=SyncRun.Trigger.SCHEDULE)


def queue_continuation(
    continued: list[SyncRun], *, requeued: list[SyncRun] = ()
) -> dict[int, SyncRun]:
    """The runs that go on from a background task that spent its time budget, by album id:
    a new run for the album of each of `continued` (ended "continued"), following it, and
    `requeued`, runs of albums the task never reached, queued again. In the caller's
    transaction (with the outcomes and the leases given back), so that either all of it or
    none is written; their one task is handed to the broker once it commits. A broker that
    does not take it fails them (see `_enqueue`), which is logged: the runs it ends are
    already recorded."""
    new = runs.queue_continuations(continued)
    runs.requeue(list(requeued))
    waiting = sorted([*new, *requeued], key=lambda run: run.pk)
    if waiting:
        enqueue = _enqueue if len(waiting) == 1 else _enqueue_many
        argument = waiting[0] if len(waiting) == 1 else waiting
        transaction.on_commit(lambda: enqueue(argument), robust=True)
    return {run.album_id: run for run in new}


def _enqueue(run: SyncRun) -> None:
    """Hand the run's task to the broker; if the broker does not take it, the run is marked
    failed (nothing will ever run it) and QueueUnavailable raised."""
    try:
        async_task(RUN_SYNC_TASK, run.pk, task_name=f"{run.kind} {run.album.slug} #{run.pk}")
    except Exception as exc:  # whatever the broker raised, the task was not queued
        if Conf.SYNC:
            raise  # sync mode ran the task itself: its error, not the broker's
        runs.drop(run, message=NOT_QUEUED.format(broker=broker_name(), cause=_cause(exc)))
        raise _unreachable(run.album, exc) from exc


def _enqueue_many(queued: list[SyncRun]) -> None:
    """`_enqueue` for runs that share one task."""
    ids = [run.pk for run in queued]
    try:
        async_task(RUN_SYNCS_TASK, ids, task_name=f"sync {len(ids)} albums #{ids[0]}-{ids[-1]}")
    except Exception as exc:  # whatever the broker raised, the task was not queued
        if Conf.SYNC:
            raise
        for run in queued:
            runs.drop(run, message=NOT_QUEUED.format(broker=broker_name(), cause=_cause(exc)))
        raise _unreachable(queued[0].album, exc) from exc


def _task_waiting(run: SyncRun) -> bool:
    """Whether the broker still holds the task of `run` (queued, or taken by a worker that
    has not acknowledged it yet), alone or with other runs. Raises QueueUnavailable when the
    broker cannot be asked."""
    return run.pk in _runs_in_queue(run.album)


def _runs_in_queue(album: Album) -> set[int]:
    """The ids of the runs whose tasks the broker holds, read in one go; QueueUnavailable
    (naming `album`) when the broker cannot be asked."""
    ids: set[int] = set()
    try:
        for task in _queued_tasks():
            func, args = task.get("func"), tuple(task.get("args", ()))
            if func == RUN_SYNC_TASK and len(args) == 1:
                ids.add(args[0])
            elif func == RUN_SYNCS_TASK and args and isinstance(args[0], list | tuple):
                ids.update(args[0])
    except Exception as exc:  # a broker we cannot ask
        raise _unreachable(album, exc) from exc
    return ids


def _queued_tasks() -> Iterator[dict]:
    """The tasks the broker holds. django-q2 has no API to look into its queue: this reads
    the two brokers photosite configures (settings.Q_CLUSTER) as their enqueue writes."""
    # Here, not at import: redis-py costs every command's start-up a sixth of a second.
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    broker = get_broker()
    if isinstance(broker, Redis):
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    elif isinstance(broker, ORM):
        payloads = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key)
        payloads = payloads.values_list("payload", flat=True)
    else:
        return
    for payload in payloads:
        try:
            yield SignedPackage.loads(payload)
        except Exception:  # noqa: S112 - not one of ours (another key, another secret)
            continue


def broker_name() -> str:
    """The broker, for messages: Redis's address without its password, or the database."""
    url = _redis_url()
    if not url:
        return "the database"
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
    return f"Redis at {where}"


def _redis_url() -> str:
    return Conf.REDIS if isinstance(Conf.REDIS, str) else ""


def _unreachable(album: Album, exc: Exception) -> QueueUnavailable:
    fix = "start Redis or fix REDIS_URL" if _redis_url() else "check DATABASE_URL"
    return QueueUnavailable(
        QUEUE_UNREACHABLE.format(broker=broker_name(), cause=_cause(exc), album=album.name, fix=fix)
    )


def _cause(exc: Exception) -> str:
    return str(exc).strip().rstrip(".") or type(exc).__name__


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
