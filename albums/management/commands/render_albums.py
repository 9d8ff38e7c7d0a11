"""`render_albums`: the web renditions of photos that have none, for a library synced before
renditions existed (or with other settings). A sync of each album that renders every photo
lacking them; as any sync, it also sends what changed on disk."""

from django.core.management.base import CommandError

from albums import conf

from .sync_albums import Command as SyncCommand
from .sync_albums import positive_int

RENDITIONS_OFF = "ALBUMS_RENDITIONS is off: turn it on to make web renditions."
FORCE_OR_MISSING = "--force renders every photo, --missing only those without renditions: not both."
FORCE_NOT_QUEUED = "--force runs here only; --async queues a run that renders what is missing."


class Command(SyncCommand):
    help = (
        "Make the web renditions of every photo that lacks them (with --force, of every "
        "photo), while syncing the albums."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "slugs", nargs="*", metavar="SLUG", help="Albums to render (default: all)."
        )
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Only photos without renditions of the current settings (the default).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Render every photo again, even where the bucket has its renditions.",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            help="Threads reading, rendering and uploading (default ALBUMS_SYNC_WORKERS).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object per album instead of a summary line.",
        )
        parser.add_argument(
            "--async",
            action="store_true",
            dest="queue",
            help="Queue the runs for the qcluster worker and print their ids instead.",
        )
        parser.set_defaults(
            discover=False,
            dry_run=False,
            prune=False,
            prune_excluded=False,
            batch_size=None,
            max_delete=None,
            alert=False,
        )

    def handle(self, *args, **options):
        if options["force"] and options["missing"]:
            raise CommandError(FORCE_OR_MISSING)
        if options["force"] and options["queue"]:
            raise CommandError(FORCE_NOT_QUEUED)
        if not conf.renditions_enabled():
            raise CommandError(RENDITIONS_OFF)
        super().handle(*args, **options)

    def run_options(self) -> dict:
        return {"render_all": True, "force_render": self.options["force"]}

    def queue_options(self) -> dict:
        return {"render_all": True}
