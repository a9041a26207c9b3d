from django.urls import path

from . import invitation_views, views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("invitations/", invitation_views.invitation_list, name="invitations"),
    path("invitations/<int:invitation_pk>/accept/", invitation_views.invitation_accept, name="invitation-accept"),
    path("invitations/<int:invitation_pk>/decline/", invitation_views.invitation_decline, name="invitation-decline"),
    path("<int:pk>/", views.project_detail, name="detail"),
    path("<int:pk>/delete/", views.project_delete, name="delete"),
    # Invitations (issue 14, F9): the invite form records an invitation, it adds no one.
    path("<int:pk>/members/", invitation_views.member_invite, name="member-invite"),
    path("<int:pk>/invitations/<int:invitation_pk>/withdraw/", invitation_views.invitation_withdraw, name="invitation-withdraw"),
    path("<int:pk>/members/<int:membership_pk>/role/", views.member_role, name="member-role"),
    path("<int:pk>/members/<int:membership_pk>/remove/", views.member_remove, name="member-remove"),
]
