from django.urls import path

from . import views

app_name = "runs"

urlpatterns = [
    path("projects/<int:project_pk>/runs/", views.run_list, name="list"),
    path("datasets/<int:dataset_pk>/search/", views.run_new, name="new"),
    path("runs/<int:pk>/", views.run_detail, name="detail"),
    path("runs/<int:pk>/clone/", views.run_clone, name="clone"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:pk>/resume/", views.run_resume, name="resume"),
    path("runs/<int:pk>/delete/", views.run_delete, name="delete"),
    path("runs/<int:pk>/retrain/", views.run_retrain, name="retrain"),
    path("runs/<int:pk>/architecture/", views.run_architecture, name="architecture"),
    path("runs/<int:pk>/genotype.json", views.run_genotype_download, name="genotype"),
    path("datasets/<int:dataset_pk>/retrain/", views.genotype_upload, name="upload-genotype"),
    path("projects/<int:project_pk>/architectures/compare/", views.architecture_compare, name="compare"),
]
