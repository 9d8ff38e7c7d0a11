import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from albums.exceptions import SyncError
from albums.sync import RestoreResult, restore_album, restore_from_bucket, select_albums

FROM_BUCKET_NEEDS = "--from-bucket restores one album: give one SLUG and --folder (the folder to make under PHOTOS_ROOT)."
FOLDER_NEEDS_FROM_BUCKET = "--folder names the folder of an album made with --from-bucket."
FROM_BUCKET_OPTIONS = "--from-bucket restores everything into the album's new folder: --to, --dry-run and --overwrite do not apply."
SOME_NOT_RESTORED = "{count} of {total} albums were not restored whole; see above."
DATABASE_ERROR = "Database error: {error}. Check DATABASE_URL and run 'python manage.py migrate'."
SHOWN = 50


class Command(BaseCommand):
    # System checks (and the URLs and admin they load) are run by migrate and the web
    # server; skipping them here makes every run start sooner.
    requires_system_checks = []
    help = (
        "Bring back the recorded photos of albums that are missing from their folders (or "
        "from --to DIR), downloaded from the bucket and checked against what was uploaded. "
        "Never deletes anything."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="+", metavar="SLUG", help="Albums to restore.")
        parser.add_argument(
            "--to",
            type=Path,
            metavar="DIR",
            help="Restore into DIR instead of the album's folder (with several albums, "
            "into DIR/<album folder>).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be restored.")
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="A file that is not as recorded is moved aside as name.local-<date>.ext "
            "and the recorded one restored (never deleted).",
        )
        parser.add_argument(
            "--from-bucket",
            action="store_true",
            help="The database is gone: make the album from the bucket's objects under its "
            "prefix and restore them all (with --folder).",
        )
        parser.add_argument("--folder", help="With --from-bucket: the album's folder.")
        parser.add_argument("--json", action="store_true", help="One JSON object per album.")

    def handle(self, *args, slugs, **options):
        self.json = options["json"]
        self._check(slugs, options)
        try:
            if options["from_bucket"]:
                ok = self._report(
                    slugs[0], lambda: restore_from_bucket(slug=slugs[0], folder=options["folder"])
                )
                failed = int(not ok)
            else:
                albums, _ = select_albums(slugs)
                failed = sum(
                    not self._restore(album, options, several=len(albums) > 1) for album in albums
                )
        except (SyncError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(DATABASE_ERROR.format(error=str(exc).strip())) from exc
        if failed:
            raise CommandError(SOME_NOT_RESTORED.format(count=failed, total=len(slugs)))

    def _check(self, slugs, options) -> None:
        if options["from_bucket"]:
            if len(slugs) != 1 or not options["folder"]:
                raise CommandError(FROM_BUCKET_NEEDS)
            if options["to"] or options["dry_run"] or options["overwrite"]:
                raise CommandError(FROM_BUCKET_OPTIONS)
        elif options["folder"]:
            raise CommandError(FOLDER_NEEDS_FROM_BUCKET)

    def _restore(self, album, options, *, several: bool) -> bool:
        to = options["to"]
        if to is not None and several:
            to = to / album.folder
        return self._report(
            album.slug,
            lambda: restore_album(
                album=album, to=to, dry_run=options["dry_run"], overwrite=options["overwrite"]
            ),
        )

    def _report(self, slug: str, restore) -> bool:
        """Run `restore` and say how it went; True when every photo is back."""
        try:
            result: RestoreResult = restore()
        except SyncError as exc:
            if self.json:
                self.stdout.write(
                    json.dumps({"album": slug, "status": "failed", "message": str(exc)})
                )
            self.stderr.write(f"{slug}: {exc}")
            return False
        if self.json:
            self.stdout.write(json.dumps(result.as_dict()))
            return result.ok
        self.stdout.write(result.summary(), self.style.SUCCESS if result.ok else self.style.WARNING)
        for item in [*result.problems, *result.failures][:SHOWN]:
            self.stdout.write(f"  {item.path}: {item.error}")
        hidden = len(result.problems) + len(result.failures) - SHOWN
        if hidden > 0:
            self.stdout.write(f"  ... and {hidden} more (see the run in the admin)")
        return result.ok
