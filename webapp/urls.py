"""URL routes: pages, the REST API under /api/, its schema and docs, the admin."""
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", login_required(RedirectView.as_view(pattern_name="projects:list", permanent=False)), name="home"),
    path("accounts/", include("webapp.accounts.urls")),
    path("projects/", include("webapp.projects.urls")),
    path("", include("webapp.datasets.urls")),
    path("", include("webapp.runs.urls")),
    path("", include("webapp.mlmodels.urls")),
    path("", include("webapp.predictions.urls")),
    path("", include("webapp.evaluations.urls")),
    path("", include("webapp.comparisons.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Self-hosted API docs: an ES module renders the OpenAPI schema (no CDN).
    path("api/docs/", login_required(TemplateView.as_view(template_name="api_docs.html")), name="api-docs"),
    path("api/", include("webapp.api_urls")),
    # Resumable (tus) uploads and the dataset made from them (issue 14).
    path("uploads/", include("webapp.common.tus_urls")),
    path("admin/", admin.site.urls),
]
