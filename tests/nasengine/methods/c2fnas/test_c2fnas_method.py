"""The C2FNAS plug-in through ``nasengine.api`` on the demo data (local executor): the paper
preset pins sec. 4.1, the tiny search's stages, candidates and events, a candidate cancelled
mid-training resumed from its own checkpoint and recorded once, and retrain -> predict of the
result."""
from __future__ import annotations

import collections

import pytest

from nasengine import api
from nasengine.config import ConfigError
from nasengine.events import CallableCancelToken, Cancelled
from nasengine.events.sinks import read_events
from nasengine.genotype import validate
from nasengine.methods import get_method
from nasengine.methods.c2fnas import METHOD
from nasengine.methods.c2fnas.search import (
    FINAL_STAGE,
    FINE_SEARCH_STAGE,
    SCALING_SHARE,
    SUPERNET_END,
    overlap_for_stride,
    progress_ends,
)
from nasengine.methods.c2fnas.space import enumerate_codes


def test_paper_preset_pins_the_paper():
    c = METHOD.make_config("paper")
    assert (c.num_cells, c.depth, c.clusters, c.init_per_cluster, c.candidates, c.explore) == \
        (12, 3, 8, 2, 50, 0.2)
    assert (c.warmup_steps, c.steps, c.lr_start, c.lr_peak, list(c.lr_milestones), c.lr_gamma) == \
        (1000, 20000, 0.0025, 0.02, [8000, 16000], 0.5)
    assert (c.momentum, c.weight_decay, c.batch_size, list(c.patch_size)) == \
        (0.9, 4e-5, 8, [96, 96, 96])
    assert (c.val_stride, c.fine_val_stride, c.fine_candidates, c.supernet_step_factor) == \
        (16, 48, 2000, 2)
    assert c.scaling_multipliers == [] and METHOD.data_settings(c).divisor == 16
    retrain = METHOD.make_retrain_config("paper")
    assert (retrain.steps, list(retrain.lr_milestones)) == (40000, [16000, 32000])


def test_tiny_preset_is_a_handful_of_short_candidates():
    c = METHOD.make_config("tiny")
    assert list(c.patch_size) == [32, 32, 32] and c.candidates <= 4
    assert c.warmup_steps + c.steps <= 4 and c.fine_candidates <= 4
    assert len(enumerate_codes(c.num_cells, c.depth)) >= c.candidates


@pytest.mark.parametrize("overrides,field", [
    ({"patch_size": [36, 32, 32]}, "patch_size"),
    ({"depth": 3}, "depth"),            # 6 resampling cells do not fit in the tiny 5
    ({"clusters": 6}, "clusters"),      # the tiny space has 5 topologies
    ({"lr_milestones": [3, 1]}, "lr_milestones"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        METHOD.make_config("tiny", overrides)


def test_stride_becomes_the_sliding_window_overlap():
    assert overlap_for_stride(16, (96, 96, 96)) == pytest.approx(5 / 6)
    assert overlap_for_stride(48, (96, 96, 96)) == pytest.approx(0.5)
    assert overlap_for_stride(32, (32, 32, 32)) == 0.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return api.make_demo_data(tmp_path_factory.mktemp("demo"), n_cases=4, shape=(32, 32, 32))


@pytest.fixture(scope="module")
def searched(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    genotype = api.search("c2fnas", demo, out, preset="tiny", device="cpu")
    return out, genotype, read_events(out / api.EVENTS_FILE)


def test_tiny_search_trains_each_candidate_once_in_its_own_stage(searched):
    out, genotype, events = searched
    config = METHOD.make_config("tiny")
    finished = [e for e in events if e["type"] == "c2fnas.candidate_finished"]
    assert len(finished) == config.candidates
    assert len({e["candidate"] for e in finished}) == config.candidates
    assert finished[-1]["cluster_counts"] and sum(finished[-1]["cluster_counts"]) == \
        config.candidates
    steps = [e for e in events if e["type"] == "step" and e["stage"].startswith("coarse-")]
    per_candidate = collections.Counter((e["stage"], e["candidate"]) for e in steps)
    assert len(per_candidate) == config.candidates
    for (stage, cand), n in per_candidate.items():
        assert stage == f"coarse-{cand[:16]}" and n == config.warmup_steps + config.steps
        assert (out / api.CHECKPOINT_DIR / f"{stage}.pt").exists()
    validations = [e for e in events if e["type"] == "validation"]
    assert {e["candidate"] for e in validations} == {e["candidate"] for e in finished}
    supernet = [e for e in events if e["type"] == "step" and e["stage"] == "supernet"]
    assert len(supernet) == config.supernet_step_factor * config.steps + config.warmup_steps
    fine = [e for e in events if e["type"] == "c2fnas.fine_candidate"]
    assert len(fine) == config.fine_candidates
    progress = [e["progress"] for e in events if "progress" in e]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)


def test_fine_search_reports_progress_in_core_step_events(searched):
    """The bar and the phase of a run page follow ``run_started`` / ``step`` events only: the
    fine search must emit them (one step per scored colouring), and the search must end at
    overall progress 1.0 with phase ``done``."""
    _, _, events = searched
    config = METHOD.make_config("tiny")
    core = [e for e in events if e["type"] in ("run_started", "step")]
    fine = [e for e in core if e["stage"] == FINE_SEARCH_STAGE]
    assert fine[0]["type"] == "run_started" and fine[0]["phase"] == "fine_search"
    assert fine[0]["progress"] == pytest.approx(SUPERNET_END)
    steps = fine[1:]
    assert [e["type"] for e in steps] == ["step"] * config.fine_candidates
    assert [e["step"] for e in steps] == list(range(1, config.fine_candidates + 1))
    assert {e["total_steps"] for e in steps} == {config.fine_candidates}
    assert {e["phase"] for e in steps} == {"fine_search"}
    fine_progress = [e["progress"] for e in steps]
    assert fine_progress == sorted(set(fine_progress)) and fine_progress[0] > SUPERNET_END
    assert fine_progress[-1] == pytest.approx(1.0)
    scored = [e for e in events if e["type"] == "c2fnas.fine_candidate"]
    assert [e["metrics"].get("mean_dice") for e in steps] == [e["mean_dice"] for e in scored]
    # the whole search as the web app reads it: every core event places the bar (one without
    # ``progress``, a candidate's ``run_started``, keeps it where it was), never back
    overall: list[float] = []
    for e in core:
        overall.append(e.get("progress", overall[-1] if overall else 0.0))
    assert core[0]["progress"] == 0.0 and overall == sorted(overall)
    last = core[-1]
    assert (last["type"], last["stage"], last["phase"]) == ("step", FINAL_STAGE, "done")
    assert last["progress"] == 1.0 and last["step"] == last["total_steps"]
    assert [e["type"] for e in events[-2:]] == ["architecture", "finished"]
    assert events.index(last) == len(events) - 3


def test_progress_shares_cover_only_the_stages_a_config_runs():
    tiny = METHOD.make_config("tiny")
    ends = progress_ends(tiny)
    assert (ends.coarse, ends.supernet, ends.fine_search, ends.scaling) == \
        pytest.approx((0.6, SUPERNET_END, 1.0, 1.0))
    coarse_only = progress_ends(METHOD.make_config("tiny", {"fine_stage": False}))
    assert coarse_only.coarse == coarse_only.fine_search == 1.0
    scaled = progress_ends(METHOD.make_config("tiny", {"scaling_multipliers": [0.5, 1.0]}))
    assert scaled.fine_search == pytest.approx(1.0 - SCALING_SHARE) and scaled.scaling == 1.0
    assert scaled.supernet < scaled.fine_search


def test_tiny_search_result_is_the_best_topology_coloured_by_the_fine_stage(searched):
    _, genotype, events = searched
    doc = validate(genotype)
    assert doc["method"] == "c2fnas" and doc["kind"] == "ushape"
    finished = [e for e in events if e["type"] == "c2fnas.candidate_finished"]
    best = max(finished, key=lambda e: e["mean_dice"])
    assert doc["meta"]["topology_code"] == best["topology_code"]
    fine = [e for e in events if e["type"] == "c2fnas.fine_candidate"]
    top = max(fine, key=lambda e: e["mean_dice"])
    assert doc["meta"]["cell_ops"] == top["ops"]
    assert [n["op"]["name"] for n in doc["nodes"] if n.get("op")] == top["ops"]
    assert events[-1]["type"] == "finished" and events[-1]["genotype"] == genotype


def test_cancelled_candidate_resumes_from_its_checkpoint_and_is_recorded_once(demo, searched,
                                                                                tmp_path):
    _, reference, reference_events = searched
    checks = {"n": 0}

    def cancel_in_second_candidate():
        checks["n"] += 1
        return checks["n"] == 5  # candidate 1 has 3 steps: check 5 is inside candidate 2

    with pytest.raises(Cancelled):
        api.search("c2fnas", demo, tmp_path, preset="tiny", device="cpu",
                   cancel=CallableCancelToken(cancel_in_second_candidate))
    first = read_events(tmp_path / api.EVENTS_FILE)
    assert first[-1]["type"] == "cancelled" and first[-1]["stage"].startswith("coarse-")
    genotype = api.search("c2fnas", demo, tmp_path, preset="tiny", device="cpu", resume=True)
    events = read_events(tmp_path / api.EVENTS_FILE)
    assert genotype == reference
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finished = [e["candidate"] for e in events if e["type"] == "c2fnas.candidate_finished"]
    assert len(finished) == len(set(finished)) == METHOD.make_config("tiny").candidates
    resumed = [e for e in events if e["type"] == "run_started" and e.get("resumed_from_step")]
    assert len(resumed) == 1 and resumed[0]["resumed_from_step"] >= 1
    key = [(e["type"], e.get("stage"), e.get("candidate"), e.get("step")) for e in events
           if e["type"] not in ("run_started", "checkpoint", "cancelled")]
    ref = [(e["type"], e.get("stage"), e.get("candidate"), e.get("step")) for e in
           reference_events if e["type"] not in ("run_started", "checkpoint", "cancelled")]
    assert key == ref


def test_result_retrains_and_predicts(demo, searched, tmp_path):
    _, genotype, _ = searched
    bundle = api.retrain(genotype, demo, tmp_path / "model", preset="tiny",
                         overrides={"export": False}, device="cpu")
    image = sorted((demo / "imagesTr").iterdir())[0]
    out = api.predict(bundle, image, tmp_path / "pred.nii.gz", device="cpu")
    assert out.exists()


def test_registered_under_its_name():
    assert get_method("c2fnas") is METHOD and "Coarse-to-Fine" in METHOD.paper


def test_channel_scaling_stage_trains_each_multiplier_and_keeps_the_best(demo, tmp_path):
    overrides = {"candidates": 2, "fine_stage": False, "scaling_multipliers": [0.5, 1.0]}
    genotype = api.search("c2fnas", demo, tmp_path, preset="tiny", overrides=overrides,
                          device="cpu")
    events = read_events(tmp_path / api.EVENTS_FILE)
    scaled = [e for e in events if e["type"] == "c2fnas.scaling_result"]
    assert [e["base_channels"] for e in scaled] == [4, 8]
    best = max(scaled, key=lambda e: (e["mean_dice"], -e["base_channels"]))
    stem = next(n for n in genotype["nodes"] if n["id"] == "stem")
    assert stem["channels"] == best["base_channels"]
    assert genotype["meta"]["cell_ops"] == ["c2fnas_3d"] * 5  # no fine stage: the coarse colouring


def test_fine_search_cancelled_and_resumed_reports_each_colouring_once(demo, searched, tmp_path):
    _, reference, _ = searched
    fine_state = tmp_path / api.CHECKPOINT_DIR / f"{FINE_SEARCH_STAGE}.pt"
    # the first check after the first colouring is scored and saved: inside the fine search
    with pytest.raises(Cancelled):
        api.search("c2fnas", demo, tmp_path, preset="tiny", device="cpu",
                   cancel=CallableCancelToken(fine_state.exists))
    first = read_events(tmp_path / api.EVENTS_FILE)
    assert first[-1]["type"] == "cancelled" and first[-1]["stage"] == FINE_SEARCH_STAGE
    genotype = api.search("c2fnas", demo, tmp_path, preset="tiny", device="cpu", resume=True)
    events = read_events(tmp_path / api.EVENTS_FILE)
    assert genotype == reference
    steps = [e for e in events if e["type"] == "step" and e["stage"] == FINE_SEARCH_STAGE]
    assert [e["step"] for e in steps] == list(range(1, METHOD.make_config("tiny").fine_candidates + 1))
    core = [e for e in events if e["type"] in ("run_started", "step") and "progress" in e]
    overall = [e["progress"] for e in core]
    assert overall == sorted(overall) and overall[-1] == 1.0 and core[-1]["phase"] == "done"
