"""REST API for runs: methods, estimate, launch, list, detail, cancel, clone, retrain, events, genotype."""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.common.parsers import loads_limited
from webapp.datasets.selectors import dataset_get
from webapp.projects.access import require_write
from webapp.projects.selectors import project_get

from . import engine, selectors, services
from .events import SnapshotEncoder
from .models import Run
from .services import MAX_BUDGET_BYTES


class RunOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    dataset = serializers.IntegerField(source="dataset_id", read_only=True)
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)
    source_run = serializers.IntegerField(source="source_run_id", read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    model = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    events_url = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id", "project", "dataset", "name", "kind", "method", "preset", "config", "resolved_config", "seed",
            "gpu_budget_bytes", "estimate_bytes", "status", "cancel_requested", "parent", "source_run", "error",
            "progress", "best_mean_dice", "attempts", "worker", "created_at", "started_at", "finished_at",
            "duration_seconds", "model", "url", "events_url",
        ]

    def get_model(self, obj) -> int | None:
        model = getattr(obj, "trained_model", None) if obj.kind == Run.Kind.RETRAIN else None
        return model.pk if model is not None else None

    def get_url(self, obj) -> str:
        return reverse("runs:detail", kwargs={"pk": obj.pk})

    def get_events_url(self, obj) -> str:
        return reverse("api:run-events", kwargs={"pk": obj.pk})


class SearchInput(serializers.Serializer):
    dataset = serializers.IntegerField()
    method = serializers.CharField()
    preset = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict, help_text="The method's settings (JSON Schema from /api/methods/); override the preset.")
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    gpu_budget_bytes = serializers.IntegerField(min_value=1, max_value=MAX_BUDGET_BYTES)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class RetrainInput(serializers.Serializer):
    dataset = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="Default: the search's dataset.")
    preset = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    gpu_budget_bytes = serializers.IntegerField(min_value=1, max_value=MAX_BUDGET_BYTES)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    controls = serializers.BooleanField(required=False, default=False, help_text=(
        "Once the retraining succeeded, also train two controls: a random architecture of the same method "
        "and the hand-designed network, with the same data, settings and seed."))


class GenotypeRetrainInput(RetrainInput):
    genotype = serializers.JSONField(help_text="A VoxelSearch genotype document (JSON), or upload it as the file 'genotype_file'.", required=False)
    genotype_file = serializers.FileField(required=False)


class CloneInput(serializers.Serializer):
    preset = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=None, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    gpu_budget_bytes = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=MAX_BUDGET_BYTES)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    controls = serializers.BooleanField(required=False, default=False, help_text="Retrain clones: train the two controls once it succeeded.")


class RunUpdateInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200, help_text="Blank: the run's default name.")


class EstimateInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Run.Kind.values, default=Run.Kind.SEARCH)
    method = serializers.CharField(required=False, allow_blank=True, default="")
    preset = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    gpu_budget_bytes = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=MAX_BUDGET_BYTES)
    run = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="Retrain: the search run whose architecture is retrained.")
    genotype = serializers.JSONField(required=False, default=None, allow_null=True)


def _valid(serializer_class, data):
    s = serializer_class(data=data)
    s.is_valid(raise_exception=True)
    return s.validated_data


@extend_schema(tags=["runs"])
class MethodListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("method", str, description=(
        "Put this method's retraining settings under 'retrain' (default: the shared ones)"))],
        responses=OpenApiTypes.OBJECT)
    def get(self, request):
        """Search methods (name, paper, presets, the whole JSON Schema of their settings and of
        their retraining settings) and, under ``retrain``, the retraining settings of ``method``."""
        return Response(engine.catalogue(request.query_params.get("method") or None))


@extend_schema(tags=["runs"])
class DatasetRunDefaultsApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("kind", str), OpenApiParameter("method", str), OpenApiParameter("preset", str),
                               OpenApiParameter("run", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        """Suggested settings: the preset's values with the patch size planned from the dataset."""
        dataset = dataset_get(user=request.user, pk=pk)
        q = request.query_params
        if q.get("kind") == Run.Kind.RETRAIN:
            genotype = None
            if q.get("run"):
                genotype = selectors.run_get(user=request.user, pk=q["run"]).genotype
            return Response({"config": engine.retrain_defaults(dataset, q.get("preset", ""), genotype)})
        method = q.get("method") or (engine.method_names() or [""])[0]
        return Response({"config": engine.search_defaults(dataset, method, q.get("preset", ""))})


@extend_schema(tags=["runs"])
class DatasetEstimateApi(APIView):
    @extend_schema(request=EstimateInput, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk):
        """The engine's memory estimate of a configuration against the budget (creates nothing)."""
        dataset = dataset_get(user=request.user, pk=pk)
        data = _valid(EstimateInput, request.data)
        genotype = data["genotype"]
        if data["run"]:
            genotype = selectors.run_get(user=request.user, pk=data["run"]).genotype
        result = services.estimate(dataset=dataset, kind=data["kind"], method=data["method"], preset=data["preset"],
                                   config=data["config"], seed=data["seed"], genotype=genotype,
                                   gpu_budget_bytes=data["gpu_budget_bytes"])
        return Response(result)


@extend_schema(tags=["runs"])
class ProjectRunsApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("sort", str, description="created | status | method | dice | duration, '-' reverses"),
                               OpenApiParameter("kind", str)], responses=RunOutput(many=True))
    def get(self, request, pk):
        project = project_get(user=request.user, pk=pk)
        runs = selectors.run_list(user=request.user, project=project, kind=request.query_params.get("kind"),
                                  sort=request.query_params.get("sort", "created"))
        return Response(RunOutput(runs, many=True).data)

    @extend_schema(request=SearchInput, responses={201: RunOutput})
    def post(self, request, pk):
        """Launch a search: the settings are validated by the engine and the memory estimate is
        checked against the budget before anything is created (400 with field errors)."""
        project = project_get(user=request.user, pk=pk)
        require_write(request.user, project)
        data = _valid(SearchInput, request.data)
        dataset = dataset_get(user=request.user, pk=data["dataset"])
        if dataset.project_id != project.pk:
            raise ValidationError({"dataset": ["The dataset belongs to another project."]})
        run = services.run_create_search(
            actor=request.user, dataset=dataset, method=data["method"], preset=data["preset"], config=data["config"],
            seed=data["seed"], gpu_budget_bytes=data["gpu_budget_bytes"], name=data["name"],
        )
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["runs"])
class RunDetailApi(APIView):
    @extend_schema(responses=RunOutput)
    def get(self, request, pk):
        return Response(RunOutput(selectors.run_get(user=request.user, pk=pk)).data)

    @extend_schema(request=RunUpdateInput, responses=RunOutput)
    def patch(self, request, pk):
        """Rename the run (the only field a user edits after launch)."""
        run = selectors.run_get(user=request.user, pk=pk)
        require_write(request.user, run.project)  # a viewer hears 403 whatever the body says
        data = _valid(RunUpdateInput, request.data)
        return Response(RunOutput(services.run_rename(actor=request.user, run=run, name=data["name"])).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        """Delete a finished run with its events and files (not while it runs or has a model)."""
        services.run_delete(actor=request.user, run=selectors.run_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["runs"])
class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutput})
    def post(self, request, pk):
        """Ask the run to stop (cooperative: it stops after its current step and keeps a checkpoint)."""
        run = services.run_cancel(actor=request.user, run=selectors.run_get(user=request.user, pk=pk))
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["runs"])
class RunResumeApi(APIView):
    @extend_schema(request=None, responses={202: RunOutput})
    def post(self, request, pk):
        """Queue a cancelled run again: it resumes from its last checkpoint."""
        run = services.run_resume(actor=request.user, run=selectors.run_get(user=request.user, pk=pk))
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["runs"])
class RunCloneApi(APIView):
    @extend_schema(request=CloneInput, responses={201: RunOutput})
    def post(self, request, pk):
        """A new run with this run's settings, edited by the given fields."""
        run = selectors.run_get(user=request.user, pk=pk)
        require_write(request.user, run.project)
        data = _valid(CloneInput, request.data)
        clone = services.run_clone(actor=request.user, run=run, **data)
        return Response(RunOutput(clone).data, status=status.HTTP_201_CREATED)


def _retrain_dataset(request, data, default):
    if not data.get("dataset"):
        return default
    return dataset_get(user=request.user, pk=data["dataset"])


@extend_schema(tags=["runs"])
class RunRetrainApi(APIView):
    @extend_schema(request=RetrainInput, responses={201: RunOutput})
    def post(self, request, pk):
        """Retrain the architecture a succeeded search found; on success it becomes a model."""
        run = selectors.run_get(user=request.user, pk=pk)
        require_write(request.user, run.project)
        data = _valid(RetrainInput, request.data)
        retrain = services.run_retrain_search(
            actor=request.user, run=run, dataset=_retrain_dataset(request, data, run.dataset), preset=data["preset"],
            config=data["config"], seed=data["seed"], gpu_budget_bytes=data["gpu_budget_bytes"], name=data["name"],
            controls=data["controls"],
        )
        return Response(RunOutput(retrain).data, status=status.HTTP_201_CREATED)


def read_genotype_upload(uploaded, limit: int = 5 * 1024 * 1024):
    """Parse an uploaded genotype JSON file (size-capped); ValidationError in words."""
    if uploaded.size > limit:
        raise ValidationError({"genotype": [f"The architecture file is larger than {limit // (1024 * 1024)} MB."]})
    try:
        return loads_limited(b"".join(uploaded.chunks()))  # depth-limited: no RecursionError
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError({"genotype": [f"The architecture file is not valid JSON ({exc})."]})


@extend_schema(tags=["runs"])
class DatasetRetrainApi(APIView):
    @extend_schema(request=GenotypeRetrainInput, responses={201: RunOutput})
    def post(self, request, pk):
        """Retrain an uploaded architecture (genotype JSON, validated) on this dataset."""
        dataset = dataset_get(user=request.user, pk=pk)
        require_write(request.user, dataset.project)
        data = _valid(GenotypeRetrainInput, request.data)
        if data.get("genotype_file") is not None:
            genotype = read_genotype_upload(data["genotype_file"])
        elif data.get("genotype") is not None:
            genotype = data["genotype"]
        else:
            raise ValidationError({"genotype": ["Send the architecture as 'genotype' (JSON) or the file 'genotype_file'."]})
        run = services.run_create_retrain(
            actor=request.user, dataset=dataset, genotype=genotype, preset=data["preset"], config=data["config"],
            seed=data["seed"], gpu_budget_bytes=data["gpu_budget_bytes"], name=data["name"], controls=data["controls"],
        )
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["runs"])
@method_decorator(gzip_page, name="dispatch")  # a replay is mostly repeated keys: gzip cuts it ~10x
class RunEventsApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        """Stored events with ``seq > after`` in order (at most ``limit``, default 1000), gzipped
        when the client accepts it. An ``architecture`` event after the first of the response
        may carry ``genotype_patch`` against ``genotype_base`` instead of ``genotype``."""
        run = selectors.run_get(user=request.user, pk=pk)
        try:
            after = int(request.query_params.get("after", 0))
            limit = min(max(int(request.query_params.get("limit", 1000)), 1), 5000)
        except ValueError:
            raise ValidationError({"after": ["after and limit must be whole numbers."]})
        snapshots = SnapshotEncoder()  # architecture events after the first: changes only (events.py)
        events = [snapshots.encode(e.as_message()) for e in selectors.run_events(run=run, after=after, limit=limit)]
        return Response({"run": run.pk, "status": run.status, "events": events,
                         "last_seq": events[-1]["seq"] if events else after, "more": len(events) == limit})


@extend_schema(tags=["runs"])
class RunGenotypeApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        """The run's final architecture (genotype JSON) as a download."""
        from django.http import Http404

        run = selectors.run_get(user=request.user, pk=pk)
        if not run.genotype:
            raise Http404("This run has no architecture yet.")
        return genotype_response(run)


def genotype_response(run: Run) -> JsonResponse:
    response = JsonResponse(run.genotype, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-{run.method or "architecture"}-genotype.json"'
    return response
