from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "webapp.runs"
    label = "runs"
    verbose_name = "Runs (search and retraining)"

    def ready(self):
        from . import signals  # noqa: F401  (worker_ready: re-queue orphaned runs)

