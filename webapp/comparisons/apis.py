"""REST API of the comparison workspace and the leaderboard (the same numbers as the pages)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets.selectors import dataset_get
from webapp.projects.selectors import project_get

from . import exports, selectors


def _item_json(item, classes) -> dict:
    return {**exports.overview_row(item), "label": item.label, "url": item.url,
            "dice_per_class": {c: item.metrics.per_class.get(c) for c in classes},
            "test_metrics_per_class": item.metrics.extra}


@extend_schema(tags=["comparisons"])
class ComparisonApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("run", OpenApiTypes.INT, many=True), OpenApiParameter("model", OpenApiTypes.INT, many=True)],
        responses=OpenApiTypes.OBJECT,
        description="Runs and models of a project side by side: figures, times, per-class Dice "
                    "(test split where the model was evaluated, else validation) and the curves. "
                    "With neither run nor model: the newest models (else runs).",
    )
    def get(self, request, pk):
        project = project_get(user=request.user, pk=pk)
        items = selectors.pick(user=request.user, project=project, run_ids=request.query_params.getlist("run"),
                               model_ids=request.query_params.getlist("model"))
        classes = selectors.class_names(items)
        return Response({"classes": classes, "dice_split": selectors.metric_source(items),
                         "items": [_item_json(i, classes) for i in items], "charts": exports.chart_data(items)})


@extend_schema(tags=["comparisons"])
class LeaderboardApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("sort", OpenApiTypes.STR, description=f"one of {', '.join(selectors.LEADERBOARD_SORTS)}, '-' first for descending (default -dice)")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        dataset = dataset_get(user=request.user, pk=pk)
        items = selectors.leaderboard(user=request.user, dataset=dataset, sort=request.query_params.get("sort", "-dice"))
        classes = selectors.class_names(items)
        return Response({"dataset": dataset.pk, "classes": classes, "dice_split": selectors.metric_source(items),
                         "rows": [{"rank": n, **_item_json(i, classes)} for n, i in enumerate(items, start=1)]})
