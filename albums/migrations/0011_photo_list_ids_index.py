"""The photo list's deep pages on PostgreSQL (issue 16, bench/admin_scale.py).

The admin lists photos by (album, path), and a page far down the list reads the ids of its
rows first, walking past every row before it (albums.admin_scale.EstimatedCountPaginator).
The (album, path) index of the unique constraint has no id, so that walk visits the table
for each row: about 0.5 s to reach the last of a million photos. This index carries the id
(INCLUDE), so the walk is an index-only scan, a few times faster.

An index-only scan skips the table only for the pages that the visibility map marks as
all-visible; autovacuum keeps that map up to date (a sync that rewrites many photos leaves
the scan visiting the table for them until it has run). The column's "C" collation
(migration 0005) is the index's, as the list's ORDER BY needs.

SQLite needs nothing: its (album, path) index holds the rowid, which is the id.
"""

from django.db import migrations

INDEX = "photo_album_path_id_idx"


def add_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("albums", "Photo")._meta.db_table)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} (album_id, path) INCLUDE (id)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("albums", "0010_album_failure_streak")]

    operations = [migrations.RunPython(add_index, drop_index, elidable=False)]
