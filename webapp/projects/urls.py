from django.urls import path

from . import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("<int:pk>/", views.project_detail, name="detail"),
    path("<int:pk>/delete/", views.project_delete, name="delete"),
    path("<int:pk>/members/", views.member_invite, name="member-invite"),
    path("<int:pk>/members/<int:membership_pk>/role/", views.member_role, name="member-role"),
    path("<int:pk>/members/<int:membership_pk>/remove/", views.member_remove, name="member-remove"),
]
