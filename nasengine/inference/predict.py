"""Segment a volume with a model bundle: preprocess, Gaussian sliding window, restore grid."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from nasengine.device import select_device
from nasengine.inference.bundle import ModelBundle, load_network, read_bundle
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


def predict_array(network: torch.nn.Module, image: np.ndarray, *, roi_size, device,
                  sw_batch_size: int = 4, overlap: float = 0.5, amp: bool = True,
                  progress: bool = False) -> np.ndarray:
    """Argmax labels [X,Y,Z] (uint8) of a preprocessed image [C,X,Y,Z]."""
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    use_amp = amp_enabled(amp, device)
    with torch.inference_mode(), autocast(device, use_amp):
        logits = sliding_window_inference(x, roi_size=tuple(int(v) for v in roi_size),
                                          sw_batch_size=sw_batch_size, predictor=network,
                                          overlap=overlap, mode="gaussian",
                                          progress=progress)
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


def predict_volume(bundle_dir: str | os.PathLike[str] | ModelBundle,
                   input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                   sw_batch_size: int = 4, overlap: float = 0.5,
                   device: torch.device | str | None = None,
                   progress: bool | Callable[[str], Any] | None = None) -> Path:
    """Segment ``input_path`` with the bundle; write a uint8 label NIfTI to ``output_path``.

    The bundle's plan preprocesses the image (resampling, normalisation), MONAI's
    ``sliding_window_inference`` (Gaussian weighting, ``sw_batch_size`` windows per forward:
    3D convolutions on CPU are much faster batched) gives logits, argmax gives labels, and
    ``restore_label`` undoes the preprocessing, so the output has exactly the input's spatial
    shape and affine. ``progress``: True for a tqdm bar over the windows; a callable also
    receives status lines.
    """
    from nasengine.data.preprocess import preprocess_image, restore_label

    bundle = bundle_dir if isinstance(bundle_dir, ModelBundle) else read_bundle(bundle_dir)
    device = device if isinstance(device, torch.device) else select_device(device)
    say = progress if callable(progress) else (lambda _msg: None)
    network = load_network(bundle, device)
    plan = bundle.plan_object()
    say(f"preprocessing {Path(input_path).name}")
    image, meta = preprocess_image(Path(input_path), plan)
    say(f"sliding window over {tuple(image.shape[1:])} with {tuple(plan.patch_size)} windows")
    label = predict_array(network, image, roi_size=plan.patch_size, device=device,
                          sw_batch_size=sw_batch_size, overlap=overlap,
                          progress=bool(progress))
    restored = np.asarray(restore_label(label, meta))
    say(f"writing {Path(output_path).name}")
    return write_label_like(restored.astype(np.uint8), input_path, output_path)
