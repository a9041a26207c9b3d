"""REST routes of webapp.comparisons, included under /api/ (names in the ``api`` namespace)."""
from django.urls import path

from . import apis

urlpatterns: list = [
    path("projects/<int:pk>/comparison/", apis.ComparisonApi.as_view(), name="project-comparison"),
    path("datasets/<int:pk>/leaderboard/", apis.LeaderboardApi.as_view(), name="dataset-leaderboard"),
]
