import argparse
import json
import logging
import sys
import time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from albums import conf
from albums.exceptions import QueueUnavailable, SyncError
from albums.models import Album, SyncRun
from albums.sync import (
    INTERRUPTED,
    AlbumOutcome,
    SyncResult,
    queue_sync,
    select_albums,
    sync_albums,
    worker_seen,
)

MAX_DELETE_WITHOUT_PRUNE = (
    "--max-delete limits --prune and --prune-excluded; use it with one of them."
)
DATABASE_ERROR = "Database error: {error}. Check DATABASE_URL and run 'python manage.py migrate'."
SOME_FAILED = "{failed} of {total} albums did not sync cleanly."
QUEUED = "{album}: queued as run {run_id}"
ASYNC_WITH_RUN_OPTIONS = "--async runs use the settings: --batch-size, --workers, --max-delete and --prune-excluded apply only to a sync run here."
NO_WORKER = "No worker has been seen recently: the runs wait until `manage.py qcluster` runs."
LOG_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


class Command(BaseCommand):
    # System checks (and the URLs and admin they load) are run by migrate and the web
    # server; skipping them here makes every run start sooner.
    requires_system_checks = []
    help = (
        "Sync album folders with the bucket: upload what is missing or changed, record everything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "slugs", nargs="*", metavar="SLUG", help="Albums to sync (default: all)."
        )
        parser.add_argument(
            "--discover",
            action="store_true",
            help="First create an album for every top-level folder of PHOTOS_ROOT that has none.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be done; change nothing."
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete from the bucket the photos gone from disk, and the objects under "
            "the album's prefix with neither a file nor a record (untracked).",
        )
        parser.add_argument(
            "--prune-excluded",
            action="store_true",
            help="Delete from the bucket the recorded photos an exclusion now covers "
            "(built-in clutter, ALBUMS_EXCLUDE, .photosite-ignore), and forget them.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            help="Requests in flight when the run starts; it finds its own number from there "
            "(default ALBUMS_SYNC_BATCH_SIZE).",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            help="The most requests in flight: threads checking and uploading "
            "(default ALBUMS_SYNC_WORKERS).",
        )
        parser.add_argument(
            "--max-delete",
            type=positive_int,
            help="With --prune or --prune-excluded, refuse to delete more objects than this "
            "(default ALBUMS_MAX_DELETE).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object per album instead of a summary line.",
        )
        parser.add_argument(
            "--alert",
            action="store_true",
            help="Nobody watches this run (cron): email the admins when an album's syncs start "
            "failing and when they recover, as for the schedule's runs.",
        )
        parser.add_argument(
            "--async",
            action="store_true",
            dest="queue",
            help="Queue the runs for the qcluster worker and print their ids instead of syncing here.",
        )

    def handle(self, *args, **options):
        self.options = options
        if options["max_delete"] and not (options["prune"] or options["prune_excluded"]):
            raise CommandError(MAX_DELETE_WITHOUT_PRUNE)
        if options["queue"] and any(
            options[name] for name in ("batch_size", "workers", "max_delete", "prune_excluded")
        ):
            raise CommandError(ASYNC_WITH_RUN_OPTIONS)
        try:
            self._check_settings()
            albums = self._albums(options["slugs"], discover=options["discover"])
            if options["queue"]:
                self._queue(albums)
                return
            failed = sum(not self._report(outcome) for outcome in self._sync(albums))
        except DatabaseError as exc:
            raise CommandError(DATABASE_ERROR.format(error=str(exc).strip())) from exc
        except KeyboardInterrupt:
            self._end_progress()
            raise CommandError(INTERRUPTED, returncode=130) from None
        if failed:
            raise CommandError(SOME_FAILED.format(failed=failed, total=len(albums)))

    def run_options(self) -> dict:
        """More options of the service's runs, for a command built on this one."""
        return {}

    def queue_options(self) -> dict:
        return {}

    def _check_settings(self) -> None:
        """Bad environment values stop the command once, before any album starts."""
        try:
            conf.batch_size(), conf.workers(), conf.key_prefix(), conf.photo_extensions()
            conf.settle_seconds(), conf.max_delete(), conf.lease_seconds()
            conf.exclude_patterns()
            if conf.renditions_enabled():
                conf.rendition_sizes(), conf.rendition_quality(), conf.renditions_per_run()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def _albums(self, slugs, *, discover: bool) -> list[Album]:
        try:
            albums, discovered = select_albums(slugs, discover=discover)
        except SyncError as exc:
            raise CommandError(str(exc)) from exc
        for album in discovered:
            self._say(f"Discovered album {album.name!r} ({album.slug}).")
        return albums

    def _queue(self, albums: list[Album]) -> None:
        for album in albums:
            try:
                run = queue_sync(
                    album=album,
                    trigger=SyncRun.Trigger.COMMAND,
                    dry_run=self.options["dry_run"],
                    prune=self.options["prune"],
                    **self.queue_options(),
                )
            except QueueUnavailable as exc:
                raise CommandError(str(exc)) from exc
            if self.options["json"]:
                self.stdout.write(json.dumps({"album": run.album.slug, "run_id": run.pk}))
            else:
                self._say(QUEUED.format(album=run.album.slug, run_id=run.pk))
        if not worker_seen():
            self.stderr.write(NO_WORKER)

    def _sync(self, albums: list[Album]):
        """Each album's outcome as it is synced, with the terminal showing what -v asks for."""
        logger = logging.getLogger("albums")
        level = logger.level
        logger.setLevel(LOG_LEVELS.get(self.options["verbosity"], logging.DEBUG))
        try:
            for outcome in sync_albums(
                albums,
                dry_run=self.options["dry_run"],
                prune=self.options["prune"],
                prune_excluded=self.options["prune_excluded"],
                batch_size=self.options["batch_size"],
                workers=self.options["workers"],
                max_delete=self.options["max_delete"],
                trigger=SyncRun.Trigger.UNATTENDED
                if self.options["alert"]
                else SyncRun.Trigger.COMMAND,
                progress=self._progress_line if self._interactive() else lambda album: None,
                **self.run_options(),
            ):
                self._end_progress()
                yield outcome
        finally:
            logger.setLevel(level)

    def _report(self, outcome: AlbumOutcome) -> bool:
        """Say how one album went; True if it synced cleanly."""
        if outcome.error is not None:
            self._report_failure(outcome.album, outcome.error, outcome.result)
        else:
            self._report_result(outcome.result)
        return outcome.ok

    def _report_result(self, result: SyncResult) -> None:
        if self.options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
            return
        style = self.style.SUCCESS if result.ok else self.style.WARNING
        self._say(result.summary(), style)
        for failure in result.failures[:20]:
            self._say(f"  failed: {failure.path}: {failure.error}", self.style.WARNING, level=1)
        if result.failed > 20:
            self._say(
                f"  ... and {result.failed - 20} more failures (see the run in the admin)", level=1
            )

    def _report_failure(self, album: Album, exc: Exception, result: SyncResult | None) -> None:
        if self.options["json"]:
            data = result.as_dict() if result else {"album": album.slug, "status": "failed"}
            data["message"] = str(exc)
            self.stdout.write(json.dumps(data))
        self.stderr.write(f"{album.slug}: {exc}")

    def _say(self, text: str, style=None, *, level: int = 1) -> None:
        if self.options["verbosity"] >= level and not self.options["json"]:
            self.stdout.write(text, style)

    # Progress on a terminal: one line, rewritten in place, at most ten times a second.

    def _interactive(self) -> bool:
        return self.options["verbosity"] >= 1 and sys.stderr.isatty()

    def _progress_line(self, album: Album):
        last = 0.0

        def show(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1 or done == total:
                last = now
                sys.stderr.write(f"\r{album.slug}: {done}/{total} files")
                sys.stderr.flush()
                self._progress_shown = True

        return show

    def _end_progress(self) -> None:
        if getattr(self, "_progress_shown", False):
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._progress_shown = False
