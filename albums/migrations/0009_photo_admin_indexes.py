"""Indexes for the admin at a million photos (issue 16, bench/admin_scale.py).

The admin's filters and date drill-down get B-tree indexes on both databases. On PostgreSQL,
searches for a file name (`path`/`key` icontains, which Django writes as
UPPER(col::text) LIKE UPPER('%…%')) get trigram GIN indexes on those very expressions, from
the pg_trgm extension (a trusted extension since PostgreSQL 13: the database's owner may
create it). Without the permission to create it, the migration says so and goes on: searches
then still work, only slower.
"""

from django.db import migrations, models, transaction

TRIGRAM_INDEXES = {
    "photo_path_trgm_idx": "path",
    "photo_key_trgm_idx": "key",
}


def add_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("albums", "Photo")._meta.db_table)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # permission denied, or the contrib package not installed
        print(
            f"\n  Could not create the pg_trgm extension ({exc.__class__.__name__}): admin "
            "searches for a file name will read every photo. A superuser can run "
            "'CREATE EXTENSION pg_trgm' in this database, then 'migrate albums 0008' and "
            "'migrate' again."
        )
        return
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin ((UPPER({schema_editor.quote_name(column)}::text)) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('albums', '0008_excluded_photos'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(fields=['album', 'verified_at'], name='photo_album_verified_idx'),
        ),
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(fields=['taken_at'], name='photo_taken_at_idx'),
        ),
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(fields=['album', 'taken_at'], name='photo_album_taken_at_idx'),
        ),
        migrations.AddIndex(
            model_name='syncrun',
            index=models.Index(fields=['started_at'], name='syncrun_started_at_idx'),
        ),
        migrations.RunPython(add_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
