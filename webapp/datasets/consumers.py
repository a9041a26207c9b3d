"""WebSocket: ``/ws/datasets/<id>/`` streams the dataset's status while it imports.

Authenticated by the session (AuthMiddlewareStack) and project-checked, on connecting and again
for every message: a user who may not see the dataset (anonymous, not or no longer a member of
its project) is closed with code 4403.
"""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.common.sockets import MemberSocketMixin, join_user_group

from .events import group_name, status_payload
from .selectors import dataset_get_or_none

CLOSE_FORBIDDEN = 4403


class DatasetStatusConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        dataset_id = self.scope["url_route"]["kwargs"]["dataset_id"]
        dataset = None
        if user is not None and user.is_authenticated:
            dataset = await database_sync_to_async(dataset_get_or_none)(user=user, pk=dataset_id)
        if dataset is None:
            # Accept first so the browser sees the close code (a refused handshake has none).
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = group_name(dataset.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await join_user_group(self, project_id=dataset.project_id)  # closed at once if removed (issue 14, F10)
        await self.accept()
        await self.send_json({"type": "status", "dataset": status_payload(dataset)})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dataset_status(self, event):
        # Access is checked again: a member removed from the project meanwhile hears no more.
        user = self.scope["user"]
        if await database_sync_to_async(dataset_get_or_none)(user=user, pk=event["dataset"]["id"]) is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send_json({"type": "status", "dataset": event["dataset"]})
