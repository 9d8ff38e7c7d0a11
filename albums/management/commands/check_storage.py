import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from albums.storage.diagnostics import Status, diagnose_storage


class Command(BaseCommand):
    help = (
        "Check the photos storage: endpoint, credentials, bucket and the permissions a sync "
        "needs, with how to fix what fails. Writes and deletes one small probe object."
    )

    @property
    def _styles(self):
        return {
            Status.OK: self.style.SUCCESS,
            Status.FAILED: self.style.ERROR,
            Status.SKIPPED: self.style.WARNING,
        }

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the diagnosis as JSON.")

    def handle(self, *args, **options):
        try:
            diagnosis = diagnose_storage()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(diagnosis.as_dict()))
        else:
            for check in diagnosis.checks:
                self.stdout.write(check.line(), self._styles[check.status])
        if not diagnosis.ok:
            raise CommandError(diagnosis.summary())
        if not options["json"]:
            self.stdout.write(diagnosis.summary())
