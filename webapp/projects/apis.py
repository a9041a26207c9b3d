"""REST API for projects and members (thin: serializers in, services and selectors out)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .access import require_owner, require_write
from .models import Membership, Project


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
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "role", "created_at"]


class MemberInput(serializers.Serializer):
    user = serializers.CharField(help_text="Username or email of an existing account.")
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.VIEWER)


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

    @extend_schema(request=MemberInput, responses={201: MemberOutput})
    def post(self, request, pk):
        project = selectors.project_get(user=request.user, pk=pk)
        require_owner(request.user, project)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_invite(
            project=project, actor=request.user, identifier=data.validated_data["user"], role=data.validated_data["role"]
        )
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


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
