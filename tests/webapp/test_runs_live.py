"""Runs end to end with a real Celery worker, real Redis and real sockets: a tiny DiNTS search
from the API to success with its events stored in order and streamed over the WebSocket, replay
after a reconnect, retraining into a registered model, cancel, and access checks."""
from __future__ import annotations

import pytest
from test_runs_support import GB, TINY, WORKHORSE_METHOD, make_demo_dataset
from webtesting import WebSocketClosed

from webapp.runs.events import apply_genotype_patch
from webapp.runs.models import Run, RunEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def lab(make_user, make_project, tmp_path):
    owner, outsider = make_user("owner"), make_user("outsider")
    project = make_project(owner)
    make_project(outsider, name="Elsewhere")
    dataset = make_demo_dataset(project, owner, tmp_path)
    return {"owner": owner, "outsider": outsider, "project": project, "dataset": dataset}


def _events_over_socket(ws, until_type="finished", after=0, timeout=300):
    """Send ``after`` and collect events until one of ``until_type`` arrives."""
    import time

    ws.sock.settimeout(timeout)
    ws_send_json(ws, {"after": after})
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv_json()
        if message["kind"] == "event":
            events.append(message["event"])
            if message["event"]["type"] in until_type.split("|"):
                return events
    raise AssertionError(f"no {until_type} event within {timeout}s; got {[e['type'] for e in events]}")


def ws_send_json(ws, obj) -> None:
    import json

    ws.send_text(json.dumps(obj))


def _launch(client, lab, **config):
    response = client.post(f"/api/projects/{lab['project'].pk}/runs/", {
        "dataset": lab["dataset"].pk, "method": WORKHORSE_METHOD, "preset": "tiny", "config": {**TINY, **config},
        "gpu_budget_bytes": 8 * GB,
    }, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_search_streams_every_event_then_retrains_into_a_model(
    client, lab, celery_worker, asgi_live_server, ws_connect, session_cookie, wait_for,
):
    client.force_login(lab["owner"])
    cookie = session_cookie(lab["owner"])
    run_id = _launch(client, lab)
    # Subscribe while the run is queued or running: replay then live, until it finishes.
    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run_id}/", cookies=cookie)
    assert ws.recv_json()["kind"] == "status"
    received = _events_over_socket(ws, "finished|failed")
    run = wait_for(lambda: Run.objects.filter(pk=run_id).exclude(status__in=["queued", "running"]).first(), 60)
    assert run.status == "succeeded", (run.error, celery_worker.output()[-3000:])
    stored = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type"))
    seqs = [s for s, _ in stored]
    assert seqs == list(range(1, len(seqs) + 1)), "stored events have gaps"
    assert [(e["seq"], e["type"]) for e in received] == stored, "the socket missed or repeated events"
    types = {t for _, t in stored}
    assert {"run_started", "step", "architecture", "validation", "checkpoint", "finished"} <= types
    # snapshots after the first come as changes (events.SnapshotEncoder): rebuild them as the page does
    snapshots, last = [], None
    for e in received:
        if e["type"] == "architecture":
            last = apply_genotype_patch(last, e["genotype_patch"]) if "genotype_patch" in e else e["genotype"]
            snapshots.append(last)
    assert len(snapshots) >= 2 and snapshots[0]["continuous"] and any("op_weights" in e for e in snapshots[0]["edges"])
    # The architecture changes while the search learns (what the dashboard graph shows).
    weights = [[(e.get("weight"), e.get("op_weights")) for e in s["edges"]] for s in snapshots]
    assert weights[0] != weights[-1]
    assert run.genotype["format"] == "voxelsearch-genotype" and not run.genotype.get("continuous")
    assert run.best_mean_dice is not None and run.attempts == 1
    assert run.progress["step"] == run.progress["total_steps"]

    # Reconnect half-way: every later event exactly once, then nothing more.
    half = len(stored) // 2
    again = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run_id}/", cookies=cookie)
    assert again.recv_json()["kind"] == "status"
    ws_send_json(again, {"after": half})
    replayed = []
    while True:
        message = again.recv_json()
        if message["kind"] == "replayed":
            assert message["last_seq"] == len(stored)
            break
        replayed.append(message["event"]["seq"])
    assert replayed == list(range(half + 1, len(stored) + 1))
    # The REST endpoint gives the same for scripts.
    page = client.get(f"/api/runs/{run_id}/events?after={half}").json()
    assert [e["seq"] for e in page["events"]] == replayed

    # Retrain the architecture it found: a job streamed the same way, then a registered model.
    response = client.post(f"/api/runs/{run_id}/retrain/", {"preset": "tiny", "gpu_budget_bytes": 8 * GB}, content_type="application/json")
    assert response.status_code == 201, response.content
    retrain_id = response.json()["id"]
    retrain = wait_for(lambda: Run.objects.filter(pk=retrain_id, status__in=["succeeded", "failed", "cancelled"]).first(), 120)
    assert retrain.status == "succeeded", (retrain.error, celery_worker.output()[-3000:])
    model = client.get(f"/api/runs/{retrain_id}/").json()["model"]
    assert model is not None
    detail = client.get(f"/api/models/{model}/").json()
    assert detail["run"] == retrain_id and detail["dataset"] == lab["dataset"].pk
    assert set(detail["val_dice"]) == {"organ", "lesion"}
    assert detail["label_names"]["0"] == "background"
    import io
    import zipfile

    bundle = client.get(detail["bundle_url"])
    assert bundle.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(bundle.streaming_content))).namelist()
    assert any(n.endswith("/weights.pt") for n in names) and any(n.endswith("/bundle.json") for n in names)
    assert not any("checkpoints" in n for n in names)
    assert detail["network_url"] and client.get(detail["network_url"]).status_code == 200
    retrain_types = list(RunEvent.objects.filter(run_id=retrain_id).order_by("seq").values_list("type", flat=True))
    assert retrain_types[0] == "run_started" and retrain_types[-1] == "finished"


def test_cancel_stops_a_running_search(client, lab, celery_worker, wait_for):
    client.force_login(lab["owner"])
    run_id = _launch(client, lab, search_steps=5000, validate_every=0, checkpoint_every=0)
    wait_for(lambda: RunEvent.objects.filter(run_id=run_id, type="step").exists(), 90)
    assert Run.objects.get(pk=run_id).status == "running"
    assert client.post(f"/api/runs/{run_id}/cancel/").status_code == 202
    run = wait_for(lambda: Run.objects.filter(pk=run_id, status__in=["succeeded", "failed", "cancelled"]).first(), 60)
    assert run.status == "cancelled", run.error
    last = RunEvent.objects.filter(run=run).order_by("-seq").first()
    assert last.type == "cancelled" and last.payload["step"] < 5000
    assert (run.out_dir / "checkpoints" / "checkpoint.pt").is_file()  # resumable, not killed


def test_outsiders_can_neither_read_events_nor_subscribe(client, lab, asgi_live_server, ws_connect, session_cookie):
    from test_runs_support import make_run

    run = make_run(lab["project"], lab["dataset"])
    RunEvent.objects.create(run=run, seq=1, type="run_started", time=0.0, payload={})
    client.force_login(lab["outsider"])
    assert client.get(f"/api/runs/{run.pk}/events?after=0").status_code == 404
    assert client.get(f"/api/runs/{run.pk}/").status_code == 404
    for cookies in (session_cookie(lab["outsider"]), None):
        ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run.pk}/", cookies=cookies)
        with pytest.raises(WebSocketClosed) as closed:
            ws.recv_json()
        assert closed.value.code == 4403
    member = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run.pk}/", cookies=session_cookie(lab["owner"]))
    assert member.recv_json()["run"]["status"] == "queued"
    ws_send_json(member, {"after": 0})
    assert member.recv_json()["event"]["seq"] == 1


def test_an_idle_socket_stays_open_and_still_hears_live_messages(lab, asgi_live_server, ws_connect, session_cookie):
    """A run page may wait minutes between events. redis-py 8 times out socket reads after 5 s by
    default while channels-redis blocks 5 s waiting for messages: without a longer socket timeout
    in CHANNEL_LAYERS the idle socket was closed with 1011 after about 5 s."""
    import time

    from test_runs_support import make_run

    from webapp.runs.events import run_changed

    run = make_run(lab["project"], lab["dataset"])
    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run.pk}/", cookies=session_cookie(lab["owner"]))
    ws.sock.settimeout(30)
    assert ws.recv_json()["kind"] == "status"
    ws_send_json(ws, {"after": 0})
    assert ws.recv_json() == {"kind": "replayed", "last_seq": 0}
    time.sleep(12)  # idle, well past the old 5 s limit
    run.transition("running")
    run_changed(run)
    message = ws.recv_json()  # raises WebSocketClosed(1011) if the server dropped the idle socket
    assert message["kind"] == "status" and message["run"]["status"] == "running"


def test_a_retrain_runs_socket_opens_with_its_status(lab, asgi_live_server, ws_connect, session_cookie):
    """The status of a retrain run names its model, a database lookup that must not run in the
    event loop (it raised SynchronousOnlyOperation and the socket closed with 1011)."""
    from test_runs_support import make_run

    run = make_run(lab["project"], lab["dataset"], kind="retrain", status="running")
    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run.pk}/", cookies=session_cookie(lab["owner"]))
    ws.sock.settimeout(30)
    message = ws.recv_json()
    assert message["kind"] == "status" and message["run"]["id"] == run.pk and message["run"]["model_id"] is None
