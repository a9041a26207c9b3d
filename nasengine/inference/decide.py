"""Decide a model's largest-component post-processing on its validation cases (nnU-Net's way).

Each validation case is segmented through the prediction users get, without post-processing,
on the input's own grid, and compared with its original label; ``postprocess.decide_lcc``
keeps a class's LCC only where it raises that class's mean validation Dice. The decision is
written to ``postprocessing.json`` beside the bundle (or the ensemble), where ``predict``'s
``postprocess="auto"`` finds it.

For an ensemble each member segments its own validation cases (the cases its fold held out,
as nnU-Net decides on the cross-validation predictions); the decision goes to the ensemble
folder.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nasengine.inference.postprocess import decide_lcc, write_postprocessing

PathLike = str | os.PathLike[str]


def decide_postprocessing(model_dir: PathLike, data_dir: PathLike | None = None, *,
                          overlap: float = 0.5, mirror: bool = False, sw_batch_size: int = 4,
                          device: torch.device | str | None = None,
                          progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Decide and store the post-processing of a bundle or ensemble folder; returns the stored
    document. With no validation case the decision is "none" (``decided_on.cases`` empty)."""
    from nasengine.evaluation.cases import data_dir_of, read_label, validation_cases
    from nasengine.inference.ensemble import is_ensemble_dir, read_ensemble
    from nasengine.inference.postprocess import read_postprocessing
    from nasengine.inference.predict import segment

    say = progress or (lambda _msg: None)
    if is_ensemble_dir(model_dir):
        members = read_ensemble(model_dir)[1]
    else:
        from nasengine.inference.bundle import read_bundle

        members = [read_bundle(model_dir)]
    labels = members[0].labels
    pairs, used = [], []
    for bundle in members:
        root = data_dir_of(bundle, data_dir)
        for case in validation_cases(bundle, root):
            say(f"deciding post-processing: validation case {case.case_id}")
            truth, _ = read_label(case.label)
            pred, _ = segment(bundle, case.image, sw_batch_size=sw_batch_size, overlap=overlap,
                              mirror=mirror, postprocess="none", device=device)
            pairs.append((pred.astype(truth.dtype), truth))
            used.append(case.case_id)
    decision = decide_lcc(pairs, labels)
    write_postprocessing(Path(model_dir), decision, cases=used)
    return read_postprocessing(model_dir) or {}
