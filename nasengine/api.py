"""Typed Python API of the engine; the CLI and the web app's Celery tasks call these.

Every function takes plain paths and JSON-like settings, reports through an optional
``Reporter`` and stops cooperatively through an optional ``CancelToken``. User errors raise
``DataError`` (bad input files), ``ConfigError`` (bad settings), ``GenotypeError`` (bad
architecture file) or ``BundleError`` (bad model directory), each with a one-line message.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nasengine.config import ConfigError, build_config, config_to_dict, json_schema, merge_values
from nasengine.device import device_memory_bytes, select_device
from nasengine.events import Cancelled, CancelToken, JsonLinesSink, Reporter, as_cancel_token
from nasengine.events.types import FAILED
from nasengine.methods import MemoryEstimate, SearchData, get_method, registry
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import seed_everything
from nasengine.training.retrain import RETRAIN_PRESETS, RetrainConfig, RetrainData

PathLike = str | os.PathLike[str]

EVENTS_FILE = "events.jsonl"
GENOTYPE_FILE = "genotype.json"
CHECKPOINT_DIR = "checkpoints"

__all__ = ["list_methods", "make_demo_data", "control_architecture", "estimate", "search", "retrain", "predict",
           "evaluate", "decide_postprocessing", "make_ensemble",
           "retrain_schema", "make_retrain_config", "checkpoint_exists", "prepare_data",
           "PreparedData", "EVENTS_FILE", "GENOTYPE_FILE", "CHECKPOINT_DIR"]


# ----------------------------------------------------------------------------- methods, demo

def list_methods() -> list[dict[str, Any]]:
    """Each registered method: ``name``, ``paper``, ``description``, ``presets``, ``schema``."""
    return [registry[name].describe() for name in sorted(registry)]


def retrain_schema(method: str | None = None) -> dict[str, Any]:
    """JSON Schema of the retraining settings of ``method`` (its ``retrain_config_class``;
    None: the shared ``RetrainConfig``), with the presets under ``x-presets``."""
    if method is not None:
        return get_method(method).retrain_schema()
    from nasengine.training.retrain import RETRAIN_PRESET_DESCRIPTIONS

    schema = json_schema(RetrainConfig, title="retraining settings")
    schema["x-presets"] = {k: dict(v) for k, v in RETRAIN_PRESETS.items()}
    schema["x-default-preset"] = "default"
    schema["x-preset-descriptions"] = dict(RETRAIN_PRESET_DESCRIPTIONS)
    return schema


def make_demo_data(out_dir: PathLike, kind: str = "blobs", **kwargs: Any) -> Path:
    """Write a synthetic dataset (MSD layout) into ``out_dir``; returns it. ``kind``:
    ``blobs`` (the quick demo: organ + lesion) or ``anatomy`` (the phantom of
    ``nasengine.data.demo.make_anatomy_data``: nested and touching structures, four classes,
    labelled test cases)."""
    from nasengine.data.demo import make_anatomy_data
    from nasengine.data.demo import make_demo_data as _make

    if kind not in ("blobs", "anatomy"):
        raise ConfigError(f"unknown demo data kind {kind!r}; known: blobs, anatomy", "kind")
    make = make_anatomy_data if kind == "anatomy" else _make
    return Path(make(Path(out_dir), **kwargs))


def control_architecture(kind: str, data_dir: PathLike, *, method: str | None = None,
                         preset: str | None = None, overrides: Mapping[str, Any] | None = None,
                         seed: int = 0, patch_size: tuple[int, int, int] | None = None,
                         target_parameters: int | None = None) -> dict[str, Any]:
    """A control genotype for "did the search help?" (issue 12 item 4).

    ``kind="random"``: drawn at random from ``method``'s space under ``preset`` (search
    settings); ``kind="handdesigned"``: MONAI ``DynUNet`` configured from the dataset's plan
    as nnU-Net does, sized to ``target_parameters`` when given (``patch_size`` default: the
    plan's). Retrain either with ``retrain`` like a searched genotype.
    """
    from nasengine.controls import handdesigned_architecture, random_architecture

    if kind == "random":
        if method is None:
            raise ConfigError("a random control needs the method whose space to draw from",
                              "method")
        return random_architecture(method, data_dir, preset=preset, overrides=overrides,
                                   seed=seed)
    if kind == "handdesigned":
        from nasengine.data import compute_fingerprint, load_dataset, make_plan

        spec = load_dataset(Path(data_dir))
        try:
            plan = make_plan(compute_fingerprint(spec), divisor=16, patch_size=patch_size)
            return handdesigned_architecture(plan, patch_size,
                                             target_parameters=target_parameters)
        except ValueError as exc:
            raise ConfigError(str(exc), "patch_size") from None
    raise ConfigError(f"unknown control kind {kind!r}; known: random, handdesigned", "kind")


# ----------------------------------------------------------------------------- data

@dataclasses.dataclass
class PreparedData:
    """A dataset read, checked, planned, preprocessed and split."""

    spec: Any                 # nasengine.data.DatasetSpec
    plan: Any                 # nasengine.data.Plan
    cases: dict[str, Any]     # case id -> PreprocessedCase
    splits: Any               # nasengine.data.Splits
    #: the test split, [{"id", "image", "label"}] relative to the data dir (never trained on)
    test_cases: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def subset(self, ids: list[str]) -> list[Any]:
        return [self.cases[i] for i in ids]

    @property
    def label_names(self) -> list[str]:
        return list(self.plan.label_names)


def prepare_data(data_dir: PathLike, *, divisor: int,
                 patch_size: tuple[int, int, int] | None = None,
                 max_patch: int | tuple[int, int, int] | None = None,
                 val_fraction: float = 0.2, seed: int = 0, test_fraction: float | None = 0.0,
                 num_folds: int | None = None, fold: int | None = None) -> PreparedData:
    """Load an MSD-layout dataset, check and fingerprint it, plan, preprocess and split.

    ``test_fraction`` (None: 0 when dataset.json lists labelled test cases, else 0.2) of the
    labelled cases is held out as the test split (``splits.test``, ``test_cases``); ``fold``
    of ``num_folds`` picks a cross-validation fold (``nasengine.data.splits``).

    Raises ``DataError`` for bad files and ``ConfigError`` for a patch size that the network
    cannot take (not a multiple of ``divisor``).
    """
    from nasengine.data import compute_fingerprint, load_dataset, make_plan, make_splits, preprocess_cases

    spec = load_dataset(Path(data_dir))
    labelled = [c for c in spec.cases if c.label is not None]
    if not labelled:
        from nasengine.data import DataError

        raise DataError(Path(data_dir), "the dataset has no labelled training cases")
    fingerprint = compute_fingerprint(spec)
    try:
        plan = make_plan(fingerprint, divisor=divisor, max_patch=max_patch,
                         patch_size=patch_size)
    except ValueError as exc:
        raise ConfigError(str(exc), "patch_size") from None
    processed = preprocess_cases(labelled, plan)
    cases = {c.case_id: c for c in processed}
    from nasengine.data.splits import resolve_test_fraction, test_case_records

    test_fraction = resolve_test_fraction(test_fraction, getattr(spec, "root", None))
    try:
        splits = make_splits(list(cases), val_fraction=val_fraction, seed=seed,
                             test_fraction=test_fraction, num_folds=num_folds, fold=fold)
    except ValueError as exc:
        field = "fold" if fold is not None else ("test_fraction" if test_fraction else
                                                  "val_fraction")
        raise ConfigError(str(exc), field) from None
    files = {c.case_id: (c.image, c.label) for c in labelled}
    test_cases = test_case_records(getattr(spec, "root", None), splits.test, files)
    return PreparedData(spec=spec, plan=plan, cases=cases, splits=splits, test_cases=test_cases)


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _start_reporter(reporter: Reporter | None, out: Path, resume: bool) -> Reporter:
    """The run's reporter: the caller's, or one writing ``out/events.jsonl``.

    The run owns the event stream and rewinds it once, here, before any loop runs (loops
    never rewind):

    - resuming with a checkpoint: to the ``seq`` of the newest checkpoint over all stages
      (``checkpoint.latest_reporter_seq``), so the events after it are emitted once more and
      never twice;
    - a fresh start with a reporter that has not emitted yet: to 0, so a previous attempt's
      events (a worker that died before its first checkpoint) are dropped from the sinks;
    - a fresh start with a reporter that has already emitted: not at all (the caller's stream
      goes on; nothing it holds is erased).

    A fresh start also deletes the stage checkpoints an earlier run left in ``out``.
    """
    if reporter is None:
        reporter = Reporter([JsonLinesSink(out / EVENTS_FILE)])
    seq = ckpt.latest_reporter_seq(out / CHECKPOINT_DIR) if resume else None
    if seq is not None:
        reporter.rewind(seq)
        return reporter
    # a fresh start: an earlier run's stage checkpoints must not be resumed into this one
    ckpt.clear_stages(out / CHECKPOINT_DIR)
    if reporter.seq == 0:
        reporter.rewind(0)
    return reporter


def checkpoint_exists(out_dir: PathLike) -> bool:
    """True when the run in ``out_dir`` has a checkpoint of any stage (it can resume)."""
    return ckpt.checkpoint_exists(Path(out_dir) / CHECKPOINT_DIR)


def _report_failure(reporter: Reporter, exc: BaseException) -> None:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    try:
        reporter.emit(FAILED, reason=reason, error=type(exc).__name__)
    except Exception:  # noqa: BLE001 - never hide the original error
        pass


# ----------------------------------------------------------------------------- estimate

def estimate(method: str, data_dir: PathLike, preset: str | None = None,
             overrides: Mapping[str, Any] | None = None) -> MemoryEstimate:
    """Memory needed to search and retrain ``method`` on the dataset (headers only are read).

    ``details`` also holds the resolved config and, on CUDA, ``device_memory_bytes``.
    """
    from nasengine.data import load_dataset

    m = get_method(method)
    config = m.make_config(preset, overrides)
    spec = load_dataset(Path(data_dir))
    result = m.estimate_memory(config, len(spec.channel_names), len(spec.labels))
    details = dict(result.details)
    details.setdefault("in_channels", len(spec.channel_names))
    details.setdefault("out_channels", len(spec.labels))
    details.setdefault("config", config_to_dict(config))
    try:
        total = device_memory_bytes(select_device())
    except RuntimeError:
        total = None
    if total is not None:
        details["device_memory_bytes"] = total
    return MemoryEstimate(search_bytes=int(result.search_bytes),
                          retrain_bytes=int(result.retrain_bytes), details=details)


# ----------------------------------------------------------------------------- search

def search(method: str, data_dir: PathLike, out_dir: PathLike, preset: str | None = None,
           overrides: Mapping[str, Any] | None = None, reporter: Reporter | None = None,
           cancel: CancelToken | None = None, resume: bool = False,
           device: torch.device | str | None = None) -> dict[str, Any]:
    """Search an architecture; writes ``genotype.json``, ``plan.json``, ``splits.json``,
    ``config.json``, ``events.jsonl`` (when no reporter is given) and ``checkpoints/`` into
    ``out_dir``, and returns the genotype.

    ``resume=True`` continues from ``out_dir/checkpoints`` exactly where the run stopped.
    Raises ``Cancelled`` after a cancelled run wrote its checkpoint.
    """
    from nasengine.genotype import dump, validate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reporter = _start_reporter(reporter, out, resume)
    try:
        m = get_method(method)
        config = m.make_config(preset, overrides)
        settings = m.data_settings(config)
        dev = device if isinstance(device, torch.device) else select_device(device)
        prepared = prepare_data(data_dir, divisor=settings.divisor,
                                patch_size=settings.patch_size, max_patch=settings.max_patch,
                                val_fraction=settings.val_fraction, seed=settings.seed)
        from nasengine.data import DataFactory

        plan = prepared.plan
        factory = DataFactory(cases=prepared.cases, train_ids=prepared.splits.train,
                              val_ids=prepared.splits.val, patch_size=plan.patch_size,
                              batch_size=settings.batch_size,
                              fg_oversample=settings.fg_oversample, seed=settings.seed)
        ids1, ids2 = factory.split(settings.arch_split)
        splits = dataclasses.replace(prepared.splits, train1=ids1, train2=ids2)
        data = SearchData(
            plan=plan, train1=factory.loader(ids1, seed=settings.seed),
            train2=factory.loader(ids2, seed=settings.seed + 1),
            val_cases=factory.val_cases(), in_channels=plan.in_channels,
            out_channels=plan.out_channels, label_names=prepared.label_names, device=dev,
            factory=factory)
        _write_json(out / "plan.json", plan.to_dict())
        _write_json(out / "splits.json", splits.to_dict())
        _write_json(out / "config.json", {"method": m.name, "preset": preset or m.default_preset,
                                          "config": config_to_dict(config)})
        seed_everything(settings.seed)
        genotype = m.search(data, config, reporter, out / CHECKPOINT_DIR,
                            as_cancel_token(cancel), resume)
        genotype = validate(genotype)
        dump(genotype, out / GENOTYPE_FILE)
        return genotype
    except Cancelled:
        raise
    except BaseException as exc:
        _report_failure(reporter, exc)
        raise
    finally:
        reporter.close()


# ----------------------------------------------------------------------------- retrain

def _load_genotype(genotype: PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    from nasengine.genotype import load, validate

    if isinstance(genotype, Mapping):
        return validate(dict(genotype)), None
    path = Path(genotype)
    if not path.exists():
        from nasengine.genotype import GenotypeError

        raise GenotypeError(str(path), "file does not exist")
    return load(path), str(path)


def _divisor(genotype: dict[str, Any]) -> int:
    method = registry.get(genotype.get("method", ""))
    if method is not None:
        return int(method.patch_divisor(genotype))
    levels = [int(n["level"]) for n in genotype["nodes"]]
    meta = genotype.get("meta") or {}
    return int(meta.get("divisor") or 2 ** max(levels, default=0))


def _retrain_method(method: str | None, genotype: Mapping[str, Any] | None = None):
    """The registered method whose retraining settings apply, or None for the shared ones:
    ``method`` when given (it must exist), else the genotype's ``method`` if registered."""
    if method is not None:
        return get_method(method)
    name = (genotype or {}).get("method")
    return registry.get(name) if isinstance(name, str) else None


def make_retrain_config(preset: str | None = None,
                        overrides: Mapping[str, Any] | None = None,
                        method: str | None = None) -> Any:
    """Retraining config from a preset and overrides: ``method``'s own config class and
    presets (``SearchMethod.retrain_config_class`` / ``retrain_presets_all``), or the shared
    ``RetrainConfig`` and ``RETRAIN_PRESETS`` when ``method`` is None; the preset defaults to
    ``default`` (nnU-Net's recipe)."""
    if method is not None:
        return get_method(method).make_retrain_config(preset, overrides)
    preset = preset or "default"
    if preset not in RETRAIN_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known presets: "
                          f"{', '.join(RETRAIN_PRESETS)}", "preset")
    return build_config(RetrainConfig, merge_values(RETRAIN_PRESETS[preset], overrides))


def retrain(genotype: PathLike | Mapping[str, Any], data_dir: PathLike, out_dir: PathLike,
            preset: str | None = None, overrides: Mapping[str, Any] | None = None,
            reporter: Reporter | None = None, cancel: CancelToken | None = None,
            resume: bool = False, device: torch.device | str | None = None,
            method: str | None = None) -> Path:
    """Train the architecture from scratch on the dataset; ``out_dir`` becomes a model bundle
    (plus ``events.jsonl`` when no reporter is given and ``checkpoints/``). Returns ``out_dir``.

    The retraining settings (``preset``, ``overrides``) are those of ``method``, by default
    the genotype's method when it is registered, else the shared ``RetrainConfig``.
    """
    from nasengine.training.retrain import retrain as _retrain

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reporter = _start_reporter(reporter, out, resume)
    try:
        doc, genotype_path = _load_genotype(genotype)
        retrain_method = _retrain_method(method, doc)
        if retrain_method is not None:
            config = retrain_method.make_retrain_config(preset, overrides)
        else:
            config = make_retrain_config(preset, overrides)
        dev = device if isinstance(device, torch.device) else select_device(device)
        prepared = prepare_data(data_dir, divisor=_divisor(doc), patch_size=config.patch_size,
                                max_patch=config.max_patch, val_fraction=config.val_fraction,
                                seed=config.seed,
                                test_fraction=getattr(config, "test_fraction", 0.0),
                                num_folds=getattr(config, "num_folds", None),
                                fold=getattr(config, "fold", None))
        plan, spec = prepared.plan, prepared.spec
        if doc["in_channels"] != plan.in_channels or doc["out_channels"] != plan.out_channels:
            raise ConfigError(
                f"the architecture takes {doc['in_channels']} channel(s) and predicts "
                f"{doc['out_channels']} classes, but the dataset has {plan.in_channels} "
                f"channel(s) and {plan.out_channels} classes", "genotype")
        from nasengine.data import PatchLoader

        train_ids = prepared.splits.train
        data = RetrainData(
            plan=plan,
            train=PatchLoader(prepared.subset(train_ids), plan.patch_size, config.batch_size,
                              fg_oversample=config.fg_oversample, seed=config.seed),
            val_cases=prepared.subset(prepared.splits.val), in_channels=plan.in_channels,
            out_channels=plan.out_channels,
            labels=dict(zip(plan.label_ids, plan.label_names)),
            channel_names=list(plan.channel_names),
            source={"dataset": getattr(spec, "name", ""), "data_dir": str(Path(data_dir)),
                    "genotype_file": genotype_path, "method": doc.get("method"),
                    "train_cases": list(train_ids), "val_cases": list(prepared.splits.val),
                    "test_cases": prepared.test_cases,
                    "fold": ({"fold": prepared.splits.fold,
                              "num_folds": prepared.splits.num_folds}
                             if prepared.splits.fold is not None else None),
                    "preset": preset or (retrain_method.default_retrain_preset
                                         if retrain_method else "default"),
                    "retrain_settings": retrain_method.name if retrain_method else "shared"})
        return _retrain(doc, data, config, reporter, out, as_cancel_token(cancel),
                        resume=resume, device=dev)
    except Cancelled:
        raise
    except BaseException as exc:
        _report_failure(reporter, exc)
        raise
    finally:
        reporter.close()


# ----------------------------------------------------------------------------- predict

def predict(model_dir: PathLike | list[PathLike], input_path: PathLike, output_path: PathLike, *,
            sw_batch_size: int = 4, overlap: float = 0.5, mirror: bool = False,
            postprocess: str = "auto", device: torch.device | str | None = None,
            progress: Any = None) -> Path:
    """Segment one NIfTI volume; the output label NIfTI (uint8) has the input's shape and
    affine. Returns ``output_path``.

    ``model_dir``: a model bundle, an ensemble folder (``make_ensemble``) or a list of bundles
    (their softmax outputs are averaged). ``overlap``: share of each sliding window overlapping
    the next (0.5); ``mirror``: mirroring test-time augmentation (8 flipped copies);
    ``postprocess``: ``auto`` (the model's decision from ``decide_postprocessing``), ``none``
    or ``lcc`` (largest connected component of every class).
    """
    from nasengine.inference.predict import predict_volume

    return predict_volume(model_dir, input_path, output_path, sw_batch_size=sw_batch_size,
                          overlap=overlap, mirror=mirror, postprocess=postprocess,
                          device=device, progress=progress)


def evaluate(model_dir: PathLike | list[PathLike], data_dir: PathLike | None = None,
             cases: list[Any] | None = None, *, overlap: float = 0.5, mirror: bool = False,
             postprocess: str = "auto", tolerance_mm: float | None = None,
             sw_batch_size: int = 4, device: torch.device | str | None = None,
             progress: Any = None) -> dict[str, Any]:
    """Score a model on held-out labelled cases (default: its test split) through the same
    prediction ``predict`` makes, each in its input's own geometry: per case and class Dice,
    95% Hausdorff distance (mm), normalised surface Dice (``tolerance_mm``, 1 mm by default)
    and volume error, with a per-class summary. Returns a JSON-able report
    (``nasengine.evaluation.report_csv`` turns it into CSV)."""
    from nasengine.evaluation import DEFAULT_NSD_TOLERANCE_MM
    from nasengine.evaluation import evaluate as _evaluate

    return _evaluate(model_dir, data_dir, cases, overlap=overlap, mirror=mirror,
                     postprocess=postprocess,
                     tolerance_mm=DEFAULT_NSD_TOLERANCE_MM if tolerance_mm is None else tolerance_mm,
                     sw_batch_size=sw_batch_size, device=device, progress=progress)


def decide_postprocessing(model_dir: PathLike, data_dir: PathLike | None = None, *,
                          overlap: float = 0.5, mirror: bool = False,
                          device: torch.device | str | None = None,
                          progress: Any = None) -> dict[str, Any]:
    """Decide on the model's validation cases, per class, whether keeping the largest
    connected component improves Dice (nnU-Net's rule); store it in the model folder's
    ``postprocessing.json`` and return it."""
    from nasengine.inference.decide import decide_postprocessing as _decide

    return _decide(model_dir, data_dir, overlap=overlap, mirror=mirror, device=device,
                   progress=progress)


def make_ensemble(out_dir: PathLike, model_dirs: list[PathLike], *,
                  folds: list[int] | None = None) -> Path:
    """Write an ensemble folder naming ``model_dirs`` (e.g. the fold models of one
    architecture); ``predict`` and ``evaluate`` accept it like one model."""
    from nasengine.inference.ensemble import write_ensemble

    return write_ensemble(out_dir, model_dirs, folds=folds)
