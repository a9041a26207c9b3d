"""REST routes of webapp.evaluations, included under /api/ (names in the ``api`` namespace)."""
from django.urls import path

from . import apis

urlpatterns: list = [
    path("models/<int:pk>/evaluation/", apis.ModelEvaluationApi.as_view(), name="model-evaluation"),
]
