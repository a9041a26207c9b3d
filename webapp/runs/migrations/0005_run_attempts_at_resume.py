from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_run_controls_requested'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='attempts_at_resume',
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
