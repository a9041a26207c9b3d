from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "webapp.evaluations"
    label = "evaluations"
    verbose_name = "Evaluations"

    def ready(self):
        from . import signals

        signals.connect()  # post_save of a registered model: queue its evaluation
