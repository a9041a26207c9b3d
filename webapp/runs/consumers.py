"""WebSocket ``/ws/runs/<id>/``: a run's events, replayed then live, with no gap and no duplicate.

Authenticated by the session and project-checked (no access: closed with 4403). The client
sends ``{"after": N}`` (its last sequence number, 0 at first) on connect and on every reconnect.
The consumer joins the run's group *before* reading the stored events, replays those with
``seq > N`` and then forwards live events, dropping any with ``seq`` at or below the last one
sent. Events are stored before they are broadcast, so a live event that arrives before the
client's ``after`` is in the database and comes with the replay.

Events of any type are forwarded (core and namespaced method types alike); one that came
through the channel layer as a stub (``"layer_stub": true``, too big for a layer message) is read
from the database and sent whole.

Server -> client messages: ``{"kind": "event", "event": {...}}``, ``{"kind": "replayed",
"last_seq": N}``, ``{"kind": "status", "run": {...}}``, ``{"kind": "rewind", "seq": N}``, and
``{"kind": "pong", "ping": X}`` for each client ``{"ping": X}`` (the page's heartbeat).
"""
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.common.sockets import MemberSocketMixin, join_user_group

from .events import SnapshotEncoder, group_name, status_payload
from .models import Run
from .selectors import run_events, run_get_or_none

CLOSE_FORBIDDEN = 4403
REPLAY_BATCH = 500
RECHECK_SECONDS = 30
#: How often the page pings; it marks the socket stale (and reconnects) after 2.5 silent periods.
HEARTBEAT_SECONDS = 5


class RunEventsConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.last_seq = None  # None until the client said where it stands
        self.group = None
        self.snapshots = SnapshotEncoder()  # architecture events after the first go as changes
        user = self.scope.get("user")
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        run = None
        if user is not None and user.is_authenticated:
            run = await database_sync_to_async(run_get_or_none)(user=user, pk=run_id)
        if run is None:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.run_id = run.pk
        self.checked_at = time.monotonic()
        self.group = group_name(run.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await join_user_group(self, project_id=run.project_id)  # closed at once if removed (issue 14, F10)
        # status_payload may query the database (a retrain run's model): not in the event loop.
        status = await database_sync_to_async(status_payload)(run)
        await self.accept()
        await self.send_json({"kind": "status", "run": status})

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and "ping" in content and self.group is not None:
            # The page's heartbeat: an answer proves the whole path (server, proxy, network) is
            # up, so the page can say "live" only while pongs arrive (HEARTBEAT_SECONDS).
            await self.send_json({"kind": "pong", "ping": content["ping"] if isinstance(content["ping"], (int, float, str)) else None})
            return
        if not isinstance(content, dict) or "after" not in content or self.group is None:
            return
        try:
            after = max(0, int(content["after"]))
        except (TypeError, ValueError):
            return
        if not await self._allowed():
            return
        self.last_seq = after
        self.snapshots.reset()  # a new replay: its first snapshot goes whole
        while True:
            batch = await database_sync_to_async(self._stored)(self.last_seq)
            for event in batch:
                await self._send_event(event)
            if len(batch) < REPLAY_BATCH:
                break
        await self.send_json({"kind": "replayed", "last_seq": self.last_seq})

    def _stored(self, after: int) -> list[dict]:
        run = Run(pk=self.run_id)
        return [e.as_message() for e in run_events(run=run, after=after, limit=REPLAY_BATCH)]

    async def _allowed(self) -> bool:
        """Access checked again now and then: a member removed meanwhile hears no more."""
        user = self.scope["user"]
        if await database_sync_to_async(run_get_or_none)(user=user, pk=self.run_id) is None:
            await self.close(code=CLOSE_FORBIDDEN)
            self.group = None
            return False
        self.checked_at = time.monotonic()
        return True

    async def run_event(self, message):
        event = message["event"]
        if self.last_seq is None or event["seq"] <= self.last_seq:
            return  # not subscribed yet (it will come with the replay) or sent already
        if time.monotonic() - self.checked_at > RECHECK_SECONDS and not await self._allowed():
            return
        stub = bool(event.get("layer_stub"))  # too big for the channel layer: read it from the database
        if stub or event["seq"] != self.last_seq + 1:
            # A gap (a message lost by the channel layer) or a stub: fill from the database.
            await self._send_stored(upto=event["seq"] if stub else event["seq"] - 1)
            if stub:
                return
        await self._send_event(event)

    async def _send_event(self, event: dict) -> None:
        await self.send_json({"kind": "event", "event": self.snapshots.encode(event)})
        self.last_seq = event["seq"]

    async def _send_stored(self, *, upto: int) -> None:
        """Send the stored events after the last one sent, up to and including ``upto``."""
        while self.last_seq < upto:
            batch = await database_sync_to_async(self._stored)(self.last_seq)
            for stored in batch:
                if stored["seq"] > upto:
                    return
                await self._send_event(stored)
            if len(batch) < REPLAY_BATCH:
                return

    async def run_rewind(self, message):
        seq = int(message["seq"])
        if self.last_seq is not None and self.last_seq > seq:
            self.last_seq = seq
        self.snapshots.reset()
        await self.send_json({"kind": "rewind", "seq": seq})

    async def run_status(self, message):
        if not await self._allowed():
            return
        await self.send_json({"kind": "status", "run": message["run"]})
