"""Base class of a search-method plug-in and the data it is handed."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from nasengine.config import ConfigError, build_config, json_schema, merge_values
from nasengine.training.retrain import RETRAIN_PRESET_DESCRIPTIONS, RETRAIN_PRESETS, RetrainConfig

#: What a search preset of a common name is for (a method's ``preset_descriptions`` wins).
SEARCH_PRESET_DESCRIPTIONS: dict[str, str] = {
    "paper": "the paper's settings (needs a large GPU)",
    "cpu": "sized for 2 CPU cores: about 15 minutes of search",
    "small": "DEMO ONLY: a short search to see a run end; the architecture is not meaningful",
    "tiny": "TESTS ONLY: a handful of steps; the architecture is not searched in earnest",
}

#: Shared retraining presets every method offers unless it defines its own of that name.
SHARED_RETRAIN_PRESETS = ("default", "cpu")


@dataclasses.dataclass
class SearchData:
    """Everything a method's ``search()`` needs, built by ``api.search()`` from a dataset.

    ``train1`` / ``train2``: infinite ``PatchLoader`` iterators of
    ``{"image": FloatTensor[B,C,*patch], "label": LongTensor[B,1,*patch]}`` over the weights
    and architecture parts of the training cases (``DataSettings.arch_split``, 1:1 by
    default); ``val_cases``: preprocessed validation cases (``image`` float32 [C,X,Y,Z],
    ``label`` uint8 [X,Y,Z]); ``label_names`` background first. ``factory`` (a
    ``nasengine.data.DataFactory``; None when a caller builds ``SearchData`` by hand) builds
    new loaders over any subset of the training cases at any patch size.
    """

    plan: Any
    train1: Iterator[dict[str, torch.Tensor]]
    train2: Iterator[dict[str, torch.Tensor]]
    val_cases: Sequence[Any]
    in_channels: int
    out_channels: int
    label_names: list[str]
    device: torch.device | None = None
    factory: Any = None  # nasengine.data.DataFactory


@dataclasses.dataclass
class MemoryEstimate:
    """Bytes needed to search and to retrain (the GPU budget check before queueing a job)."""

    search_bytes: int
    retrain_bytes: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DataSettings:
    """How ``api`` prepares data for a method: patch size and divisor, batch size, split."""

    patch_size: tuple[int, int, int] | None = None
    divisor: int = 16
    batch_size: int = 2
    val_fraction: float = 0.2
    fg_oversample: float = 0.33
    seed: int = 0
    max_patch: tuple[int, int, int] | None = None
    #: weights : architecture share of the training cases (``train1`` : ``train2``).
    arch_split: tuple[float, float] = (1, 1)


class SearchMethod:
    """A search method: typed config with presets, memory estimate, search, network builder.

    Subclasses set ``name``, ``paper``, ``config_class`` and ``presets`` (at least ``paper`` and
    ``tiny``) and implement ``estimate_memory`` and either ``search`` or the pair
    ``build_supernet`` + ``search_schedule`` (the default ``search`` then runs the shared
    bi-level loop).
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    default_preset: ClassVar[str] = "paper"
    #: One line per search preset: what it is for (schema ``x-preset-descriptions``; the
    #: UI's form and ``nasengine methods`` show it). Unnamed ones fall back to
    #: ``SEARCH_PRESET_DESCRIPTIONS``.
    preset_descriptions: ClassVar[dict[str, str]] = {}
    #: Retraining settings of this method's architectures: a ``RetrainConfig`` subclass (or a
    #: dataclass with its fields) and its presets (a paper preset per method); default the
    #: shared ones.
    retrain_config_class: ClassVar[type] = RetrainConfig
    retrain_presets: ClassVar[dict[str, dict[str, Any]]] = RETRAIN_PRESETS
    #: The retraining preset used when none is named: nnU-Net's recipe (issue 12).
    default_retrain_preset: ClassVar[str] = "default"

    # -- config -----------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        """JSON Schema of the config (the web form is rendered from it)."""
        schema = json_schema(self.config_class, title=f"{self.name} settings")
        schema["x-presets"] = {k: dict(v) for k, v in self.presets.items()}
        described = {k: self.preset_descriptions.get(k) or SEARCH_PRESET_DESCRIPTIONS.get(k)
                     for k in self.presets}
        schema["x-preset-descriptions"] = {k: v for k, v in described.items() if v}
        return schema

    def make_config(self, preset: str | None = None,
                    overrides: Mapping[str, Any] | None = None) -> Any:
        """Config from a preset updated by ``overrides``; ``ConfigError`` on bad values."""
        preset = preset or self.default_preset
        if preset not in self.presets:
            raise ConfigError(f"unknown preset {preset!r} for {self.name}; known presets: "
                              f"{', '.join(self.presets)}", "preset")
        config = build_config(self.config_class, merge_values(self.presets[preset], overrides))
        check = getattr(config, "validate", None)
        if callable(check):  # cross-field checks of the method's config
            try:
                check()
            except ConfigError:
                raise
            except (ValueError, TypeError) as exc:
                raise ConfigError(str(exc)) from None
        return config

    # -- retraining config --------------------------------------------------------------
    def retrain_presets_all(self) -> dict[str, dict[str, Any]]:
        """This method's retraining presets plus the shared ``default`` and ``cpu`` (nnU-Net
        recipe) where it has none of that name. A ``paper`` preset that does not name a
        recipe gets ``recipe: "paper"``: a paper preset keeps the paper's own recipe."""
        presets = {name: dict(RETRAIN_PRESETS[name]) for name in SHARED_RETRAIN_PRESETS
                   if name not in self.retrain_presets}
        for name, values in self.retrain_presets.items():
            values = dict(values)
            if name == "paper" and self._has_recipe_field():
                values.setdefault("recipe", "paper")
            presets[name] = values
        return presets

    def _has_recipe_field(self) -> bool:
        return any(f.name == "recipe" for f in dataclasses.fields(self.retrain_config_class))

    def retrain_schema(self) -> dict[str, Any]:
        """JSON Schema of the retraining settings with ``x-presets``, the preset used by
        default (``x-default-preset``) and what each shared preset is for
        (``x-preset-descriptions``; demo and test presets say so)."""
        schema = json_schema(self.retrain_config_class,
                             title=f"{self.name} retraining settings")
        presets = self.retrain_presets_all()
        schema["x-presets"] = presets
        schema["x-default-preset"] = self._default_retrain_preset(presets)
        schema["x-preset-descriptions"] = {k: RETRAIN_PRESET_DESCRIPTIONS[k] for k in presets
                                           if k in RETRAIN_PRESET_DESCRIPTIONS}
        return schema

    def _default_retrain_preset(self, presets: Mapping[str, Any]) -> str:
        for name in (self.default_retrain_preset, "default", "paper"):
            if name in presets:
                return name
        return next(iter(presets))

    def make_retrain_config(self, preset: str | None = None,
                            overrides: Mapping[str, Any] | None = None) -> Any:
        """Retraining config from one of this method's presets (default
        ``default_retrain_preset``: nnU-Net's recipe) and ``overrides``."""
        presets = self.retrain_presets_all()
        preset = preset or self._default_retrain_preset(presets)
        if preset not in presets:
            raise ConfigError(f"unknown retraining preset {preset!r} for {self.name}; known "
                              f"presets: {', '.join(presets)}", "preset")
        return build_config(self.retrain_config_class, merge_values(presets[preset], overrides))

    def data_settings(self, config: Any) -> DataSettings:
        """Data preparation settings read from the config (override when names differ)."""
        values = {}
        for f in dataclasses.fields(DataSettings):
            if hasattr(config, f.name):
                value = getattr(config, f.name)
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return DataSettings(**values)

    # -- memory -----------------------------------------------------------------------------
    def estimate_memory(self, config: Any, in_channels: int, out_channels: int
                        ) -> MemoryEstimate:
        raise NotImplementedError(f"{self.name} has no memory estimate")

    # -- search -----------------------------------------------------------------------------
    def build_supernet(self, config: Any, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def search_schedule(self, config: Any):
        raise NotImplementedError

    def make_optimisers(self, config: Any, weights: list[nn.Parameter],
                        arch: list[nn.Parameter]) -> tuple[Any, Any] | None:
        """``(weight optimiser, arch optimiser | None)`` for the bi-level loop, or None for
        the default (SGD + Adam from ``search_schedule(config)``)."""
        return None

    def loss_fn(self, config: Any):
        """``(logits, label) -> scalar`` of the search, or None for ``DiceCELoss``."""
        return None

    def search(self, data: SearchData, config: Any, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False) -> dict[str, Any]:
        """Run the search and return the decoded genotype (default: shared bi-level loop)."""
        from nasengine.training.search_loop import default_optimisers, run_bilevel_search

        network = self.build_supernet(config, data.in_channels, data.out_channels)
        schedule = self.search_schedule(config)

        def make_optimisers(weights, arch):
            chosen = self.make_optimisers(config, weights, arch)
            return chosen if chosen is not None else default_optimisers(schedule)(weights,
                                                                                   arch)

        return run_bilevel_search(
            network, train1=data.train1, train2=data.train2, val_cases=data.val_cases,
            schedule=schedule, reporter=reporter,
            checkpoint_dir=checkpoint_dir, cancel=cancel, resume=resume, device=data.device,
            roi_size=self.data_settings(config).patch_size or getattr(data.plan, "patch_size",
                                                                      None),
            label_names=data.label_names, make_optimisers=make_optimisers,
            loss_fn=self.loss_fn(config))

    # -- controls -------------------------------------------------------------------------
    def random_genotype(self, config: Any, rng, in_channels: int, out_channels: int
                        ) -> dict[str, Any]:
        """An architecture drawn at random from this method's space (the "random" control of
        issue 12). ``rng``: a ``numpy.random.Generator``.

        Default: build the supernet, set every architecture parameter to i.i.d. N(0, 1)
        logits drawn from ``rng`` (far from the uniform start, so the draw varies with the
        seed) and decode it with the supernet's own ``decode`` (which keeps a lattice
        decode feasible). A method whose supernet has no ``arch_parameters``/``decode``
        overrides this.
        """
        network = self.build_supernet(config, in_channels, out_channels)
        arch = getattr(network, "arch_parameters", None)
        decode = getattr(network, "decode", None)
        if not callable(arch) or not callable(decode):
            raise NotImplementedError(f"{self.name}: the supernet has no architecture "
                                      f"parameters to draw; override random_genotype")
        with torch.no_grad():
            for p in arch():
                values = rng.standard_normal(tuple(p.shape)).astype("float32")
                p.copy_(torch.from_numpy(values).to(p.device, p.dtype))
        return decode()

    # -- architecture -> network ------------------------------------------------------------
    def build_network(self, genotype: dict[str, Any]) -> nn.Module:
        """A plain ``nn.Module`` from a (validated) genotype; default: the generic builder."""
        from nasengine.genotype import build_network

        return build_network(genotype)

    def patch_divisor(self, genotype: dict[str, Any]) -> int:
        """Patch edges must be multiples of this for the network built from ``genotype``.

        Default: ``genotype["meta"]["divisor"]`` if present, else ``2 ** max level`` (levels
        are absolute: level ``l`` is ``1/2**l`` of the input resolution).
        """
        meta = genotype.get("meta") or {}
        if isinstance(meta.get("divisor"), int):
            return int(meta["divisor"])
        levels = [int(n.get("level") or 0) for n in genotype.get("nodes", [])]
        return 2 ** max(levels, default=0)

    def describe(self) -> dict[str, Any]:
        """Name, paper, description, presets, schema and retraining schema
        (``python -m nasengine methods``)."""
        return {"name": self.name, "paper": self.paper, "description": self.description,
                "default_preset": self.default_preset, "presets": sorted(self.presets),
                "schema": self.schema(), "retrain_schema": self.retrain_schema()}
