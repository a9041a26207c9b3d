"""The random control: an architecture drawn at random from the same method's space."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _channels_of(data_dir: str | Path | None, fingerprint: Any,
                 in_channels: int | None, out_channels: int | None) -> tuple[int, int]:
    if in_channels is not None and out_channels is not None:
        return int(in_channels), int(out_channels)
    if fingerprint is not None:
        fp = fingerprint.to_dict() if hasattr(fingerprint, "to_dict") else dict(fingerprint)
        c_in = fp.get("in_channels") or len(fp.get("channel_names") or [])
        c_out = fp.get("out_channels") or len(fp.get("labels") or fp.get("label_ids") or [])
        if c_in and c_out:
            return int(in_channels or c_in), int(out_channels or c_out)
    if data_dir is not None:
        from nasengine.data import load_dataset

        spec = load_dataset(Path(data_dir))
        return int(in_channels or spec.n_channels), int(out_channels or spec.n_classes)
    raise ValueError("random_architecture needs data_dir, a fingerprint, or in_channels and "
                     "out_channels")


def random_architecture(method: str, data_dir: str | Path | None = None, *,
                        fingerprint: Any = None, preset: str | None = None,
                        overrides: Mapping[str, Any] | None = None, seed: int = 0,
                        in_channels: int | None = None, out_channels: int | None = None
                        ) -> dict[str, Any]:
    """A genotype drawn at random from ``method``'s search space under ``preset``.

    The draw is the method's ``SearchMethod.random_genotype(config, rng, in, out)``
    (default: the supernet's own decode of random architecture weights, so it is a network
    the search could have returned). Same arguments, same genotype. ``meta.control`` is
    ``"random"`` and ``meta.control_seed`` the seed.
    """
    import numpy as np

    from nasengine.genotype import validate
    from nasengine.methods import get_method

    m = get_method(method)
    config = m.make_config(preset, overrides)
    c_in, c_out = _channels_of(data_dir, fingerprint, in_channels, out_channels)
    rng = np.random.default_rng(seed)
    doc = m.random_genotype(config, rng, c_in, c_out)
    doc = dict(doc)
    doc["meta"] = {**(doc.get("meta") or {}), "control": "random", "control_seed": int(seed)}
    return validate(doc)
