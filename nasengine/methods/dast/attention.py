"""Attention maps of a model built from a DAST genotype (paper sec. 4.4, Fig. 4).

Each transformer op's segmentation attention ``A`` has weights ``[B, T, G]`` (each of the T
tokens over the ``G = g^3`` grid). As the paper does, they are averaged over the token
("channel") dimension and resized by trilinear interpolation to the input grid. The maps are
written relative to uniform attention: ``mean_T(A) * G``, so 1 is "as much as anywhere" and a
map's mean is 1 (per window; a blended volume is close to it).

- :func:`transformer_edges`: the transformer ops of a built network with their genotype edges;
- :class:`AttentionNetwork`: a wrapper whose forward returns the logits and the chosen maps
  (a dict, so MONAI's sliding window blends every map like the logits);
- :func:`attention_maps`: one forward, the segmentation and the maps of the chosen ops;
- :func:`write_attention_maps`: a whole volume with a model bundle, each map a float32 NIfTI
  with the input's shape and affine. Nothing is computed for a model without transformer ops.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import TRANSFORMER
from .transformer import TransformerOp

__all__ = ["TransformerSite", "transformer_sites", "transformer_edges", "recording", "AttentionNetwork",
           "attention_maps", "write_map_like", "write_attention_maps", "map_file_name"]


@dataclass(frozen=True)
class TransformerSite:
    """A transformer edge of a genotype: ``id`` (``"<source>-><target>"``), its ``source`` and
    ``target`` node ids, and the target's ``layer`` and ``level`` (absolute: 1/2^level of
    the input)."""

    id: str
    source: str
    target: str
    layer: int | None
    level: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "target": self.target, "layer": self.layer,
                "level": self.level}


def transformer_sites(genotype: dict[str, Any]) -> list[TransformerSite]:
    """The transformer edges of ``genotype`` in the builder's edge order (empty when none)."""
    from ...genotype.validate import resolve

    resolved = resolve(genotype)
    nodes = {n["id"]: n for n in resolved.doc["nodes"]}
    sites = []
    for edge in resolved.graph.edges.values():
        if edge.op == TRANSFORMER:
            node = nodes[edge.target]
            sites.append(TransformerSite(f"{edge.source}->{edge.target}", edge.source, edge.target,
                                         node.get("layer"), resolved.graph.nodes[edge.target].level))
    return sites


def transformer_edges(network: nn.Module, genotype: dict[str, Any]) -> list[tuple[TransformerSite, TransformerOp]]:
    """``(site, op module)`` for every transformer edge of a network built from ``genotype``
    (``nasengine.genotype.build_network``: one ``edge_ops`` module per live edge, in the
    resolved graph's order)."""
    from ...genotype.validate import resolve

    graph = resolve(genotype).graph
    sites = {s.id: s for s in transformer_sites(genotype)}
    out = []
    for module, edge in zip(network.edge_ops, graph.edges.values()):
        if edge.op != TRANSFORMER:
            continue
        ops = [m for m in module.modules() if isinstance(m, TransformerOp)]
        if len(ops) != 1:
            raise ValueError(f"edge {edge.source}->{edge.target} has no transformer module")
        out.append((sites[f"{edge.source}->{edge.target}"], ops[0]))
    return out


def _select(edges, which: Iterable[str] | None):
    if which is None:
        return list(edges)
    wanted = list(which)
    known = {site.id for site, _ in edges}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise KeyError(f"no transformer op at {', '.join(unknown)}; the model has: {', '.join(sorted(known)) or 'none'}")
    return [(site, op) for site, op in edges if site.id in wanted]


@contextlib.contextmanager
def recording(ops: Sequence[TransformerOp]) -> Iterator[None]:
    """While inside, each op in ``ops`` keeps its last attention weights (``last_attention``)."""
    for op in ops:
        op.keep_attention, op.last_attention = True, None
    try:
        yield
    finally:
        for op in ops:
            op.keep_attention = False


def averaged_map(weights: torch.Tensor, grid: int, size: Sequence[int]) -> torch.Tensor:
    """``[B, T, G]`` weights -> ``[B, *size]``: mean over the T tokens, times G (1 = uniform),
    on the ``grid^3`` grid, trilinear to ``size``."""
    b, _, g_voxels = weights.shape
    volume = weights.mean(1).reshape(b, 1, grid, grid, grid) * g_voxels
    return F.interpolate(volume, size=tuple(int(s) for s in size), mode="trilinear", align_corners=False)[:, 0]


class AttentionNetwork(nn.Module):
    """A DAST genotype's network that returns ``{"logits": [B, K, *S], <site id>: [B, 1, *S]}``.

    Args:
        network: built from ``genotype``; genotype: its document; which: site ids (None: all).
    """

    def __init__(self, network: nn.Module, genotype: dict[str, Any], which: Iterable[str] | None = None):
        super().__init__()
        self.network = network
        chosen = _select(transformer_edges(network, genotype), which)
        self.sites = [site for site, _ in chosen]
        self._ops = [op for _, op in chosen]  # a plain list: not registered twice

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with recording(self._ops):
            out = {"logits": self.network(x)}
            for site, op in zip(self.sites, self._ops):
                out[site.id] = averaged_map(op.last_attention, op.grid, x.shape[2:])[:, None]
        return out


@torch.no_grad()
def attention_maps(network: nn.Module, genotype: dict[str, Any], image: torch.Tensor,
                   which: Iterable[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The segmentation logits ``[B, K, *S]`` of ``image [B, C, *S]`` and, for each chosen
    transformer op (all by default), its averaged attention resized to ``S``: ``[B, *S]``."""
    out = AttentionNetwork(network, genotype, which)(image)
    logits = out.pop("logits")
    return logits, {k: v[:, 0] for k, v in out.items()}


def write_map_like(volume: np.ndarray, reference_path: str | os.PathLike[str],
                   output_path: str | os.PathLike[str]) -> Path:
    """Write ``volume [X, Y, Z]`` as a float32 NIfTI with the reference image's affine and
    spatial shape (qform/sform codes and units copied, no intensity scaling)."""
    ref = nib.load(str(reference_path))
    if tuple(volume.shape) != tuple(ref.shape[:3]):
        raise ValueError(f"map shape {tuple(volume.shape)} does not match input {tuple(ref.shape[:3])}")
    img = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), ref.affine)
    rhdr = ref.header
    qcode, scode = int(rhdr["qform_code"]), int(rhdr["sform_code"])
    img.set_qform(ref.affine, code=qcode or 1)
    img.set_sform(ref.affine, code=scode or 1)
    img.header.set_xyzt_units(*rhdr.get_xyzt_units())
    img.header.set_data_dtype(np.float32)
    img.header.set_slope_inter(1.0, 0.0)
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out


def map_file_name(site_id: str) -> str:
    """File name of a site's map: ``attention_<source>_<target>.nii.gz``."""
    source, target = site_id.split("->")
    return f"attention_{source}_{target}.nii.gz"


def write_attention_maps(bundle_dir, input_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                         which: Iterable[str] | None = None, sw_batch_size: int = 4, overlap: float = 0.5,
                         device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """Attention maps of a DAST model bundle over a whole volume, as NIfTI in the input's
    geometry.

    The bundle's plan preprocesses the image; MONAI's Gaussian sliding window runs
    :class:`AttentionNetwork` (each window's maps are resized to the window, then blended like
    the logits); each map goes back to the input's grid and orientation (trilinear,
    ``restore_channels``) and is written as ``out_dir/attention_<source>_<target>.nii.gz``.

    Returns:
        one entry per written map: the site (``id``, ``source``, ``target``, ``layer``,
        ``level``), ``file`` (name), ``min``, ``max``, ``mean``. Empty, with nothing computed,
        when the model has no transformer op.
    """
    from monai.inferers import sliding_window_inference

    from ...data.preprocess import preprocess_image, restore_channels
    from ...device import select_device
    from ...inference.bundle import ModelBundle, load_network, read_bundle

    bundle = bundle_dir if isinstance(bundle_dir, ModelBundle) else read_bundle(bundle_dir)
    if not transformer_sites(bundle.genotype):
        return []
    device = device if isinstance(device, torch.device) else select_device(device)
    network = AttentionNetwork(load_network(bundle, device), bundle.genotype, which).eval()
    plan = bundle.plan_object()
    image, meta = preprocess_image(Path(input_path), plan)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    with torch.inference_mode():
        out = sliding_window_inference(x, roi_size=tuple(int(v) for v in plan.patch_size),
                                       sw_batch_size=sw_batch_size, predictor=network,
                                       overlap=overlap, mode="gaussian")
    out_dir = Path(out_dir)
    written = []
    for site in network.sites:
        volume = out[site.id][0].float().cpu().numpy()  # [1, X, Y, Z] on the network grid
        restored = restore_channels(volume, meta)[0]
        name = map_file_name(site.id)
        write_map_like(restored, input_path, out_dir / name)
        written.append({**site.to_dict(), "file": name, "min": float(restored.min()),
                        "max": float(restored.max()), "mean": float(restored.mean())})
    return written
