"""Live status of datasets over Channels: group ``dataset-<id>`` gets ``dataset.status`` messages."""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def group_name(dataset_id: int) -> str:
    return f"dataset-{dataset_id}"


def status_payload(dataset) -> dict:
    return {
        "id": dataset.pk,
        "status": dataset.status,
        "num_cases": dataset.num_cases,
        "problems": dataset.problems,
    }


def dataset_changed(dataset) -> None:
    """Tell connected browsers about a status change. Never fails the caller: the page also
    polls the API, so a lost message only delays the refresh."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                group_name(dataset.pk), {"type": "dataset.status", "dataset": status_payload(dataset)}
            )
    except Exception:  # Redis unreachable: the browser falls back to polling
        log.warning("Could not send the status of dataset %s to the channel layer", dataset.pk, exc_info=True)
