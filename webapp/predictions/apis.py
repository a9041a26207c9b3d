"""REST API for predictions, in the spirit of MONAI Label's ``/infer/{model}``.

* ``POST /api/models/<pk>/infer`` (multipart: ``files`` one or more NIfTI volumes and/or ``cases``
  ids of dataset cases) -> 202 ``{"predictions": [...]}``, one queued job per volume;
* ``GET /api/models/<pk>/predictions/`` -> the model's predictions;
* ``GET /api/predictions/<pk>/`` -> status, error, per-class volumes in mL;
* ``GET /api/predictions/<pk>/result`` -> the label NIfTI (409 until it succeeded);
* ``GET /api/predictions/<pk>/input`` -> the (scrubbed) input NIfTI;
* ``DELETE /api/predictions/<pk>/`` -> 204.
"""
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.common.colours import legend
from webapp.common.uploads import upload_too_large
from webapp.mlmodels.selectors import model_get
from webapp.projects.access import require_write

from . import selectors, services
from .models import Prediction


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The upload is larger than the limit."
    default_code = "too_large"


class NotFinished(APIException):
    status_code = 409
    default_detail = "The prediction has not succeeded (yet): see its status."
    default_code = "not_finished"


class VolumeOutput(serializers.Serializer):
    value = serializers.IntegerField()
    name = serializers.CharField()
    voxels = serializers.IntegerField()
    ml = serializers.FloatField(help_text="Volume in millilitres (voxels x voxel volume from the header).")


class PredictionOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    model = serializers.IntegerField(source="model_id", read_only=True)
    source_case = serializers.IntegerField(source="source_case_id", read_only=True, allow_null=True)
    volumes = VolumeOutput(many=True, read_only=True)
    colours = serializers.SerializerMethodField()
    attention_maps = serializers.SerializerMethodField(
        help_text="Attention maps of a DAST model's transformer ops (NIfTI in the input's geometry).")
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()
    api_url = serializers.SerializerMethodField()
    result_url = serializers.SerializerMethodField()
    input_url = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id", "project", "model", "source_case", "input_name", "status", "progress", "error",
            "shape", "spacing", "n_channels", "voxel_volume_ml", "volumes", "colours", "attempts",
            "attention_request", "attention_maps", "overlap", "mirror", "postprocess", "use_ensemble",
            "created_at", "started_at", "finished_at", "duration_seconds",
            "url", "api_url", "result_url", "input_url",
        ]

    def get_attention_maps(self, obj) -> list[dict]:
        return [{**m, "url": reverse("predictions:attention", kwargs={"pk": obj.pk, "name": m["file"]})}
                for m in obj.attention_maps or []]

    def get_colours(self, obj) -> list[dict]:
        return legend(obj.model.label_names, obj.model.label_colours)

    def get_url(self, obj) -> str:
        return reverse("predictions:detail", kwargs={"pk": obj.pk})

    def get_api_url(self, obj) -> str:
        return reverse("api:prediction", kwargs={"pk": obj.pk})

    def get_result_url(self, obj) -> str | None:
        return reverse("api:prediction-result", kwargs={"pk": obj.pk}) if obj.status == Prediction.Status.SUCCEEDED else None

    def get_input_url(self, obj) -> str:
        return reverse("api:prediction-input", kwargs={"pk": obj.pk})


class InferInput(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), required=False,
                                  help_text="One or more NIfTI volumes (.nii, .nii.gz) with the model's channels.")
    cases = serializers.ListField(child=serializers.IntegerField(), required=False,
                                  help_text="Ids of cases of ready datasets in the model's project.")
    attention = serializers.ListField(child=serializers.CharField(), required=False,
                                      help_text="Transformer ops (site ids) whose attention maps to store; none: all.")
    overlap = serializers.FloatField(required=False, default=0.5,
                                     help_text="Share of each Gaussian sliding window overlapping the next, 0 to below 1.")
    mirror = serializers.BooleanField(required=False, default=False,
                                      help_text="Mirroring test-time augmentation (8 flipped copies averaged): about 8x slower.")
    postprocess = serializers.ChoiceField(choices=["auto", "none", "lcc"], required=False, default="auto",
                                          help_text="Largest-connected-component clean-up: auto (as decided on the "
                                                    "model's validation cases), none, or lcc (every class).")
    use_ensemble = serializers.BooleanField(required=False, default=False,
                                            help_text="Predict with the model's finished k-fold ensemble.")


class InferOutput(serializers.Serializer):
    predictions = PredictionOutput(many=True)


def _values(data, key: str) -> list[str]:
    """Every value of ``key``: a multipart/form body is a QueryDict (``getlist``); a request
    without a body (or a content type the parsers leave empty) gives a plain dict."""
    if hasattr(data, "getlist"):
        return [str(v) for v in data.getlist(key)]
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _options(data) -> dict:
    """The inference settings sent (the last value of each; absent: the default), checked by
    ``services.prediction_options`` so that the page and the API give the same messages."""
    options = {}
    for key in ("overlap", "mirror", "postprocess", "use_ensemble"):
        values = _values(data, key)
        if values:
            options[key] = values[-1]
    return options


@extend_schema(tags=["predictions"])
class ModelInferApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": InferInput}, responses={202: InferOutput})
    def post(self, request, pk):
        model = model_get(user=request.user, pk=pk)
        require_write(request.user, model.project)
        files = request.FILES.getlist("files") + request.FILES.getlist("file")  # streamed to temp files
        if upload_too_large(request):
            raise PayloadTooLarge()
        cases = [selectors.case_get_for_model(model=model, pk=c) for c in _values(request.data, "cases")]
        created = services.prediction_create(model=model, actor=request.user, files=files, cases=cases,
                                             attention=_values(request.data, "attention"),
                                             options=_options(request.data))
        return Response({"predictions": PredictionOutput(created, many=True).data}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["predictions"])
class ModelPredictionsApi(APIView):
    @extend_schema(responses=PredictionOutput(many=True))
    def get(self, request, pk):
        model = model_get(user=request.user, pk=pk)
        return Response(PredictionOutput(selectors.prediction_list(user=request.user, model=model), many=True).data)


@extend_schema(tags=["predictions"])
class PredictionDetailApi(APIView):
    @extend_schema(responses=PredictionOutput)
    def get(self, request, pk):
        return Response(PredictionOutput(selectors.prediction_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        prediction = selectors.prediction_get(user=request.user, pk=pk)
        services.prediction_delete(prediction=prediction, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _file(request, pk, which):
    prediction = selectors.prediction_get(user=request.user, pk=pk)
    if which == "result" and prediction.status != Prediction.Status.SUCCEEDED:
        raise NotFinished()
    _, path, name = selectors.prediction_file(user=request.user, pk=pk, which=which)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=name, content_type="application/gzip")


@extend_schema(tags=["predictions"])
class PredictionResultApi(APIView):
    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        return _file(request, pk, "result")


@extend_schema(tags=["predictions"])
class PredictionInputApi(APIView):
    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request, pk):
        return _file(request, pk, "input")
