"""GET /api/health/: is this site working? For a monitor or a load balancer (issue 16).

No login: the answer says only whether the database answers, whether a worker was seen and
how long ago the scheduled albums last synced successfully. It names no album, path, host,
setting or error text, so it shows nothing an anonymous caller should not see.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

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

OVERDUE_INTERVALS = 2  # a scheduled album is overdue after this many intervals without success
DATABASE_DOWN = "The database does not answer."
OVERDUE = (
    "{count} album(s) synced on schedule have not synced successfully for more than "
    "{minutes} minutes (two intervals)."
)
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
    # The scheduled album that has waited longest: its last success (None if it never had
    # one) and whether it is overdue.
    oldest_last_success: datetime | None = None
    overdue: bool = False

    @property
    def ok(self) -> bool:
        return self.database and not self.overdue

    def problems(self) -> list[str]:
        if not self.database:
            return [DATABASE_DOWN]
        if self.overdue:
            minutes = OVERDUE_INTERVALS * self.interval_minutes
            return [OVERDUE.format(count=self.overdue_albums, minutes=minutes)]
        return []

    def as_dict(self) -> dict:
        data = asdict(self)
        return {"status": "ok" if self.ok else "failing", **data, "problems": self.problems()}


def check_health(*, now: datetime | None = None) -> Health:
    """The site's health. Never raises for a database that is down: that is the answer."""
    now = now or timezone.now()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        # Not logged with its text: a driver's message may name the host and the user.
        logger.warning("Health check: %s", DATABASE_DOWN)
        return Health(database=False)
    minutes = schedule_interval_minutes()
    last_success = (
        SyncRun.objects.filter(album=OuterRef("pk"), dry_run=False, status=SyncStatus.SUCCESS)
        .order_by("-id")
        .values("finished_at")[:1]
    )
    albums = Album.objects.filter(sync_on_schedule=True).annotate(
        last_success=Subquery(last_success),
        # An album never synced is measured from its creation.
        since=Coalesce(Subquery(last_success), "created_at"),
    )
    limit = now - timedelta(minutes=OVERDUE_INTERVALS * minutes)
    counts = albums.aggregate(total=Count("pk"), overdue=Count("pk", filter=Q(since__lt=limit)))
    oldest = albums.order_by("since").values("last_success", "since").first()
    return Health(
        database=True,
        worker_seen=worker_seen(),
        interval_minutes=minutes,
        scheduled_albums=counts["total"],
        overdue_albums=counts["overdue"],
        oldest_last_success=oldest["last_success"] if oldest else None,
        overdue=oldest is not None and oldest["since"] < limit,
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


@csrf_exempt  # GET only; other methods get a 405 rather than a CSRF failure
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """GET /api/health/: 200 when healthy, 503 when the database is down or an album
    synced on schedule is overdue; JSON either way. No login needed."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": METHOD_NOT_ALLOWED}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    result = check_health()
    return JsonResponse(result.as_dict(), status=200 if result.ok else 503)
