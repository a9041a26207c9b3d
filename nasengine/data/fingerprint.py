"""Dataset fingerprint: the facts a plan is derived from (nnU-Net's "dataset fingerprint").

Spacings and shapes are given in RAS axis order (the order preprocessing produces), so a plan's
target spacing applies to the arrays the network sees. Intensity statistics are per channel over
*foreground* voxels (label > 0), pooled over all cases, as nnU-Net does for CT normalisation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checks import DEFAULT_AFFINE_TOLERANCE, load_checked_case
from .dataset import DatasetSpec
from .geometry import ras_spatial
from .io import DEFAULT_MAX_VOXELS

FINGERPRINT_VERSION = 1

#: Foreground voxels kept per case and channel for the intensity statistics. Bounds memory on
#: big datasets; cases with fewer foreground voxels contribute all of them (exact statistics).
MAX_FOREGROUND_SAMPLES_PER_CASE = 100_000


def intensity_statistics(values: np.ndarray) -> dict[str, float]:
    """Summary statistics of a 1-D sample of intensities.

    Returns:
        ``mean``, ``std`` (population), ``median``, ``percentile_00_5``, ``percentile_99_5``,
        ``min``, ``max``, ``n_voxels`` (all plain floats/ints).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {k: 0.0 for k in ("mean", "std", "median", "percentile_00_5", "percentile_99_5", "min", "max")} | {"n_voxels": 0}
    low, median, high = np.percentile(values, [0.5, 50.0, 99.5])
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "median": float(median),
        "percentile_00_5": float(low),
        "percentile_99_5": float(high),
        "min": float(values.min()),
        "max": float(values.max()),
        "n_voxels": int(values.size),
    }


def compute_fingerprint(
    spec: DatasetSpec,
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    affine_tolerance: float = DEFAULT_AFFINE_TOLERANCE,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
) -> dict:
    """Read every labelled case (running all checks) and summarise the dataset.

    Args:
        spec: the dataset.
        max_voxels, affine_tolerance: passed to the checks.
        progress: optional ``progress(done, total)`` callback after each case.
        seed: seeds the subsampling of foreground voxels on large cases.

    Returns:
        JSON-able dict::

            {"version": 1, "name", "modality", "channel_names", "labels": {"0": "background", ...},
             "n_cases", "case_ids", "axis_order": "RAS",
             "spacings": [[sx, sy, sz], ...], "shapes": [[X, Y, Z], ...],
             "median_spacing": [...], "median_shape": [...],
             "intensity": [{"channel": name, "mean", "std", "median", "percentile_00_5",
                            "percentile_99_5", "min", "max", "n_voxels"}, ...],   # foreground voxels
             "intensity_region": "foreground" | "all",
             "class_voxel_fractions": {"0": f0, "1": f1, ...},   # sums to 1
             "class_case_fractions": {"0": 1.0, "1": ...}}       # share of cases containing it

    Raises:
        DataError: the first bad case.
    """
    rng = np.random.default_rng(seed)
    cases = [c for c in spec.cases if c.label is not None]
    label_values = sorted(spec.labels)
    class_voxels = {v: 0 for v in label_values}
    class_cases = {v: 0 for v in label_values}
    spacings: list[list[float]] = []
    shapes: list[list[int]] = []
    foreground: list[list[np.ndarray]] = [[] for _ in spec.channel_names]
    everything: list[list[np.ndarray]] = [[] for _ in spec.channel_names]
    for index, case in enumerate(cases):
        checked = load_checked_case(
            case, spec.labels, n_channels=spec.n_channels, max_voxels=max_voxels, affine_tolerance=affine_tolerance
        )
        info = checked.image.info
        shape, spacing = ras_spatial(info.spatial_shape, info.spacing, info.affine)
        shapes.append(list(shape))
        spacings.append(list(spacing))
        label = checked.label
        for value in label_values:
            count = checked.label_counts.get(value, 0)
            class_voxels[value] += count
            class_cases[value] += int(count > 0)
        mask = label > 0
        for channel in range(spec.n_channels):
            data = checked.image.data[channel]
            for store, values in ((foreground, data[mask]), (everything, data.ravel())):
                if values.size > MAX_FOREGROUND_SAMPLES_PER_CASE:
                    values = values[rng.integers(0, values.size, MAX_FOREGROUND_SAMPLES_PER_CASE)]
                store[channel].append(values)
        if progress is not None:
            progress(index + 1, len(cases))
    has_foreground = sum(class_voxels[v] for v in label_values if v != 0) > 0
    source = foreground if has_foreground else everything
    intensity = [
        {"channel": name} | intensity_statistics(np.concatenate(source[c]) if source[c] else np.zeros(0))
        for c, name in enumerate(spec.channel_names)
    ]
    total = sum(class_voxels.values()) or 1
    return {
        "version": FINGERPRINT_VERSION,
        "name": spec.name,
        "modality": spec.modality,
        "channel_names": list(spec.channel_names),
        "labels": {str(k): v for k, v in sorted(spec.labels.items())},
        "n_cases": len(cases),
        "case_ids": [c.case_id for c in cases],
        "axis_order": "RAS",
        "spacings": spacings,
        "shapes": shapes,
        "median_spacing": [float(v) for v in np.median(np.array(spacings), axis=0)] if spacings else [],
        "median_shape": [float(v) for v in np.median(np.array(shapes), axis=0)] if shapes else [],
        "intensity": intensity,
        "intensity_region": "foreground" if has_foreground else "all",
        "class_voxel_fractions": {str(v): class_voxels[v] / total for v in label_values},
        "class_case_fractions": {str(v): class_cases[v] / max(len(cases), 1) for v in label_values},
    }
