"""REST API routes (namespace ``api``). Issue 4 adds runs, models and predictions here."""
from django.urls import path

from webapp.accounts.apis import TokenApi
from webapp.datasets import apis as datasets
from webapp.projects import apis as projects

app_name = "api"

urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="token"),
    path("projects/", projects.ProjectListApi.as_view(), name="projects"),
    path("projects/<int:pk>/", projects.ProjectDetailApi.as_view(), name="project"),
    path("projects/<int:pk>/members/", projects.MemberListApi.as_view(), name="members"),
    path("projects/<int:pk>/members/<int:membership_pk>/", projects.MemberDetailApi.as_view(), name="member"),
    path("projects/<int:pk>/datasets/", datasets.ProjectDatasetsApi.as_view(), name="project-datasets"),
    path("datasets/<int:pk>/", datasets.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<int:pk>/cases/", datasets.CaseListApi.as_view(), name="dataset-cases"),
    path("datasets/<int:pk>/cases/<int:case_pk>/", datasets.CaseDetailApi.as_view(), name="case"),
    path("datasets/<int:pk>/cases/<int:case_pk>/preview/", datasets.CasePreviewApi.as_view(), name="case-preview"),
]
