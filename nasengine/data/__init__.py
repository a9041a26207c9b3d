"""Data pipeline: reading and checking NIfTI datasets, fingerprint, plan, preprocessing,
training patches, splits and demo data (see docs/ENGINE-CONTRACTS.md, section "data")."""

from .checks import check_case, check_dataset, check_headers, check_image, load_checked_case
from .dataset import Case, DatasetSpec, dataset_from_pairs, load_dataset
from .demo import make_demo_data
from .errors import DataError
from .factory import DataFactory, split_ids
from .fingerprint import compute_fingerprint
from .io import DEFAULT_MAX_VOXELS, NiftiInfo, NiftiVolume, clear_header_text, inspect_nifti, read_nifti, write_nifti
from .plan import Plan, make_plan
from .preprocess import (
    PreprocessedCase,
    PreprocessMeta,
    preprocess_case,
    preprocess_cases,
    preprocess_image,
    restore_channels,
    restore_label,
)
from .sampling import PatchLoader
from .splits import Splits, make_splits

__all__ = [
    "Case",
    "DEFAULT_MAX_VOXELS",
    "DataError",
    "DataFactory",
    "DatasetSpec",
    "NiftiInfo",
    "NiftiVolume",
    "PatchLoader",
    "Plan",
    "PreprocessMeta",
    "PreprocessedCase",
    "Splits",
    "check_case",
    "check_dataset",
    "check_headers",
    "check_image",
    "clear_header_text",
    "compute_fingerprint",
    "dataset_from_pairs",
    "inspect_nifti",
    "load_checked_case",
    "load_dataset",
    "make_demo_data",
    "make_plan",
    "make_splits",
    "preprocess_case",
    "preprocess_cases",
    "preprocess_image",
    "read_nifti",
    "restore_channels",
    "restore_label",
    "split_ids",
    "write_nifti",
]
