"""The comparison workspace and the per-dataset leaderboard (issue 13.4): pages, CSV, REST API."""
from __future__ import annotations

import csv
import io

import pytest
from test_runs_support import make_model, make_run, tiny_genotype

from webapp.comparisons.selectors import metrics_from_summary
from webapp.datasets.models import Dataset
from webapp.runs.models import RunEvent

pytestmark = pytest.mark.django_db


def _events(run, *, losses, dice_steps, memory=123_000_000):
    seq = 0
    for step, loss in enumerate(losses, start=1):
        seq += 1
        RunEvent.objects.create(run=run, seq=seq, type="step", time=float(seq), payload={
            "step": step, "total_steps": len(losses), "losses": {"seg": loss, "entropy": 0.1},
            "memory_bytes": memory + step, "memory_kind": "rss"})
        if step in dice_steps:
            seq += 1
            RunEvent.objects.create(run=run, seq=seq, type="validation", time=float(seq), payload={
                "step": step, "dice": {"a": dice_steps[step][0], "b": dice_steps[step][1]},
                "mean_dice": sum(dice_steps[step]) / 2})


@pytest.fixture
def world(make_user, make_project, media_root):
    owner, outsider = make_user("owner"), make_user("outsider")
    project = make_project(owner, name="Liver study")
    other = make_project(outsider, name="Elsewhere")
    dataset = Dataset.objects.create(project=project, name="Liver CT", source="folder", status="ready",
                                     labels={"0": "background", "1": "a", "2": "b"})
    fast = make_run(project, dataset, status="succeeded", genotype=tiny_genotype(), name="Fast search")
    slow = make_run(project, dataset, status="succeeded", genotype=tiny_genotype(), name="Slow search")
    _events(fast, losses=[1.0, 0.8, 0.5, 0.4], dice_steps={2: (0.3, 0.1), 4: (0.6, 0.4)})
    _events(slow, losses=[1.2, 1.1, 1.0], dice_steps={3: (0.2, 0.2)})
    model = make_model(project, dataset, media_root)
    second = make_model(project, dataset, media_root)
    second.method = "scnas"
    second.mean_dice = 0.9
    second.save()
    foreign = make_run(other, None, status="succeeded")
    return {"owner": owner, "outsider": outsider, "project": project, "dataset": dataset, "fast": fast,
            "slow": slow, "model": model, "second": second, "foreign": foreign}


@pytest.fixture
def owner_client(client, world):
    client.force_login(world["owner"])
    return client


def _url(world, query=""):
    return f"/projects/{world['project'].pk}/compare/{query}"


def test_opens_with_the_newest_models_not_empty(owner_client, world):
    response = owner_client.get(_url(world))
    assert response.status_code == 200
    keys = [i.key for i in response.context["items"]]
    assert keys == [f"model-{world['second'].pk}", f"model-{world['model'].pk}"]
    assert b'id="compare-default"' in response.content


def test_runs_side_by_side_with_overlaid_curves_and_validation_dice(owner_client, world):
    fast, slow = world["fast"], world["slow"]
    response = owner_client.get(_url(world, f"?run={fast.pk}&run={slow.pk}"))
    assert response.status_code == 200
    charts = {c["id"]: c for c in response.context["charts"]}
    assert charts["dice"]["series"] == {"Fast search": [[2.0, 0.2], [4.0, 0.5]], "Slow search": [[3.0, 0.2]]}
    assert charts["loss"]["series"]["Fast search"] == [[1.0, 1.0], [2.0, 0.8], [3.0, 0.5], [4.0, 0.4]]
    items = response.context["items"]
    assert items[0].metrics.per_class == {"a": 0.6, "b": 0.4} and items[0].metrics.source == "validation"
    assert items[0].peak_memory_bytes == 123_000_004 and items[0].memory_kind == "rss"
    assert items[0].figures["parameters"] > 0 and items[0].figures["flops"] > 0
    assert response.context["source"] == "validation"
    text = response.content.decode()
    assert "A test-split evaluation is not available for these items yet" in text
    assert 'id="compare-chart-dice"' in text and 'id="overview-csv"' in text


def test_overview_and_class_tables_download_as_csv(owner_client, world):
    fast, model = world["fast"], world["model"]
    query = f"?run={fast.pk}&model={model.pk}"
    response = owner_client.get(f"/projects/{world['project'].pk}/compare/overview.csv{query}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    # models first, then runs, each in the order asked
    assert [(r["kind"], r["id"]) for r in rows] == [("model", str(model.pk)), ("search", str(fast.pk))]
    assert rows[1]["mean_dice"] == "0.5" and rows[0]["mean_dice"] == "0.375"
    assert rows[0]["dice_split"] == "validation" and int(rows[0]["parameters"]) > 0
    classes = list(csv.DictReader(io.StringIO(owner_client.get(
        f"/projects/{world['project'].pk}/compare/classes.csv{query}").content.decode())))
    assert classes[0]["dice_a"] == "0.5" and classes[0]["dice_b"] == "0.25"
    assert classes[1]["dice_a"] == "0.6" and classes[1]["dice_b"] == "0.4"


@pytest.mark.parametrize("query,message", [
    ("?run=abc", "whole numbers"),
    ("?run=99999999999999999999999", "whole numbers"),
    ("?model=%C2%B2", "whole numbers"),
    ("?run=999999", "no run #999999"),
    ("?model=999999", "no model #999999"),
    ("?" + "&".join(f"run={n}" for n in range(1, 14)), "at most 12"),
])
def test_a_bad_pick_gets_a_clear_message(owner_client, world, query, message):
    response = owner_client.get(_url(world, query))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert owner_client.get(f"/projects/{world['project'].pk}/compare/overview.csv{query}").status_code == 400


def test_another_projects_run_cannot_be_picked_and_outsiders_see_nothing(client, owner_client, world):
    response = owner_client.get(_url(world, f"?run={world['foreign'].pk}"))
    assert response.status_code == 400 and f"no run #{world['foreign'].pk}" in response.content.decode()
    client.force_login(world["outsider"])
    assert client.get(_url(world)).status_code == 404
    assert client.get(f"/api/projects/{world['project'].pk}/comparison/").status_code == 404
    assert client.get(f"/datasets/{world['dataset'].pk}/leaderboard/").status_code == 404


def test_leaderboard_ranks_every_model_of_the_dataset_across_methods(owner_client, world):
    url = f"/datasets/{world['dataset'].pk}/leaderboard/"
    response = owner_client.get(url)
    assert response.status_code == 200
    assert [i.pk for i in response.context["items"]] == [world["second"].pk, world["model"].pk]
    assert [i.method for i in response.context["items"]] == ["scnas", "dints"]
    ascending = owner_client.get(url + "?sort=dice")
    assert [i.pk for i in ascending.context["items"]] == [world["model"].pk, world["second"].pk]
    by_method = owner_client.get(url + "?sort=method")
    assert [i.method for i in by_method.context["items"]] == ["dints", "scnas"]
    bad = owner_client.get(url + "?sort=colour")
    assert bad.status_code == 400 and "Sort by one of" in bad.content.decode()
    rows = list(csv.DictReader(io.StringIO(owner_client.get(
        f"/datasets/{world['dataset'].pk}/leaderboard.csv?sort=-dice").content.decode())))
    assert [(r["rank"], r["id"], r["mean_dice"]) for r in rows] == [
        ("1", str(world["second"].pk), "0.9"), ("2", str(world["model"].pk), "0.375")]


def test_rest_api_gives_the_same_numbers(owner_client, world):
    fast = world["fast"]
    data = owner_client.get(f"/api/projects/{world['project'].pk}/comparison/?run={fast.pk}").json()
    assert data["items"][0]["mean_dice"] == 0.5 and data["items"][0]["dice_per_class"] == {"a": 0.6, "b": 0.4}
    assert data["charts"][0]["series"]["Fast search"] == [[2.0, 0.2], [4.0, 0.5]]
    assert owner_client.get(f"/api/projects/{world['project'].pk}/comparison/?run=x").status_code == 400
    board = owner_client.get(f"/api/datasets/{world['dataset'].pk}/leaderboard/?sort=-dice").json()
    assert [r["id"] for r in board["rows"]] == [world["second"].pk, world["model"].pk]


def test_test_split_metrics_are_read_from_an_evaluation_report():
    """The shape nasengine.evaluation reports (summary per class and metric)."""
    report = {
        "summary": {"liver": {"dice": {"n": 3, "mean": 0.91, "sd": 0.02}, "hd95_mm": {"mean": 4.5}, "nsd": {"mean": 0.8}},
                    "tumour": {"dice": {"n": 3, "mean": None}}},
        "mean_dice": 0.91, "cases": [{"case": "c1"}, {"case": "c2"}, {"case": "c3"}, {"case": "c1"}],
    }
    metrics = metrics_from_summary(report)
    assert metrics.source == "test" and metrics.per_class == {"liver": 0.91, "tumour": None}
    assert metrics.mean == 0.91 and metrics.n_cases == 3 and metrics.extra["hd95_mm"]["liver"] == 4.5
    assert metrics_from_summary(None) is None and metrics_from_summary({"summary": {}}) is None


def test_a_runs_stages_follow_each_other_on_the_x_axis(owner_client, world):
    """C2FNAS counts steps from 1 per stage: a later stage starts where the run so far ended."""
    run = make_run(world["project"], world["dataset"], status="succeeded", name="Staged")
    for seq, (stage, step, loss) in enumerate([("coarse", 1, 1.0), ("coarse", 2, 0.9), ("fine", 1, 0.7)], start=1):
        RunEvent.objects.create(run=run, seq=seq, type="step", time=float(seq),
                                payload={"stage": stage, "step": step, "losses": {"seg": loss}})
    charts = {c["id"]: c for c in owner_client.get(_url(world, f"?run={run.pk}")).context["charts"]}
    assert charts["loss"]["series"]["Staged"] == [[1.0, 1.0], [2.0, 0.9], [3.0, 0.7]]


def test_test_split_metrics_are_read_from_the_evaluations_summary():
    """The shape webapp.evaluations.selectors.summary_for_model returns."""
    summary = {"n_cases": 4, "mean_dice": 0.8, "classes": {
        "liver": {"dice_mean": 0.85, "hd95_mm_mean": 3.0, "nsd_mean": 0.9, "n_cases": 4},
        "tumour": {"dice_mean": 0.75, "hd95_mm_mean": None, "nsd_mean": 0.5, "n_cases": 2}}}
    metrics = metrics_from_summary(summary)
    assert metrics.per_class == {"liver": 0.85, "tumour": 0.75} and metrics.mean == 0.8 and metrics.n_cases == 4
    assert metrics.extra == {"hd95_mm": {"liver": 3.0, "tumour": None}, "nsd": {"liver": 0.9, "tumour": 0.5}}


COMPARISON_ROUTES = [
    ("page", "/projects/{project}/compare/"), ("page", "/projects/{project}/compare/overview.csv"),
    ("page", "/projects/{project}/compare/classes.csv"), ("page", "/datasets/{dataset}/leaderboard/"),
    ("page", "/datasets/{dataset}/leaderboard.csv"), ("api", "/api/projects/{project}/comparison/"),
    ("api", "/api/datasets/{dataset}/leaderboard/"),
]


@pytest.mark.parametrize("kind,template", COMPARISON_ROUTES)
def test_comparison_routes_viewers_read_outsiders_404_anonymous_sign_in(client, world, make_user, kind, template):
    from webapp.projects.models import Membership

    url = template.format(project=world["project"].pk, dataset=world["dataset"].pk)
    anonymous = client.get(url)
    assert anonymous.status_code == (302 if kind == "page" else 401)
    viewer = make_user("viewer")
    Membership.objects.create(project=world["project"], user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    client.force_login(world["outsider"])
    assert client.get(url).status_code == 404
