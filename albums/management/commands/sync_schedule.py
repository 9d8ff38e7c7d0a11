from django.core.management.base import BaseCommand

from albums.schedule import ensure_sync_schedule

CREATED = (
    "Created schedule {name!r}: every {minutes} minutes, next run {next_run:%Y-%m-%d %H:%M %Z}."
)
EXISTS = "Schedule {name!r} exists: every {minutes} minutes, next run {next_run:%Y-%m-%d %H:%M %Z}."


class Command(BaseCommand):
    help = (
        "Create the schedule that syncs albums marked 'sync on schedule' (migrate does it "
        "too); running it again changes nothing unless --reset."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Set an existing schedule back to every ALBUMS_SYNC_INTERVAL_MINUTES.",
        )

    def handle(self, **options):
        schedule, created = ensure_sync_schedule(reset=options["reset"])
        text = CREATED if created else EXISTS
        self.stdout.write(
            text.format(name=schedule.name, minutes=schedule.minutes, next_run=schedule.next_run)
        )
