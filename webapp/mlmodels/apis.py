"""REST API for registered models."""
from django.db import transaction
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.projects.access import require_write
from webapp.projects.selectors import project_get

from . import selectors, services
from .downloads import bundle_zip_response, network_response
from .models import TrainedModel


class ModelOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    run = serializers.IntegerField(source="run_id", read_only=True)
    dataset = serializers.IntegerField(source="dataset_id", read_only=True)
    url = serializers.SerializerMethodField()
    bundle_url = serializers.SerializerMethodField()
    network_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainedModel
        fields = [
            "id", "project", "name", "run", "dataset", "method", "label_names", "channel_names",
            "val_dice", "mean_dice", "exports", "figures", "label_colours", "legend", "created", "url",
            "bundle_url", "network_url",
        ]

    legend = serializers.SerializerMethodField()

    def get_legend(self, obj) -> list[dict]:
        from webapp.common.colours import legend

        return legend(obj.label_names, obj.label_colours)

    def get_url(self, obj) -> str:
        return reverse("mlmodels:detail", kwargs={"pk": obj.pk})

    def get_bundle_url(self, obj) -> str:
        return reverse("api:model-bundle", kwargs={"pk": obj.pk})

    def get_network_url(self, obj) -> str | None:
        return reverse("api:model-network", kwargs={"pk": obj.pk}) if obj.network_file else None


class ModelPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    #: {"<class value>": "#rrggbb"}; {} goes back to the default palette.
    label_colours = serializers.DictField(child=serializers.CharField(max_length=7), required=False)


@extend_schema(tags=["models"])
class ModelListApi(APIView):
    @extend_schema(responses=ModelOutput(many=True))
    def get(self, request):
        project = None
        if request.query_params.get("project"):
            project = project_get(user=request.user, pk=request.query_params["project"])
        return Response(ModelOutput(selectors.model_list(user=request.user, project=project), many=True).data)


@extend_schema(tags=["models"])
class ModelDetailApi(APIView):
    @extend_schema(responses=ModelOutput)
    def get(self, request, pk):
        return Response(ModelOutput(selectors.model_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ModelPatch, responses=ModelOutput)
    def patch(self, request, pk):
        model = selectors.model_get(user=request.user, pk=pk)
        require_write(request.user, model.project)
        data = ModelPatch(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data:
            raise serializers.ValidationError({"name": "Send a name or label_colours to change."})
        with transaction.atomic():  # both changes or neither
            if "name" in data.validated_data:
                model = services.model_rename(model=model, actor=request.user, name=data.validated_data["name"])
            if "label_colours" in data.validated_data:
                model = services.model_set_colours(model=model, actor=request.user,
                                                   colours=data.validated_data["label_colours"])
        return Response(ModelOutput(model).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        services.model_delete(model=selectors.model_get(user=request.user, pk=pk), actor=request.user)
        return Response(status=204)


@extend_schema(tags=["models"])
class ModelBundleApi(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        return bundle_zip_response(selectors.model_get(user=request.user, pk=pk))


@extend_schema(tags=["models"])
class ModelNetworkApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        return network_response(selectors.model_get(user=request.user, pk=pk))
