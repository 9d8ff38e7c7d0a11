import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from albums.exceptions import SyncError
from albums.sync import VerifyResult, select_albums, verify_album

SOME_NOT_SOUND = "{count} of {total} albums are not sound; see above."
DATABASE_ERROR = "Database error: {error}. Check DATABASE_URL and run 'python manage.py migrate'."
SHOWN = 50  # problems listed per album; the run in the admin has them all


class Command(BaseCommand):
    # System checks (and the URLs and admin they load) are run by migrate and the web
    # server; skipping them here makes every run start sooner.
    requires_system_checks = []
    help = (
        "Check that the backup is sound: read and hash every recorded photo and compare the "
        "file, its record and its copy in the bucket. Exits 1 when anything does not match."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="Albums (default: all).")
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Upload again a bucket copy that is missing or differs, from a file that "
            "still matches its record.",
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per album.")

    def handle(self, *args, slugs, repair, **options):
        self.json = options["json"]
        try:
            albums, _ = select_albums(slugs)
            unsound = sum(not self._verify(album, repair=repair) for album in albums)
        except (SyncError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(DATABASE_ERROR.format(error=str(exc).strip())) from exc
        if unsound:
            raise CommandError(SOME_NOT_SOUND.format(count=unsound, total=len(albums)))

    def _verify(self, album, *, repair: bool) -> bool:
        """Verify one album and say how it went; True when it is sound (or was repaired)."""
        try:
            result = verify_album(album=album, repair=repair)
        except SyncError as exc:
            if self.json:
                self.stdout.write(
                    json.dumps({"album": album.slug, "status": "failed", "message": str(exc)})
                )
            self.stderr.write(f"{album.slug}: {exc}")
            return False
        self._report(result)
        return result.ok

    def _report(self, result: VerifyResult) -> None:
        if self.json:
            self.stdout.write(json.dumps(result.as_dict()))
            return
        self.stdout.write(result.summary(), self.style.SUCCESS if result.ok else self.style.WARNING)
        for item in [*result.problems, *result.failures][:SHOWN]:
            self.stdout.write(f"  {item.path}: {item.error}")
        hidden = len(result.problems) + len(result.failures) - SHOWN
        if hidden > 0:
            self.stdout.write(f"  ... and {hidden} more (see the run in the admin)")
