"""Photo paths sort in binary order on PostgreSQL, as they do on SQLite.

A sync walks the album folder, the photo rows and the bucket listing side by side in path
order (albums.sync.merge), and S3 lists keys in UTF-8 byte order. SQLite compares text that
way already (its BINARY collation); PostgreSQL compares by the database's locale, where
"B.jpg" may come after "a.jpg". The "C" collation compares bytes, and the index of the
(album, path) constraint, which serves the sync's ordered reads, is rebuilt with it.

Django's field has no db_collation for this because the collation's name differs by
database ("C" here, "BINARY" on SQLite); an AlterField of Photo.path in a later migration
must add this collation back (tests/services/test_sync_order.py checks it).
"""

from django.db import migrations


def binary_order(apps, schema_editor, collation='"C"'):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("albums", "Photo")._meta.db_table)
    schema_editor.execute(
        f"ALTER TABLE {table} ALTER COLUMN path TYPE varchar(1024) COLLATE {collation}"
    )


def locale_order(apps, schema_editor):
    binary_order(apps, schema_editor, collation='"default"')


class Migration(migrations.Migration):
    dependencies = [("albums", "0004_syncrun_diagnosis")]

    operations = [migrations.RunPython(binary_order, locale_order, elidable=False)]
