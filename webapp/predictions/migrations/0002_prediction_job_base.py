"""Predictions derive from the abstract ``Job`` model: the same columns; only the reverse name
of ``project`` is spelt as a pattern (``%(class)ss`` = ``predictions``), a change of state only."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('predictions', '0001_initial'),
        ('projects', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='prediction',
            name='project',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='projects.project'),
        ),
    ]
