from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def enable_sqlite_wal(sender, connection, **kwargs):
    """WAL lets readers (the admin) go on while a sync writes the SQLite file."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Albums"

    def ready(self):
        from .schedule import create_schedule_after_migrate

        connection_created.connect(enable_sqlite_wal, dispatch_uid="albums_sqlite_wal")
        post_migrate.connect(
            create_schedule_after_migrate, sender=self, dispatch_uid="albums_sync_schedule"
        )
