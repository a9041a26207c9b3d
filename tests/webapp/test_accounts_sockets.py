"""Issue 14, F10: removing a member closes their run and dataset sockets for that project at once
(4403), while their sockets for other projects stay open.

The consumers opt in with two lines each (``MemberSocketMixin`` first in the bases and
``join_user_group(self, project_id=...)`` after the access check in ``connect``); the in-process
tests route to the real consumers, and one test runs them behind the live server.
"""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path
from test_runs_support import make_run

from webapp.common.sockets import close_member_sockets
from webapp.datasets.consumers import DatasetStatusConsumer
from webapp.datasets.models import Dataset
from webapp.projects import services
from webapp.projects.models import Membership
from webapp.runs.consumers import RunEventsConsumer
from webapp.runs.events import group_name as run_group

pytestmark = pytest.mark.django_db(transaction=True)



application = URLRouter([
    path("ws/runs/<int:run_id>/", RunEventsConsumer.as_asgi()),
    path("ws/datasets/<int:dataset_id>/", DatasetStatusConsumer.as_asgi()),
])


@pytest.fixture
def lab(make_user, make_project):
    owner, bob = make_user("owner"), make_user("bob")
    project = make_project(owner, viewers=[bob])
    other = make_project(owner, name="Other", viewers=[bob])
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    other_dataset = Dataset.objects.create(project=other, name="E", source="files")
    run = make_run(project, dataset)
    return {"owner": owner, "bob": bob, "project": project, "dataset": dataset, "run": run, "other_dataset": other_dataset}


async def _open(url, user):
    communicator = WebsocketCommunicator(application, url)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _closed_with(communicator, timeout=3.0):
    """The close code the server sent next, skipping any data sent before it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        output = await communicator.receive_output(timeout=max(0.01, deadline - asyncio.get_running_loop().time()))
        if output["type"] == "websocket.close":
            return output.get("code")


def test_removing_a_member_closes_their_run_and_dataset_sockets_at_once(lab):
    async def scenario():
        bob = lab["bob"]
        run_socket = await _open(f"/ws/runs/{lab['run'].pk}/", bob)
        assert (await run_socket.receive_json_from())["kind"] == "status"
        await run_socket.send_json_to({"after": 0})
        assert (await run_socket.receive_json_from())["kind"] == "replayed"
        dataset_socket = await _open(f"/ws/datasets/{lab['dataset'].pk}/", bob)
        assert (await dataset_socket.receive_json_from())["type"] == "status"
        elsewhere = await _open(f"/ws/datasets/{lab['other_dataset'].pk}/", bob)
        await elsewhere.receive_json_from()
        owners_socket = await _open(f"/ws/runs/{lab['run'].pk}/", lab["owner"])
        await owners_socket.receive_json_from()

        membership = await database_sync_to_async(Membership.objects.get)(project=lab["project"], user=bob)
        started = asyncio.get_running_loop().time()
        await database_sync_to_async(services.member_remove)(membership=membership, actor=lab["owner"])
        assert await _closed_with(run_socket) == 4403
        assert await _closed_with(dataset_socket) == 4403
        assert asyncio.get_running_loop().time() - started < 3  # at once, not at the next 30 s check
        # Bob's socket for the other project and the owner's socket stay open.
        assert await elsewhere.receive_nothing(timeout=0.5)
        assert await owners_socket.receive_nothing(timeout=0.2)
        for communicator in (elsewhere, owners_socket, run_socket, dataset_socket):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_closed_socket_gets_no_live_event_after_removal(lab):
    """Even an event broadcast right after the removal message is not forwarded."""
    from channels.layers import get_channel_layer

    async def scenario():
        bob, run = lab["bob"], lab["run"]
        socket = await _open(f"/ws/runs/{run.pk}/", bob)
        await socket.receive_json_from()
        await socket.send_json_to({"after": 0})
        await socket.receive_json_from()
        await database_sync_to_async(close_member_sockets)(lab["project"].pk, bob.pk)
        event = {"seq": 1, "type": "log", "payload": {"message": "secret"}}
        await get_channel_layer().group_send(run_group(run.pk), {"type": "run.event", "event": event})
        first = await socket.receive_output(timeout=3)
        assert first["type"] == "websocket.close" and first["code"] == 4403, first
        later = [] if await socket.receive_nothing(timeout=0.5) else [await socket.receive_output()]
        assert later == [], later
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_removal_message_for_another_project_leaves_the_socket_open(lab):
    async def scenario():
        socket = await _open(f"/ws/runs/{lab['run'].pk}/", lab["bob"])
        await socket.receive_json_from()
        await database_sync_to_async(close_member_sockets)(lab["other_dataset"].project_id, lab["bob"].pk)
        assert await socket.receive_nothing(timeout=0.5)
        await socket.send_json_to({"ping": 1})
        assert (await socket.receive_json_from())["kind"] == "pong"
        await socket.disconnect()

    async_to_sync(scenario)()


def test_removal_closes_the_live_servers_run_socket(lab, client, asgi_live_server, ws_connect, session_cookie):
    from webtesting import WebSocketClosed

    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{lab['run'].pk}/", cookies=session_cookie(lab["bob"]))
    assert ws.recv_json()["kind"] == "status"
    client.force_login(lab["owner"])
    membership = Membership.objects.get(project=lab["project"], user=lab["bob"])
    assert client.delete(f"/api/projects/{lab['project'].pk}/members/{membership.pk}/").status_code == 204
    ws.sock.settimeout(5)
    with pytest.raises(WebSocketClosed) as closed:
        while True:
            ws.recv_json()
    assert closed.value.code == 4403
