from django.urls import path

from . import views

app_name = "predictions"

urlpatterns = [
    path("predictions/", views.prediction_list, name="list"),
    path("models/<int:model_pk>/predict/", views.prediction_create, name="create"),
    path("predictions/<int:pk>/", views.prediction_detail, name="detail"),
    path("predictions/<int:pk>/input.nii.gz", views.prediction_input, name="input"),
    path("predictions/<int:pk>/label.nii.gz", views.prediction_result, name="result"),
    path("predictions/<int:pk>/attention/<str:name>", views.prediction_attention, name="attention"),
    path("predictions/<int:pk>/delete/", views.prediction_delete, name="delete"),
]
