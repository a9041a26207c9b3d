"""Page routes of webapp.evaluations (namespace ``evaluations``)."""
from django.urls import path

from . import views

app_name = "evaluations"

urlpatterns = [
    path("models/<int:pk>/evaluation.csv", views.evaluation_csv, name="csv"),
    path("models/<int:pk>/evaluation/retry/", views.evaluation_retry, name="retry"),
    path("models/<int:pk>/controls/", views.controls_launch, name="controls"),
    path("models/<int:pk>/folds/", views.folds_launch, name="folds"),
]
