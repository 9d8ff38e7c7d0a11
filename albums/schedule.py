"""The django-q2 schedule that syncs the albums marked "sync on schedule"."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django_q.models import Schedule

from . import conf

SCHEDULE_NAME = "photosite: sync scheduled albums"
SCHEDULE_FUNC = "albums.tasks.sync_due_albums"


def ensure_sync_schedule(
    *, reset: bool = False, using: str = DEFAULT_DB_ALIAS
) -> tuple[Schedule, bool]:
    """The schedule and whether it was created. Idempotent: found by name, never doubled.

    An existing schedule is left as it is (it may have been edited in the admin) unless
    `reset`, which sets its function and interval back to ALBUMS_SYNC_INTERVAL_MINUTES.
    """
    minutes = conf.sync_interval_minutes()
    schedule, created = Schedule.objects.using(using).get_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": SCHEDULE_FUNC,
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )
    if reset and not created:
        schedule.func, schedule.schedule_type, schedule.minutes = (
            SCHEDULE_FUNC, Schedule.MINUTES, minutes,
        )  # fmt: skip
        schedule.repeats = -1
        schedule.save(using=using)
    return schedule, created


def create_schedule_after_migrate(sender, using=DEFAULT_DB_ALIAS, plan=None, **kwargs):
    """post_migrate handler: `migrate` leaves exactly one schedule, however often it runs."""
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated yet (e.g. `migrate albums`)
    ensure_sync_schedule(using=using)
