"""Is this site working? Two URLs, no login (issues 16 and 28).

- `GET /api/health/live/`, for a load balancer or a container orchestrator: does this process
  answer, and does its database? One `SELECT 1` and nothing else; 200, or 503 when the
  database does not answer.
- `GET /api/health/`, for a monitor: the whole picture, as one status.
  "failing" (503): the database does not answer, or albums synced on schedule are overdue,
  no sync of theirs having gone through (succeeded or partly failed) for two intervals: their
  syncs fail as a whole. "degraded" (200): the site works but something needs attention: the
  last sync of a scheduled album failed or partly failed (one unreadable file makes every sync
  of its album partial, which no load balancer should act on), or no worker has reported
  lately. "ok" (200) otherwise.

The answers say only whether the database answers, whether a worker was seen, how many
scheduled albums are in each state and how long ago the one that has waited longest last
synced. They name no album, path, host, setting or error text, so they show nothing an
anonymous caller should not see.
"""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import wraps

from django.db import DatabaseError, connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django_q.models import Schedule

from . import conf
from .models import Album, SyncRun, SyncStatus
from .schedule import SCHEDULE_NAME
from .sync import worker_seen

logger = logging.getLogger(__name__)

OK, DEGRADED, FAILING = "ok", "degraded", "failing"
OVERDUE_INTERVALS = 2  # a scheduled album is overdue after this many intervals without a sync
# A sync that went through its album (every file handled, some perhaps failing alone), or
# that made its way through part of it before its time budget ran out and goes on in the
# next run (a first sync of a large library spans several). Only a real sync counts: a
# verification or a restore that passes says nothing of the syncs.
WENT_THROUGH = (SyncStatus.SUCCESS, SyncStatus.PARTIAL, SyncStatus.CONTINUED)

DATABASE_DOWN = "The database does not answer."
OVERDUE = (
    "{count} album(s) synced on schedule have not synced, even partly, for more than "
    "{minutes} minutes (two intervals): their syncs fail."
)
LAST_SYNC_PARTIAL = (
    "The last sync of {count} album(s) synced on schedule partly failed: some files could not "
    "be synced."
)
LAST_SYNC_FAILED = "The last sync of {count} album(s) synced on schedule failed."
NO_WORKER = "No worker has reported in the last few seconds: queued and scheduled syncs wait."
METHOD_NOT_ALLOWED = "Use GET."
# Schedule types with a fixed period, in minutes; a cron schedule falls back to the setting.
PERIOD_MINUTES = {
    Schedule.HOURLY: 60,
    Schedule.DAILY: 24 * 60,
    Schedule.WEEKLY: 7 * 24 * 60,
    Schedule.BIWEEKLY: 14 * 24 * 60,
    Schedule.MONTHLY: 31 * 24 * 60,
    Schedule.BIMONTHLY: 62 * 24 * 60,
    Schedule.QUARTERLY: 92 * 24 * 60,
    Schedule.YEARLY: 366 * 24 * 60,
}


@dataclass(frozen=True)
class Health:
    database: bool
    worker_seen: bool | None = None  # None: not asked, the database being down
    interval_minutes: int | None = None
    scheduled_albums: int = 0
    overdue_albums: int = 0
    # Scheduled albums by the outcome of their last real sync (Album.last_sync_status, what
    # the admin shows).
    partial_albums: int = 0
    failed_albums: int = 0
    # The scheduled album that has waited longest: when a sync of it last went through (None
    # if none ever did).
    oldest_last_sync: datetime | None = None

    @property
    def overdue(self) -> bool:
        return self.overdue_albums > 0

    @property
    def status(self) -> str:
        if not self.database or self.overdue:
            return FAILING
        if self.partial_albums or self.failed_albums or not self.worker_seen:
            return DEGRADED
        return OK

    def problems(self) -> list[str]:
        """What is wrong, worst first, in words that name no album."""
        if not self.database:
            return [DATABASE_DOWN]
        problems = []
        if self.overdue:
            minutes = OVERDUE_INTERVALS * self.interval_minutes
            problems.append(OVERDUE.format(count=self.overdue_albums, minutes=minutes))
        if self.failed_albums:
            problems.append(LAST_SYNC_FAILED.format(count=self.failed_albums))
        if self.partial_albums:
            problems.append(LAST_SYNC_PARTIAL.format(count=self.partial_albums))
        if not self.worker_seen:
            problems.append(NO_WORKER)
        return problems

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            **asdict(self),
            "overdue": self.overdue,
            "problems": self.problems(),
        }


def database_answers() -> bool:
    """One `SELECT 1`. Never raises for a database that is down: that is the answer."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        # Not logged with its text: a driver's message may name the host and the user.
        logger.warning("Health check: %s", DATABASE_DOWN)
        return False
    return True


def check_health(*, now: datetime | None = None) -> Health:
    """The site's health, in a fixed number of queries whatever the number of albums."""
    now = now or timezone.now()
    if not database_answers():
        return Health(database=False)
    minutes = schedule_interval_minutes()
    last_sync = (
        SyncRun.objects.filter(
            album=OuterRef("pk"), kind=SyncRun.Kind.SYNC, dry_run=False, status__in=WENT_THROUGH
        )
        .order_by("-id")
        .values("finished_at")[:1]
    )
    albums = Album.objects.filter(sync_on_schedule=True).annotate(
        last_sync=Subquery(last_sync),
        # An album never synced is measured from its creation.
        since=Coalesce(Subquery(last_sync), "created_at"),
    )
    limit = now - timedelta(minutes=OVERDUE_INTERVALS * minutes)
    counts = albums.aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=Q(since__lt=limit)),
        partial=Count("pk", filter=Q(last_sync_status=SyncStatus.PARTIAL)),
        failed=Count("pk", filter=Q(last_sync_status=SyncStatus.FAILED)),
    )
    oldest = albums.order_by("since").values("last_sync").first()
    return Health(
        database=True,
        worker_seen=worker_seen(),
        interval_minutes=minutes,
        scheduled_albums=counts["total"],
        overdue_albums=counts["overdue"],
        partial_albums=counts["partial"],
        failed_albums=counts["failed"],
        oldest_last_sync=oldest["last_sync"] if oldest else None,
    )


def schedule_interval_minutes() -> int:
    """The sync schedule's period as it is in the database (it may have been edited in the
    admin), or ALBUMS_SYNC_INTERVAL_MINUTES when there is none or it has no fixed period."""
    schedule = Schedule.objects.filter(name=SCHEDULE_NAME).first()
    if schedule is not None:
        if schedule.schedule_type == Schedule.MINUTES and schedule.minutes:
            return schedule.minutes
        if schedule.schedule_type in PERIOD_MINUTES:
            return PERIOD_MINUTES[schedule.schedule_type]
    return conf.sync_interval_minutes()


View = Callable[[HttpRequest], JsonResponse]


def _get_only(view: View) -> View:
    """GET and HEAD, no login; any other method gets a 405 rather than a CSRF failure."""

    @csrf_exempt
    @never_cache
    @wraps(view)
    def wrapped(request: HttpRequest) -> JsonResponse:
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"error": METHOD_NOT_ALLOWED}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return wrapped


@_get_only
def health(request: HttpRequest) -> JsonResponse:
    """GET /api/health/: "ok" or "degraded" with 200, "failing" with 503 (the database is
    down, or albums synced on schedule are overdue); JSON either way."""
    result = check_health()
    return JsonResponse(result.as_dict(), status=503 if result.status == FAILING else 200)


@_get_only
def live(request: HttpRequest) -> JsonResponse:
    """GET /api/health/live/: 200 when the process and its database answer, else 503. One
    query, whatever the albums and the workers are doing."""
    if database_answers():
        return JsonResponse({"status": OK, "database": True, "problems": []})
    return JsonResponse(
        {"status": FAILING, "database": False, "problems": [DATABASE_DOWN]}, status=503
    )
