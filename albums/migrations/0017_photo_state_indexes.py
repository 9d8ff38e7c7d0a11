"""The photo list's state filters at a million photos (issue 28, bench/admin_scale.py).

Partial indexes that hold just the photos each filter shows, in the list's order (album,
path), on both databases, as 0013's for the photos without renditions: "excluded by a
pattern", "found already in the bucket" and "uploaded by photosite". Without them a filter
whose photos are few (the excluded ones; the found ones in a library photosite uploaded,
the uploaded ones in a library moved from another tool) read every photo to find them, for
its count and again for its dates. The found and uploaded ones also hold the id on
PostgreSQL (INCLUDE; SQLite ignores it), so that a count or a deep page reads the index only.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('albums', '0016_departed_photos_and_untracked_objects'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(condition=models.Q(('excluded_at__isnull', False)), fields=['album', 'path'], name='photo_excluded_idx'),
        ),
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(condition=models.Q(('uploaded_at__isnull', True)), fields=['album', 'path'], include=('id',), name='photo_found_idx'),
        ),
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(condition=models.Q(('uploaded_at__isnull', False)), fields=['album', 'path'], include=('id',), name='photo_uploaded_idx'),
        ),
    ]
