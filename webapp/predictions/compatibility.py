"""Does a volume look like the data a model was trained on? Warnings (not refusals) in plain
words, for the predict page and the prediction page (issue 13.5: a model trained on brain MRIs
labelled a synthetic blob "grey matter" without a word).

Checked: the number of channels, the modality (where both datasets state one), the dataset
(a case of another dataset than the model's), and the voxel spacing. Choice: spacing is
compared axis by axis after sorting both triples (a volume stored in another axis order is
the same acquisition), and warned about only when an axis is an order of magnitude off (ten
times finer or coarser): the plan resamples moderate differences, but a factor of ten is
usually other units (metres, micrometres) or another kind of scan.
"""
from __future__ import annotations

from collections.abc import Sequence

#: An axis this many times finer or coarser than the training data's is "an order of magnitude off".
SPACING_FACTOR = 10.0


def _spacing_text(spacing: Sequence[float]) -> str:
    return " × ".join(f"{float(s):.3g}" for s in spacing) + " mm"


def training_spacing(dataset) -> list[float] | None:
    """The training data's median voxel spacing (fingerprint), None when unknown."""
    fingerprint = getattr(dataset, "fingerprint", None) or {}
    spacing = fingerprint.get("median_spacing") or []
    if len(spacing) >= 3 and all(isinstance(s, (int, float)) and s > 0 for s in spacing[:3]):
        return [float(s) for s in spacing[:3]]
    return None


def spacing_off(spacing: Sequence[float] | None, reference: Sequence[float] | None) -> bool:
    """True when an axis of ``spacing`` is SPACING_FACTOR or more times finer or coarser than
    the same-rank axis of ``reference`` (both sorted)."""
    if not spacing or not reference or len(spacing) < 3:
        return False
    try:
        ours, theirs = sorted(float(s) for s in spacing[:3]), sorted(float(s) for s in reference[:3])
    except (TypeError, ValueError):
        return False
    if min(ours) <= 0 or min(theirs) <= 0:
        return False
    return any(a / b >= SPACING_FACTOR or b / a >= SPACING_FACTOR for a, b in zip(ours, theirs))


def warnings_for(model, *, n_channels: int | None, spacing: Sequence[float] | None, dataset=None,
                 in_channels: int | None = None) -> list[str]:
    """Why the volume may not suit ``model``, in plain words ([] when nothing stands out).

    ``dataset``: the dataset a picked case belongs to (None for an uploaded file);
    ``in_channels``: the channels the model takes (default: its channel names).
    """
    found: list[str] = []
    trained_on = model.dataset
    channels = in_channels or max(1, len(model.channel_names or []))
    if n_channels and n_channels != channels:
        names = f" ({', '.join(model.channel_names)})" if model.channel_names else ""
        found.append(f"The model was trained on images with {channels} channel{'s' if channels != 1 else ''}{names}; "
                     f"this volume has {n_channels}.")
    if dataset is not None and trained_on is not None and dataset.pk != trained_on.pk:
        ours, theirs = (dataset.modality or "").strip(), (trained_on.modality or "").strip()
        if ours and theirs and ours.lower() != theirs.lower():
            found.append(f"This case is a {ours} image from “{dataset.name}”; the model was trained on {theirs} "
                         f"images (“{trained_on.name}”). Its labels may mean nothing here.")
        else:
            found.append(f"This case is from “{dataset.name}”, not from “{trained_on.name}”, the data the model "
                         "was trained on: check that it shows the same kind of image and anatomy.")
    reference = training_spacing(trained_on) if trained_on is not None else None
    if spacing_off(spacing, reference):
        found.append(f"The voxel spacing ({_spacing_text(spacing[:3])}) is an order of magnitude off the training "
                     f"data's ({_spacing_text(reference)}): the volume may be stored in other units, or be another "
                     "kind of scan.")
    return found
