"""Inference: model bundles, sliding-window prediction, export, explanation maps (``explain``)."""
from nasengine.inference.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    BundleError,
    ModelBundle,
    load_network,
    network_from_genotype,
    read_bundle,
    write_bundle,
)
from nasengine.inference.export import export_network
from nasengine.inference.predict import predict_volume, write_label_like

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "BundleError", "ModelBundle", "load_network",
           "network_from_genotype", "read_bundle", "write_bundle", "export_network",
           "predict_volume", "write_label_like"]
