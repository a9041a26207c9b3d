"""Close a removed member's live sockets at once (issue 14, F10).

Every project-scoped WebSocket consumer (a run's events, a dataset's status) joins a channel-layer
group for its user, ``user-<id>``, when it connects. Removing a member from a project (or deleting
the project) sends ``member.removed`` with the project's id to that group; each of the user's
sockets for that project then stops forwarding and closes with 4403, the code the consumers use
for "no access". Without this a removed member heard a run's events until the consumer's next
periodic access check (about 25 s).

A consumer opts in with two lines::

    class RunEventsConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
        ...
        await join_user_group(self, project_id=run.project_id)   # in connect(), after the check

The user group is left on disconnect by channels itself (it is added to ``consumer.groups``).
"""
from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
MEMBER_REMOVED = "member.removed"  # handled by MemberSocketMixin.member_removed


def user_group(user_id: int) -> str:
    """The channel-layer group every socket of one user joins."""
    return f"user-{int(user_id)}"


async def join_user_group(consumer, *, project_id: int) -> None:
    """Put ``consumer`` (signed in, its access to ``project_id`` checked) in its user's group."""
    user = consumer.scope["user"]
    group = user_group(user.pk)
    consumer.member_project_id = int(project_id)
    # A new list: ``groups`` may still be the class's own; channels discards these on disconnect.
    consumer.groups = [*(consumer.groups or []), group]
    await consumer.channel_layer.group_add(group, consumer.channel_name)


class MemberSocketMixin:
    """Closes the socket with 4403 when its user leaves (or is removed from) its project.

    Put it before the channels base class. Once closed the socket sends nothing more, and it
    leaves the consumer's ``group`` (the run's or dataset's group) so live events stop at once.
    """

    member_project_id: int | None = None
    member_removed_closed = False

    async def member_removed(self, message: dict) -> None:
        if self.member_removed_closed or message.get("project") != self.member_project_id:
            return
        self.member_removed_closed = True
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.group = None
        await super().close(code=CLOSE_FORBIDDEN)

    # Messages already queued for this channel (a run event broadcast just after the removal)
    # still reach the handlers: both send paths drop them once the socket is closed.
    async def send(self, *args, **kwargs):
        if self.member_removed_closed:
            return
        await super().send(*args, **kwargs)

    async def send_json(self, *args, **kwargs):
        if self.member_removed_closed:
            return
        await super().send_json(*args, **kwargs)

    async def close(self, *args, **kwargs):
        if self.member_removed_closed:
            return  # already closed with 4403
        await super().close(*args, **kwargs)


def close_member_sockets(project_id: int, user_id: int) -> None:
    """Tell every socket of ``user_id`` for ``project_id`` to close now (sync; call on commit).

    A channel layer that is down does not undo the removal: the consumers' own access checks
    still close those sockets, only later, so the failure is logged and not raised.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": MEMBER_REMOVED, "project": int(project_id)})
    except Exception:  # noqa: BLE001 - any layer failure: the removal stands, sockets close later
        log.warning("Could not tell user %s's sockets for project %s to close", user_id, project_id, exc_info=True)
