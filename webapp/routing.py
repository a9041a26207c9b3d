"""WebSocket routes. Later apps (runs) append their consumers here."""
from django.urls import path

from webapp.datasets.consumers import DatasetStatusConsumer
from webapp.runs.consumers import RunEventsConsumer

websocket_urlpatterns = [
    path("ws/datasets/<int:dataset_id>/", DatasetStatusConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunEventsConsumer.as_asgi()),
]
