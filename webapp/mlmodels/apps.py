from django.apps import AppConfig


class MlModelsConfig(AppConfig):
    name = "webapp.mlmodels"
    label = "mlmodels"
    verbose_name = "Trained models"
