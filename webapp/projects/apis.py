"""REST API for projects and members (thin: serializers in, services and selectors out)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .access import require_owner, require_write
from .invitation_selectors import (
    invitation_get_for_owner,
    invitation_get_mine,
    invitation_list_mine,
    invitation_list_pending,
)
from .models import Invitation, Membership, Project


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.CharField(source="user_role", read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "role", "member_count", "created_at", "updated_at"]


class ProjectInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class MemberOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    # Members' e-mail addresses are not shown (issue 14, F9): the username names them.

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class MemberInput(serializers.Serializer):
    user = serializers.CharField(max_length=254, help_text="Username or e-mail of the person to invite.")
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.VIEWER)


def invite_sent_message(role: str) -> str:
    """The one answer to every invitation, whoever it names."""
    return (
        f"Invitation recorded. If an account has that username or e-mail, its holder finds it under "
        f"Invitations and joins the project as {role} once they accept."
    )


class InviteAccepted(serializers.Serializer):
    detail = serializers.CharField()
    invitation = serializers.IntegerField(help_text="The pending invitation (listed to owners).")
    role = serializers.CharField()


class ProjectInvitationOutput(serializers.ModelSerializer):
    """What owners see of a pending invitation: what was typed (e-mails masked), never the account."""

    invited = serializers.CharField(source="shown_identifier", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "invited", "role", "status", "invited_by", "created_at"]


class MyInvitationOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    project_name = serializers.CharField(source="project.name", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "project", "project_name", "role", "status", "invited_by", "created_at"]


class RoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


@extend_schema(tags=["projects"])
class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request):
        return Response(ProjectOutput(selectors.project_list(user=request.user), many=True).data)

    @extend_schema(request=ProjectInput, responses={201: ProjectOutput})
    def post(self, request):
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(user=request.user, **data.validated_data)
        project = selectors.project_get(user=request.user, pk=project.pk)
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["projects"])
class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput)
    def get(self, request, pk):
        return Response(ProjectOutput(selectors.project_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ProjectPatch, responses=ProjectOutput)
    def patch(self, request, pk):
        project = selectors.project_get(user=request.user, pk=pk)
        require_write(request.user, project)
        data = ProjectPatch(data=request.data)
        data.is_valid(raise_exception=True)
        services.project_update(project=project, actor=request.user, **data.validated_data)
        return Response(ProjectOutput(selectors.project_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        project = selectors.project_get(user=request.user, pk=pk)
        services.project_delete(project=project, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["projects"])
class MemberListApi(APIView):
    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request, pk):
        project = selectors.project_get(user=request.user, pk=pk)
        return Response(MemberOutput(selectors.member_list(project=project), many=True).data)

    @extend_schema(request=MemberInput, responses={202: InviteAccepted})
    def post(self, request, pk):
        """Invite someone; the answer is the same whether or not an account matches (F9)."""
        project = selectors.project_get(user=request.user, pk=pk)
        require_owner(request.user, project)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.member_invite(
            project=project, actor=request.user, identifier=data.validated_data["user"], role=data.validated_data["role"]
        )
        return Response(
            {"detail": invite_sent_message(invitation.role), "invitation": invitation.pk, "role": invitation.role},
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(tags=["projects"])
class MemberDetailApi(APIView):
    @extend_schema(responses=MemberOutput)
    def get(self, request, pk, membership_pk):
        membership = selectors.membership_get(user=request.user, project_pk=pk, membership_pk=membership_pk)
        return Response(MemberOutput(membership).data)

    @extend_schema(request=RoleInput, responses=MemberOutput)
    def patch(self, request, pk, membership_pk):
        membership = selectors.membership_get(user=request.user, project_pk=pk, membership_pk=membership_pk)
        require_owner(request.user, membership.project)
        data = RoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_change_role(membership=membership, actor=request.user, role=data.validated_data["role"])
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk, membership_pk):
        membership = selectors.membership_get(user=request.user, project_pk=pk, membership_pk=membership_pk)
        services.member_remove(membership=membership, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["projects"])
class ProjectInvitationListApi(APIView):
    @extend_schema(responses=ProjectInvitationOutput(many=True))
    def get(self, request, pk):
        """The project's pending invitations (owners only)."""
        project = selectors.project_get(user=request.user, pk=pk)
        require_owner(request.user, project)
        return Response(ProjectInvitationOutput(invitation_list_pending(project=project), many=True).data)


@extend_schema(tags=["projects"])
class ProjectInvitationDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, pk, invitation_pk):
        """Withdraw a pending invitation (owners only)."""
        invitation = invitation_get_for_owner(user=request.user, project_pk=pk, pk=invitation_pk)
        services.invitation_cancel(invitation=invitation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["invitations"])
class MyInvitationListApi(APIView):
    @extend_schema(responses=MyInvitationOutput(many=True))
    def get(self, request):
        """Invitations addressed to me, still pending."""
        return Response(MyInvitationOutput(invitation_list_mine(user=request.user), many=True).data)


@extend_schema(tags=["invitations"])
class InvitationAcceptApi(APIView):
    @extend_schema(request=None, responses=MemberOutput)
    def post(self, request, pk):
        """Join the project with the invited role."""
        invitation = invitation_get_mine(user=request.user, pk=pk)
        membership = services.invitation_accept(invitation=invitation, actor=request.user)
        return Response(MemberOutput(membership).data)


@extend_schema(tags=["invitations"])
class InvitationDeclineApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk):
        invitation = invitation_get_mine(user=request.user, pk=pk)
        services.invitation_decline(invitation=invitation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
