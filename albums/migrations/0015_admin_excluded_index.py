"""The admin's "excluded by a pattern" photos at a million photos (issue 28,
bench/admin_scale.py): a partial index that holds just them, in the list's order, on both
databases (as 0013's for the photos without renditions). Without it the filter read every
photo to find a few thousand.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('albums', '0014_site'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='photo',
            index=models.Index(condition=models.Q(('excluded_at__isnull', False)), fields=['album', 'path'], name='photo_excluded_idx'),
        ),
    ]
