"""Runs get a folder of their own (``storage_key``), event types may be namespaced.

``storage_key`` is added without a default first, so every existing run keeps NULL and with it
its current folder ``runs/<id>/`` (no files move); only runs created afterwards get a UUID (an
``AddField`` with a callable default would give every existing row the same value). The other
changes keep their columns: ``project`` comes from the abstract ``Job`` model (same column,
only the reverse name is spelt as a pattern) and ``RunEvent.type`` widens to 80 characters for
``<method>.<name>`` types.
"""
import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0001_initial'),
        ('runs', '0002_run_requeued_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='storage_key',
            field=models.UUIDField(editable=False, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='run',
            name='storage_key',
            field=models.UUIDField(default=uuid.uuid4, editable=False, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='run',
            name='project',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='projects.project'),
        ),
        migrations.AlterField(
            model_name='runevent',
            name='type',
            field=models.CharField(max_length=80),
        ),
    ]
