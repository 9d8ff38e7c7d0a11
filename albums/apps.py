import sqlite3

from django.apps import AppConfig
from django.core.management import call_command
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def configure_sqlite(sender, connection, **kwargs):
    """Tune each new SQLite connection for a sync writing while the admin reads."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        # WAL lets readers (the admin, a worker) go on while a sync writes the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    # Django 5.2 assumes SQLite's old limit of 999 parameters per query, which splits a
    # 500-photo bulk insert into seven; use the library's real limit (32,766 since SQLite
    # 3.32), as Django 6.0 does (ticket #36143). Bulk writes pass their own batch size.
    connection.features.max_query_params = connection.connection.getlimit(
        sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    )


def create_cache_tables(sender, using=DEFAULT_DB_ALIAS, verbosity=1, **kwargs):
    """post_migrate: the tables of the database caches in CACHES, the workers' heartbeat
    among them (settings.CACHES["django_q"]). `migrate` makes them, so nobody has to
    remember `createcachetable`; an existing table is left alone.
    """
    call_command("createcachetable", database=using, verbosity=max(verbosity - 1, 0))


def forget_clients_when_storage_changes(setting, **kwargs):
    """setting_changed (tests): the S3 clients shared by a process are made from STORAGES."""
    if setting == "STORAGES":
        from .storage import forget_clients

        forget_clients()


class AlbumsConfig(AppConfig):
    name = "albums"
    verbose_name = "Albums"

    def ready(self):
        from .alerts import on_streak_counted
        from .memory import limit_malloc_arenas
        from .schedule import create_schedule_after_migrate
        from .sync.records.runs import streak_counted

        limit_malloc_arenas()  # before any sync starts its threads
        connection_created.connect(configure_sqlite, dispatch_uid="albums_configure_sqlite")
        setting_changed.connect(
            forget_clients_when_storage_changes, dispatch_uid="albums_forget_clients"
        )
        post_migrate.connect(
            create_schedule_after_migrate, sender=self, dispatch_uid="albums_sync_schedule"
        )
        post_migrate.connect(
            create_cache_tables, sender=self, dispatch_uid="albums_create_cache_tables"
        )
        # The sync layer counts a background sync's streak of failures; the email is ours.
        streak_counted.connect(on_streak_counted, dispatch_uid="albums_alerts")
