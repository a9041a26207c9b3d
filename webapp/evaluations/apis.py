"""REST API of evaluations: a model's test-split evaluation (status, summary, the report)."""
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.mlmodels.selectors import model_get

from . import selectors
from .models import Evaluation


class EvaluationOutput(serializers.ModelSerializer):
    model = serializers.IntegerField(source="model_id", read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = ["id", "model", "status", "progress", "error", "n_cases", "mean_dice", "postprocessing",
                  "created_at", "started_at", "finished_at", "summary", "report"]

    def get_summary(self, obj) -> dict | None:
        return selectors.summary_for_model(obj.model)


@extend_schema(tags=["models"])
class ModelEvaluationApi(APIView):
    @extend_schema(responses={200: EvaluationOutput, 404: OpenApiTypes.OBJECT})
    def get(self, request, pk):
        model = model_get(user=request.user, pk=pk)
        evaluation = selectors.evaluation_of(model)
        if evaluation is None:
            raise Http404("The model has no evaluation.")
        return Response(EvaluationOutput(evaluation).data)
