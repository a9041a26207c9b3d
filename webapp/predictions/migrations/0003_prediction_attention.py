"""Attention maps of a prediction (DAST models): what was asked for and what was written."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("predictions", "0002_prediction_job_base"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="attention_request",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="prediction",
            name="attention_maps",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
