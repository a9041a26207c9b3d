from django.urls import path

from . import views

app_name = "mlmodels"

urlpatterns = [
    path("models/", views.model_list, name="list"),
    path("models/<int:pk>/", views.model_detail, name="detail"),
    path("models/<int:pk>/bundle.zip", views.model_bundle, name="bundle"),
    path("models/<int:pk>/network", views.model_network, name="network"),
    path("models/<int:pk>/delete/", views.model_delete, name="delete"),
]
