"""REST API routes (namespace ``api``). Issue 4 adds runs, models and predictions here."""
from django.urls import path

from webapp.accounts.apis import TokenApi
from webapp.datasets import apis as datasets
from webapp.mlmodels import apis as mlmodels
from webapp.projects import apis as projects
from webapp.runs import apis as runs

app_name = "api"

urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="token"),
    path("projects/", projects.ProjectListApi.as_view(), name="projects"),
    path("projects/<int:pk>/", projects.ProjectDetailApi.as_view(), name="project"),
    path("projects/<int:pk>/members/", projects.MemberListApi.as_view(), name="members"),
    path("projects/<int:pk>/members/<int:membership_pk>/", projects.MemberDetailApi.as_view(), name="member"),
    # Invitations (issue 14, F9): owners list and withdraw theirs; invitees accept or decline.
    path("projects/<int:pk>/invitations/", projects.ProjectInvitationListApi.as_view(), name="project-invitations"),
    path("projects/<int:pk>/invitations/<int:invitation_pk>/", projects.ProjectInvitationDetailApi.as_view(), name="project-invitation"),
    path("invitations/", projects.MyInvitationListApi.as_view(), name="invitations"),
    path("invitations/<int:pk>/accept/", projects.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("invitations/<int:pk>/decline/", projects.InvitationDeclineApi.as_view(), name="invitation-decline"),
    path("projects/<int:pk>/datasets/", datasets.ProjectDatasetsApi.as_view(), name="project-datasets"),
    path("datasets/<int:pk>/", datasets.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<int:pk>/cases/", datasets.CaseListApi.as_view(), name="dataset-cases"),
    path("datasets/<int:pk>/cases/<int:case_pk>/", datasets.CaseDetailApi.as_view(), name="case"),
    path("datasets/<int:pk>/cases/<int:case_pk>/preview/", datasets.CasePreviewApi.as_view(), name="case-preview"),
    path("methods/", runs.MethodListApi.as_view(), name="methods"),
    path("projects/<int:pk>/runs/", runs.ProjectRunsApi.as_view(), name="project-runs"),
    path("datasets/<int:pk>/run-defaults/", runs.DatasetRunDefaultsApi.as_view(), name="dataset-run-defaults"),
    path("datasets/<int:pk>/estimate/", runs.DatasetEstimateApi.as_view(), name="dataset-estimate"),
    path("datasets/<int:pk>/retrain/", runs.DatasetRetrainApi.as_view(), name="dataset-retrain"),
    path("runs/<int:pk>/", runs.RunDetailApi.as_view(), name="run"),
    path("runs/<int:pk>/cancel/", runs.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:pk>/resume/", runs.RunResumeApi.as_view(), name="run-resume"),
    path("runs/<int:pk>/clone/", runs.RunCloneApi.as_view(), name="run-clone"),
    path("runs/<int:pk>/retrain/", runs.RunRetrainApi.as_view(), name="run-retrain"),
    path("runs/<int:pk>/events", runs.RunEventsApi.as_view(), name="run-events"),
    path("runs/<int:pk>/genotype/", runs.RunGenotypeApi.as_view(), name="run-genotype"),
    path("models/", mlmodels.ModelListApi.as_view(), name="models"),
    path("models/<int:pk>/", mlmodels.ModelDetailApi.as_view(), name="model"),
    path("models/<int:pk>/bundle.zip", mlmodels.ModelBundleApi.as_view(), name="model-bundle"),
    path("models/<int:pk>/network", mlmodels.ModelNetworkApi.as_view(), name="model-network"),
]

# Predictions (MONAI Label style: POST a volume to a model's infer, poll the job, fetch the result).
from webapp.predictions import apis as predictions  # noqa: E402

urlpatterns += [
    path("models/<int:pk>/infer", predictions.ModelInferApi.as_view(), name="model-infer"),
    path("models/<int:pk>/predictions/", predictions.ModelPredictionsApi.as_view(), name="model-predictions"),
    path("predictions/<int:pk>/", predictions.PredictionDetailApi.as_view(), name="prediction"),
    path("predictions/<int:pk>/result", predictions.PredictionResultApi.as_view(), name="prediction-result"),
    path("predictions/<int:pk>/input", predictions.PredictionInputApi.as_view(), name="prediction-input"),
]

# Test-split evaluations and controls (issue 12), comparisons and leaderboards (issue 13).
from webapp.comparisons.api_urls import urlpatterns as comparisons_api  # noqa: E402
from webapp.evaluations.api_urls import urlpatterns as evaluations_api  # noqa: E402

urlpatterns += evaluations_api + comparisons_api
