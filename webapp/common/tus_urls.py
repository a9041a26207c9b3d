"""Routes of resumable uploads (namespace ``uploads``), included under ``/uploads/``.

``webapp.common.bodylimit.UPLOAD_ROUTES`` gives ``/uploads/tus/<id>`` (the chunks) the upload
cap; the other routes here take small bodies."""
from django.urls import path

from . import tus_views

app_name = "uploads"

urlpatterns = [
    path("tus/", tus_views.upload_collection, name="tus"),
    path("tus/<str:upload_id>", tus_views.upload_resource, name="tus-upload"),
    path("datasets/<int:project_pk>/", tus_views.dataset_from_uploads, name="dataset"),
]
