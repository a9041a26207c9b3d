"""Model bundle: a directory that holds everything needed to segment a new volume.

::

    bundle.json    {"format": "voxelsearch-model", "version": 1, "method", "labels" {id: name},
                    "channel_names", "validation" {"dice" {class: float|null}, "mean_dice"},
                    "source" {...}, "files" {...}, "exports" {...}, "created",
                    "test_cases" [{"id", "image", "label"}] (relative to the data dir: the
                    held-out split the model never saw), "fold" {"fold", "num_folds"} | null}
    genotype.json  the architecture (nasengine.genotype format)
    plan.json      preprocessing plan (spacing, patch size, normalisation, labels)
    weights.pt     state dict of the network, loaded with torch.load(weights_only=True)
    network.pt2    torch.export program (when export worked), network.onnx likewise

Nothing in a bundle is executed on load: JSON and a tensor-only state dict.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasengine.events.reporter import plain
from nasengine.genotype import validate

BUNDLE_FORMAT = "voxelsearch-model"
BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"
GENOTYPE_FILE = "genotype.json"
PLAN_FILE = "plan.json"
WEIGHTS_FILE = "weights.pt"


class BundleError(ValueError):
    """A model directory that is not a readable bundle; ``str()`` is one line."""


@dataclasses.dataclass
class ModelBundle:
    path: Path
    info: dict[str, Any]
    genotype: dict[str, Any]
    plan: dict[str, Any]

    @property
    def labels(self) -> dict[int, str]:
        return {int(k): v for k, v in self.info["labels"].items()}

    @property
    def method(self) -> str:
        return self.info.get("method", "")

    def plan_object(self) -> Any:
        """The plan as ``nasengine.data.plan.Plan``."""
        from nasengine.data.plan import Plan

        return Plan.from_dict(self.plan)


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plain(doc), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _plan_dict(plan: Any) -> dict[str, Any]:
    if isinstance(plan, Mapping):
        return dict(plan)
    if hasattr(plan, "to_dict"):
        return plan.to_dict()
    if dataclasses.is_dataclass(plan):
        return dataclasses.asdict(plan)
    raise TypeError(f"cannot serialise plan {plan!r}")


def network_from_genotype(genotype: dict[str, Any]) -> nn.Module:
    """Discrete network of a genotype: the network plan of a hand-designed control
    (``meta.network_plan``: MONAI ``DynUNet``, see ``nasengine.controls.handdesigned``), else
    the method's builder when it is registered, else the generic
    ``nasengine.genotype.build_network``."""
    from nasengine.controls.handdesigned import NETWORK_PLAN_KEY, build_planned_network
    from nasengine.methods import registry

    plan = (genotype.get("meta") or {}).get(NETWORK_PLAN_KEY)
    if isinstance(plan, Mapping):
        return build_planned_network(plan)

    method = registry.get(genotype.get("method", ""))
    if method is not None:
        return method.build_network(genotype)
    from nasengine.genotype import build_network

    return build_network(genotype)


def write_bundle(out_dir: str | os.PathLike[str], *, network: nn.Module,
                 genotype: dict[str, Any], plan: Any, labels: Mapping[int, str],
                 channel_names: Sequence[str], dice: Mapping[str, float | None] | None = None,
                 mean_dice: float | None = None, source: Mapping[str, Any] | None = None,
                 exports: Mapping[str, Any] | None = None,
                 test_cases: Sequence[Mapping[str, Any]] | None = None,
                 fold: Mapping[str, Any] | None = None) -> Path:
    """Write a bundle into ``out_dir`` (created); ``bundle.json`` is written last.

    ``test_cases`` (``[{"id", "image", "label"}]``) and ``fold`` (``{"fold", "num_folds"}``
    of a cross-validation model, else None) go top-level into ``bundle.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / WEIGHTS_FILE)
    _write_json(out / GENOTYPE_FILE, genotype)
    _write_json(out / PLAN_FILE, _plan_dict(plan))
    info = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "method": genotype.get("method", ""),
        "labels": {str(int(k)): str(v) for k, v in sorted(labels.items())},
        "channel_names": list(channel_names),
        "in_channels": genotype.get("in_channels"), "out_channels": genotype.get("out_channels"),
        "validation": {"dice": dict(dice or {}), "mean_dice": mean_dice},
        "source": dict(source or {}),
        "files": {"genotype": GENOTYPE_FILE, "plan": PLAN_FILE, "weights": WEIGHTS_FILE},
        "exports": dict(exports or {}),
        "test_cases": [dict(c) for c in (test_cases or [])],
        "fold": dict(fold) if fold else None,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json(out / BUNDLE_FILE, info)
    return out


def update_bundle_info(bundle_dir: str | os.PathLike[str], **fields: Any) -> None:
    """Set top-level fields of ``bundle.json`` (e.g. ``exports``)."""
    path = Path(bundle_dir) / BUNDLE_FILE
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(fields)
    _write_json(path, info)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path.parent.resolve()}: not a model bundle ({path.name} is missing)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path.name}: not valid JSON ({exc})") from None


def read_bundle(bundle_dir: str | os.PathLike[str]) -> ModelBundle:
    """Read and check a bundle's JSON files (weights are loaded by ``load_network``)."""
    path = Path(bundle_dir)
    if not path.is_dir():
        raise BundleError(f"{path}: model directory does not exist")
    info = _read_json(path / BUNDLE_FILE)
    if not isinstance(info, dict) or info.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{BUNDLE_FILE}: not a VoxelSearch model bundle")
    if info.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{BUNDLE_FILE}: bundle version {info.get('version')} is not "
                          f"supported (expected {BUNDLE_VERSION})")
    genotype = validate(_read_json(path / GENOTYPE_FILE))
    plan = _read_json(path / PLAN_FILE)
    if not (path / WEIGHTS_FILE).exists():
        raise BundleError(f"{path}: {WEIGHTS_FILE} is missing")
    return ModelBundle(path=path, info=info, genotype=genotype, plan=plan)


def load_network(bundle: ModelBundle | str | os.PathLike[str],
                 device: torch.device | str = "cpu") -> nn.Module:
    """The bundle's network with its weights (``weights_only=True``), in eval mode."""
    if not isinstance(bundle, ModelBundle):
        bundle = read_bundle(bundle)
    network = network_from_genotype(bundle.genotype)
    state = torch.load(bundle.path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BundleError(f"{WEIGHTS_FILE}: does not match genotype.json ({first})") from None
    return network.to(device).eval()
