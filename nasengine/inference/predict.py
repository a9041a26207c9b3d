"""Segment a volume with a model bundle (or a fold ensemble): preprocess, Gaussian sliding
window with optional mirroring, restore the input grid, optional largest-component cleanup."""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from nasengine.device import select_device
from nasengine.inference.bundle import ModelBundle, load_network
from nasengine.training.common import amp_enabled, autocast


def write_label_like(label: np.ndarray, reference_path: str | os.PathLike[str],
                     output_path: str | os.PathLike[str]) -> Path:
    """Write ``label`` [X,Y,Z] as a uint8 NIfTI with the reference image's affine and
    spatial shape (qform/sform codes and units are copied; intensity scaling is cleared)."""
    ref = nib.load(str(reference_path))
    spatial = tuple(ref.shape[:3])
    if tuple(label.shape) != spatial:
        raise ValueError(f"label shape {tuple(label.shape)} does not match input {spatial}")
    affine = ref.affine
    img = nib.Nifti1Image(np.asarray(label, dtype=np.uint8), affine)
    hdr = img.header
    rhdr = ref.header
    qcode = int(rhdr["qform_code"]) if "qform_code" in rhdr else 1
    scode = int(rhdr["sform_code"]) if "sform_code" in rhdr else 1
    if qcode == 0 and scode == 0:
        qcode = 1
    img.set_qform(affine, code=qcode or 1)
    img.set_sform(affine, code=scode or 1)
    try:
        hdr.set_xyzt_units(*rhdr.get_xyzt_units())
    except Exception:  # noqa: BLE001 - non-NIfTI reference headers have no units
        pass
    hdr.set_data_dtype(np.uint8)
    hdr.set_slope_inter(1.0, 0.0)
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out


def window_count(shape: Sequence[int], roi_size: Sequence[int], overlap: float) -> int:
    """How many windows MONAI's sliding window visits over ``shape`` (after its padding to at
    least ``roi_size``), for the progress wording."""
    from monai.data.utils import dense_patch_slices

    size = [max(int(s), int(r)) for s, r in zip(shape, roi_size)]
    interval = []
    for s, r in zip(size, roi_size):  # as monai.inferers.utils._get_scan_interval
        interval.append(int(r) if int(r) == s else max(1, int(int(r) * (1 - overlap))))
    return len(dense_patch_slices(size, [int(r) for r in roi_size], interval))


def mirror_flips(mirror: bool) -> list[tuple[int, ...]]:
    """Spatial-axis flips of a [B,C,X,Y,Z] tensor: none, or all 8 combinations of the three
    axes (nnU-Net's mirroring test-time augmentation)."""
    if not mirror:
        return [()]
    axes = (2, 3, 4)
    return [tuple(a for i, a in enumerate(axes) if mask >> i & 1) for mask in range(8)]


def _check_overlap(overlap: float) -> float:
    overlap = float(overlap)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be at least 0 and below 1, not {overlap}")
    return overlap


def predict_probabilities(network: torch.nn.Module, image: np.ndarray, *, roi_size, device,
                          sw_batch_size: int = 4, overlap: float = 0.5, mirror: bool = False,
                          amp: bool = True, progress: bool = False) -> torch.Tensor:
    """Softmax probabilities [K,X,Y,Z] (float32, on CPU) of a preprocessed image [C,X,Y,Z].

    MONAI's Gaussian-weighted sliding window gives logits; with ``mirror`` the image is also
    segmented flipped along every combination of axes, each output flipped back, and the
    softmax outputs are averaged (nnU-Net averages the mirrored predictions the same way).
    """
    from monai.inferers import sliding_window_inference

    overlap = _check_overlap(overlap)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    use_amp = amp_enabled(amp, device)
    flips = mirror_flips(mirror)
    total = None
    with torch.inference_mode():
        for dims in flips:
            xin = torch.flip(x, dims) if dims else x
            with autocast(device, use_amp):
                logits = sliding_window_inference(xin, roi_size=tuple(int(v) for v in roi_size),
                                                  sw_batch_size=sw_batch_size, predictor=network,
                                                  overlap=overlap, mode="gaussian",
                                                  progress=progress)
            probs = torch.softmax(logits.float(), dim=1)
            if dims:
                probs = torch.flip(probs, dims)
            total = probs if total is None else total + probs
    return (total / len(flips))[0].cpu()


def predict_array(network: torch.nn.Module, image: np.ndarray, *, roi_size, device,
                  sw_batch_size: int = 4, overlap: float = 0.5, amp: bool = True,
                  progress: bool = False, mirror: bool = False) -> np.ndarray:
    """Argmax labels [X,Y,Z] (uint8) of a preprocessed image [C,X,Y,Z]."""
    probs = predict_probabilities(network, image, roi_size=roi_size, device=device,
                                  sw_batch_size=sw_batch_size, overlap=overlap, mirror=mirror,
                                  amp=amp, progress=progress)
    return probs.argmax(0).to(torch.uint8).numpy()


def _plan_key(bundle: ModelBundle) -> str:
    return json.dumps(bundle.plan, sort_keys=True, default=str)


def _shape_text(shape: Sequence[int]) -> str:
    return "\u00d7".join(str(int(v)) for v in shape)


def segment(models: Any, input_path: str | os.PathLike[str], *, sw_batch_size: int = 4,
            overlap: float = 0.5, mirror: bool = False, postprocess: str = "auto",
            device: torch.device | str | None = None,
            progress: bool | Callable[[str], Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Label map of ``input_path`` on the input's own grid, and what was done.

    ``models``: a bundle folder, an ensemble folder, or a list of them (see
    ``ensemble.resolve_models``); several members' softmax outputs are averaged. Members that
    share a plan are averaged on the network grid, then the argmax goes back with
    ``restore_label``; members with different plans are each brought back to the input grid
    with ``restore_channels`` (trilinear) and averaged there. ``postprocess`` (``auto``: the
    model's stored decision, ``none``, ``lcc``: every class) keeps the largest connected
    component of the chosen classes, on the input grid as nnU-Net does.

    Returns ``(label [X,Y,Z] label values, info)`` with ``info`` = ``{"members", "windows",
    "mirror", "overlap", "lcc_classes"}``.
    """
    from nasengine.data.preprocess import preprocess_image, restore_channels, restore_label
    from nasengine.inference.ensemble import resolve_models
    from nasengine.inference.postprocess import keep_largest_components, lcc_classes_for

    overlap = _check_overlap(overlap)
    bundles, decision_dir = resolve_models(models)
    labels = bundles[0].labels
    lcc = lcc_classes_for(postprocess, [decision_dir], labels)
    device = device if isinstance(device, torch.device) else select_device(device)
    say = progress if callable(progress) else (lambda _msg: None)
    groups: dict[str, list[ModelBundle]] = {}
    for bundle in bundles:
        groups.setdefault(_plan_key(bundle), []).append(bundle)
    name = Path(input_path).name
    restored_sum: np.ndarray | None = None
    label: np.ndarray | None = None
    windows = 0
    done = 0
    for members in groups.values():
        plan = members[0].plan_object()
        say(f"preprocessing {name}")
        image, meta = preprocess_image(Path(input_path), plan)
        grid = tuple(image.shape[1:])
        n_windows = window_count(grid, plan.patch_size, overlap)
        windows += n_windows * len(members)
        probs_sum = None
        for bundle in members:
            done += 1
            who = f" (model {done} of {len(bundles)})" if len(bundles) > 1 else ""
            copies = ", each also mirrored 7 ways" if mirror else ""
            say(f"segmenting {_shape_text(grid)} voxels in {n_windows} overlapping "
                f"window{'s' if n_windows != 1 else ''}{copies}{who}")
            network = load_network(bundle, device)
            probs = predict_probabilities(network, image, roi_size=plan.patch_size,
                                          device=device, sw_batch_size=sw_batch_size,
                                          overlap=overlap, mirror=mirror,
                                          progress=bool(progress) and not callable(progress))
            del network
            probs_sum = probs if probs_sum is None else probs_sum + probs
        if len(groups) == 1:
            classes = probs_sum.argmax(0).to(torch.uint8).numpy()
            label = np.asarray(restore_label(classes, meta))
        else:
            back = restore_channels(probs_sum.numpy(), meta)
            restored_sum = back if restored_sum is None else restored_sum + back
    if label is None:
        from nasengine.data.preprocess import class_indices_to_labels

        label = np.asarray(class_indices_to_labels(restored_sum.argmax(0), meta))
    if lcc:
        names = ", ".join(labels.get(v, str(v)) for v in lcc)
        say(f"keeping the largest connected region of {names}")
        label = keep_largest_components(label, lcc)
    info = {"members": [str(b.path) for b in bundles], "windows": windows, "mirror": bool(mirror),
            "overlap": overlap, "lcc_classes": lcc}
    return label, info


def predict_volume(bundle_dir: Any, input_path: str | os.PathLike[str],
                   output_path: str | os.PathLike[str], *, sw_batch_size: int = 4,
                   overlap: float = 0.5, mirror: bool = False, postprocess: str = "auto",
                   device: torch.device | str | None = None,
                   progress: bool | Callable[[str], Any] | None = None) -> Path:
    """Segment ``input_path`` with a bundle (or an ensemble, see ``segment``); write a uint8
    label NIfTI with exactly the input's spatial shape and affine to ``output_path``.

    The bundle's plan preprocesses the image (resampling, normalisation), MONAI's
    ``sliding_window_inference`` (Gaussian weighting, ``overlap`` between windows,
    ``sw_batch_size`` windows per forward: 3D convolutions on CPU are much faster batched)
    gives logits, the softmax (averaged over mirrored copies and ensemble members) gives
    labels, and ``restore_label`` undoes the preprocessing. ``progress``: True for a tqdm bar
    over the windows; a callable receives status lines instead.
    """
    label, _ = segment(bundle_dir, input_path, sw_batch_size=sw_batch_size, overlap=overlap,
                       mirror=mirror, postprocess=postprocess, device=device, progress=progress)
    if callable(progress):
        progress(f"writing {Path(output_path).name}")
    return write_label_like(label.astype(np.uint8), input_path, output_path)
