"""Page routes of webapp.comparisons (namespace ``comparisons``)."""
from django.urls import path

from . import views

app_name = "comparisons"

urlpatterns = [
    path("projects/<int:project_pk>/compare/", views.workspace, name="workspace"),
    path("projects/<int:project_pk>/compare/<str:table>.csv", views.workspace_csv, name="csv"),
    path("datasets/<int:dataset_pk>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("datasets/<int:dataset_pk>/leaderboard.csv", views.leaderboard_csv, name="leaderboard-csv"),
]
