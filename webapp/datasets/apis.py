"""REST API for datasets and cases."""
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.common.uploads import upload_too_large
from webapp.projects.access import require_write
from webapp.projects.selectors import project_get

from . import selectors, services
from .importing import PAIRING_RULE
from .models import Case, Dataset


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The upload is larger than the limit."
    default_code = "too_large"


class ProblemOutput(serializers.Serializer):
    file = serializers.CharField()
    problem = serializers.CharField()


class NoteOutput(serializers.Serializer):
    file = serializers.CharField()
    note = serializers.CharField()


class DatasetOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    problems = ProblemOutput(many=True, read_only=True)
    notes = NoteOutput(many=True, read_only=True)
    url = serializers.SerializerMethodField()
    cases_url = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id", "project", "name", "description", "status", "source", "labels", "channel_names",
            "modality", "num_cases", "num_test_cases", "size_bytes", "upload_bytes", "problems", "notes", "fingerprint",
            "created_at", "updated_at", "status_changed_at", "url", "cases_url",
        ]

    def get_url(self, obj) -> str:
        return reverse("datasets:detail", kwargs={"pk": obj.pk})

    def get_cases_url(self, obj) -> str:
        return reverse("api:dataset-cases", kwargs={"pk": obj.pk})


class CaseOutput(serializers.ModelSerializer):
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id", "index", "case_id", "split", "shape", "n_channels", "spacing", "dtype", "label_values",
            "size_bytes", "original_image_name", "original_label_name", "preview_url",
        ]

    def get_preview_url(self, obj) -> str:
        return reverse("api:case-preview", kwargs={"pk": obj.dataset_id, "case_pk": obj.pk})


class UploadInput(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(), help_text=f"Several NIfTI files or one .zip/.tar.gz in MSD layout. {PAIRING_RULE}"
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    labels = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Classes for NIfTI files: '1: liver, 2: tumour' or a JSON object (0 = background).",
    )
    modality = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


@extend_schema(tags=["datasets"])
class ProjectDatasetsApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=DatasetOutput(many=True))
    def get(self, request, pk):
        project = project_get(user=request.user, pk=pk)
        return Response(DatasetOutput(selectors.dataset_list(user=request.user, project=project), many=True).data)

    @extend_schema(request={"multipart/form-data": UploadInput}, responses={202: DatasetOutput})
    def post(self, request, pk):
        project = project_get(user=request.user, pk=pk)
        require_write(request.user, project)
        files = request.FILES.getlist("files")  # streamed to temporary files, up to the cap
        if upload_too_large(request):
            raise PayloadTooLarge()
        data = request.data
        dataset = services.dataset_upload(
            project=project, actor=request.user, files=files, name=data.get("name", ""),
            description=data.get("description", ""), labels=data.get("labels", ""), modality=data.get("modality", ""),
        )
        return Response(DatasetOutput(dataset).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["datasets"])
class DatasetDetailApi(APIView):
    @extend_schema(responses=DatasetOutput)
    def get(self, request, pk):
        return Response(DatasetOutput(selectors.dataset_get(user=request.user, pk=pk)).data)

    @extend_schema(request=DatasetPatch, responses=DatasetOutput)
    def patch(self, request, pk):
        dataset = selectors.dataset_get(user=request.user, pk=pk)
        require_write(request.user, dataset.project)
        data = DatasetPatch(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_update(dataset=dataset, actor=request.user, **data.validated_data)
        return Response(DatasetOutput(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        dataset = selectors.dataset_get(user=request.user, pk=pk)
        services.dataset_delete(dataset=dataset, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["datasets"])
class CaseListApi(APIView):
    @extend_schema(responses=CaseOutput(many=True))
    def get(self, request, pk):
        dataset = selectors.dataset_get(user=request.user, pk=pk)
        return Response(CaseOutput(selectors.case_list(dataset=dataset), many=True).data)


@extend_schema(tags=["datasets"])
class CaseDetailApi(APIView):
    @extend_schema(responses=CaseOutput)
    def get(self, request, pk, case_pk):
        return Response(CaseOutput(selectors.case_get(user=request.user, dataset_pk=pk, pk=case_pk)).data)


@extend_schema(tags=["datasets"])
class CasePreviewApi(APIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, pk, case_pk):
        path = selectors.case_preview_get(user=request.user, dataset_pk=pk, pk=case_pk)
        return FileResponse(open(path, "rb"), content_type="image/png")
