from django.urls import path

from . import views

app_name = "datasets"

urlpatterns = [
    path("datasets/", views.dataset_list, name="list"),
    path("projects/<int:project_pk>/datasets/upload/", views.dataset_upload, name="upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="detail"),
    path("datasets/<int:pk>/delete/", views.dataset_delete, name="delete"),
    path("datasets/<int:pk>/cases/<int:case_pk>/preview.png", views.case_preview, name="case-preview"),
]
