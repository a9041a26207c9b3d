"""Controls for a search: "did the search help?" (issue 12 item 4).

- ``random_architecture``: an architecture drawn at random from the same method's space
  (``SearchMethod.random_genotype``);
- ``handdesigned_architecture``: a hand-designed network of similar size configured from the
  dataset as nnU-Net does (MONAI ``DynUNet``), as a genotype of the network-plan kind.

Both return genotype documents that flow through everything a searched genotype does:
``api.retrain``, the model bundle, prediction and the derived figures.
"""
from nasengine.controls.handdesigned import (
    NETWORK_PLAN_KEY,
    build_planned_network,
    handdesigned_architecture,
    nnunet_kernels_and_strides,
)
from nasengine.controls.random_arch import random_architecture

__all__ = ["random_architecture", "handdesigned_architecture", "build_planned_network",
           "nnunet_kernels_and_strides", "NETWORK_PLAN_KEY"]
