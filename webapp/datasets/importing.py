"""The import pipeline: from uploaded files to a checked, scrubbed dataset in MSD layout.

No Django models here: ``run_import`` takes plain paths and settings and either returns an
:class:`ImportResult` or raises :class:`ImportFailed` with every problem found, each a
``{"file", "problem"}`` dict worded for a researcher. The NIfTI checks are calls into
``nasengine.data`` (the engine reads the data the same way later).

Steps:
1. Gather: an archive is checked from its directory, then stream-extracted with caps
   (``archives``); its ``dataset.json`` is read by ``nasengine.data.dataset.load_dataset``. Single
   files are paired by name (``pair_files``) and described by ``dataset_from_pairs``.
2. Check every case: header checks first (size cap, dims, dtype, affine, image/label agreement,
   header size), then data (truncation, NaN/Inf, label values declared) with
   ``load_checked_case``, then that nothing follows the voxel data; all problems are collected.
   A preview PNG is drawn from the data already read.
3. Store: each file is copied with its identifying header text cleared
   (``nasengine.data.io.clear_header_text``) to ``imagesTr/case_0001.nii.gz`` etc. and a fresh
   ``dataset.json`` is written: the stored dataset is an MSD folder the engine can read.
4. Fingerprint the stored dataset with ``nasengine.data.fingerprint.compute_fingerprint``.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from nasengine.data.checks import load_checked_case
from nasengine.data.dataset import DatasetSpec, dataset_from_pairs, load_dataset, normalise_labels
from nasengine.data.errors import DataError
from nasengine.data.fingerprint import compute_fingerprint
from nasengine.data.io import clear_header_text, inspect_nifti

from .archives import ArchiveError, ArchiveLimits, extract_archive, is_archive_name
from .previews import render_preview

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: A label file is named like its image plus one of these suffixes: ``case1.nii.gz`` +
#: ``case1_seg.nii.gz`` (also ``_label``, ``_labels``, ``_mask``, ``_gt``).
LABEL_SUFFIXES = ("_seg", "_label", "_labels", "_mask", "_gt")
PAIRING_RULE = (
    "Name each label map like its image plus _seg (or _label, _mask, _gt): "
    "case1.nii.gz goes with case1_seg.nii.gz."
)
MAX_PROBLEMS = 100
#: Largest header plus extensions accepted (extensions may hold a DICOM header: tens of KB).
MAX_HEADER_BYTES = 16 * 1024 * 1024
CHUNK = 1 << 20
#: Largest dataset.json read (the Decathlon's biggest is a few hundred KB); it is parsed in memory.
MAX_DATASET_JSON_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImportLimits:
    archive: ArchiveLimits
    max_voxels: int
    max_cases: int


@dataclass
class ImportedCase:
    index: int
    case_id: str
    image_rel: str  # relative to the dataset's msd folder
    label_rel: str
    preview_name: str
    original_image_name: str
    original_label_name: str
    shape: list[int]
    n_channels: int
    spacing: list[float]
    dtype: str
    label_values: list[int]
    size_bytes: int


@dataclass
class ImportResult:
    name: str
    labels: dict[str, str]
    channel_names: list[str]
    modality: str
    cases: list[ImportedCase]
    fingerprint: dict
    size_bytes: int


@dataclass
class ImportFailed(Exception):
    problems: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p['file']}: {p['problem']}" if p["file"] else p["problem"] for p in self.problems)


def problem(file: str | Path | None, text: str) -> dict:
    return {"file": Path(file).name if file else "", "problem": text}


def _from_data_error(error: DataError) -> dict:
    return problem(error.path, error.problem)


def nifti_stem(name: str) -> str | None:
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def parse_labels(text) -> dict[int, str]:
    """Declared classes from the upload form: ``"1: liver, 2: tumour"`` (or lines, or a JSON
    object). Background 0 is added when missing. Raises ``ValueError`` with a clear message."""
    if isinstance(text, dict):
        raw = dict(text)
    else:
        text = (text or "").strip()
        if not text:
            raise ValueError("Declare the label classes, e.g. '1: liver, 2: tumour'.")
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"The label classes are not valid JSON ({exc.msg}).") from exc
            if not isinstance(raw, dict):
                raise ValueError("The label classes must be a JSON object like {\"1\": \"liver\"}.")
        else:
            raw = {}
            for item in re.split(r"[,\n;]+", text):
                item = item.strip()
                if not item:
                    continue
                match = re.fullmatch(r"(\d+)\s*[:=]\s*(.+)", item)
                if not match:
                    raise ValueError(
                        f"Cannot read the class {item!r}: write value: name, e.g. '1: liver, 2: tumour'."
                    )
                raw[match.group(1)] = match.group(2).strip()
    if not any(str(k).strip() == "0" for k in raw) and "background" not in raw:
        raw = {"0": "background", **raw}
    try:
        return normalise_labels(raw, "labels")
    except DataError as error:
        raise ValueError(f"Label classes: {error.problem}.") from error


def pair_files(paths: list[Path]) -> tuple[list[tuple[Path, Path]], list[dict]]:
    """Pair images with labels by name (see ``PAIRING_RULE``); return (pairs, problems)."""
    problems: list[dict] = []
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for path in sorted(paths):
        stem = nifti_stem(path.name)
        if stem is None:
            problems.append(problem(path, "not a NIfTI file name (expected .nii or .nii.gz)"))
            continue
        base = next(
            (stem[: -len(s)] for s in LABEL_SUFFIXES if stem.lower().endswith(s) and len(stem) > len(s)),
            None,
        )
        if base is not None:
            if base.lower() in labels:
                problems.append(problem(path, f"a second label map for case {base!r}"))
            labels[base.lower()] = path
        else:
            if stem.lower() in images:
                problems.append(problem(path, f"a second image for case {stem!r}"))
            images[stem.lower()] = path
    pairs = []
    for key, image in sorted(images.items()):
        label = labels.pop(key, None)
        if label is None:
            problems.append(problem(image, f"no label map found for this image. {PAIRING_RULE}"))
        else:
            pairs.append((image, label))
    for label in labels.values():
        problems.append(problem(label, f"no image found for this label map. {PAIRING_RULE}"))
    if not pairs and not problems:
        problems.append(problem(None, "No NIfTI image/label pairs were uploaded."))
    return pairs, problems


def _data_extent(path: Path) -> tuple[int, int]:
    """(offset of the voxel data, offset where it ends) as the header says; reads the header only."""
    image = nib.load(str(path))
    offset = int(image.dataobj.offset)
    n_bytes = int(np.prod(image.shape, dtype=np.int64)) * image.get_data_dtype().itemsize
    return offset, offset + n_bytes


def check_header_size(path: Path) -> None:
    """Refuse a header whose extensions are huge: storing the file copies them through memory."""
    offset, _ = _data_extent(path)
    if offset > MAX_HEADER_BYTES:
        raise DataError(
            path,
            f"the header and its extensions take {offset:,} bytes, more than the limit of "
            f"{MAX_HEADER_BYTES:,}; the header is probably broken",
        )


def check_no_trailing_data(path: Path) -> None:
    """Refuse bytes after the voxel data the header describes (call once the data checks passed).

    Storing a file copies everything after its header, so trailing bytes would be kept: hidden
    text nobody checked, or in a .nii.gz a stream of zeros that takes hours to copy (a
    decompression bomb). Reads at most one byte past the data.
    """
    _, end = _data_extent(path)
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as stream:
                remaining = end
                while remaining > 0:
                    chunk = stream.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                extra = bool(stream.read(1))
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise DataError(path, f"the file is truncated or corrupt ({type(exc).__name__})") from exc
    else:
        extra = path.stat().st_size > end
    if extra:
        raise DataError(
            path,
            "the file holds more data after the voxel data than its header describes; "
            "save it again with a NIfTI tool (e.g. nibabel or ITK-SNAP) and upload that",
        )


def _find_msd_root(folder: Path) -> Path:
    found = sorted(p.parent for p in folder.rglob("dataset.json") if "__MACOSX" not in p.parts)
    if not found:
        raise ImportFailed(
            [problem("dataset.json", "the archive has no dataset.json; an MSD archive holds dataset.json, imagesTr/ and labelsTr/")]
        )
    if len(found) > 1:
        raise ImportFailed([problem("dataset.json", "the archive holds more than one dataset.json; upload one dataset per archive")])
    size = (found[0] / "dataset.json").stat().st_size
    if size > MAX_DATASET_JSON_BYTES:
        raise ImportFailed(
            [problem("dataset.json", f"dataset.json is {size:,} bytes, more than the limit of {MAX_DATASET_JSON_BYTES:,}")]
        )
    return found[0]


def gather_spec(
    *, source: str, upload_dir: Path, work_dir: Path, labels, channel_names, name: str, limits: ImportLimits
) -> DatasetSpec:
    uploads = sorted(p for p in upload_dir.iterdir() if p.is_file())
    if source == "archive":
        archives = [p for p in uploads if is_archive_name(p.name)]
        if len(archives) != 1 or len(uploads) != 1:
            raise ImportFailed([problem(None, "Upload exactly one archive (.zip or .tar.gz).")])
        extracted = work_dir / "extracted"
        try:
            extract_archive(archives[0], extracted, limits.archive)
        except ArchiveError as error:
            raise ImportFailed([problem(error.member, error.problem)])
        try:
            return load_dataset(_find_msd_root(extracted))
        except DataError as error:
            raise ImportFailed([_from_data_error(error)])
    if source == "folder":
        try:
            return load_dataset(_find_msd_root(upload_dir))
        except DataError as error:
            raise ImportFailed([_from_data_error(error)])
    pairs, problems = pair_files(uploads)
    if problems:
        raise ImportFailed(problems)
    channel_names = list(channel_names or ["image"])
    if len(channel_names) == 1:
        # Multi-channel (4D) images: one name per channel, from the first image's header.
        try:
            n_channels = inspect_nifti(pairs[0][0], max_voxels=limits.max_voxels).n_channels
        except DataError:
            n_channels = 1  # the checks report the broken file
        if n_channels > 1:
            channel_names = [f"{channel_names[0]} {i}" for i in range(n_channels)]
    try:
        return dataset_from_pairs(pairs, labels, channel_names, name=name)
    except DataError as error:
        raise ImportFailed([_from_data_error(error)])


def _check_and_preview(spec: DatasetSpec, preview_dir: Path, limits: ImportLimits):
    """Check every case; return per-case facts, or raise ImportFailed with every problem."""
    problems: list[dict] = []
    checked = []
    if len(spec.cases) > limits.max_cases:
        raise ImportFailed([problem(None, f"The dataset has {len(spec.cases):,} cases, more than the limit of {limits.max_cases:,}.")])
    # Headers of every file first: a broken or huge file is refused before any data is read.
    header_ok = []
    for case in spec.cases:
        ok = True
        for path in (case.image, case.label):
            if path is None:
                continue
            try:
                inspect_nifti(path, max_voxels=limits.max_voxels)
                check_header_size(path)
            except DataError as error:
                problems.append(_from_data_error(error))
                ok = False
        if case.label is None:
            problems.append(problem(case.image, "this case has no label map"))
            ok = False
        header_ok.append(ok)
    for index, (case, ok) in enumerate(zip(spec.cases, header_ok), start=1):
        if not ok or len(problems) >= MAX_PROBLEMS:
            continue
        try:
            data = load_checked_case(case, spec.labels, n_channels=spec.n_channels, max_voxels=limits.max_voxels)
            check_no_trailing_data(case.image)
            check_no_trailing_data(case.label)
        except DataError as error:
            problems.append(_from_data_error(error))
            continue
        preview_name = f"case_{index:04d}.png"
        info = data.image.info
        if not problems:  # previews only matter when the import can still succeed
            render_preview(data.image.data[0], data.label, info.affine, preview_dir / preview_name)
        checked.append((index, case, info, data.label_values, preview_name))
        del data
    if problems:
        raise ImportFailed(problems[:MAX_PROBLEMS])
    return checked


def _store(spec: DatasetSpec, checked, msd_dir: Path) -> list[ImportedCase]:
    (msd_dir / "imagesTr").mkdir(parents=True, exist_ok=True)
    (msd_dir / "labelsTr").mkdir(parents=True, exist_ok=True)
    cases = []
    for index, case, info, label_values, preview_name in checked:
        generated = f"case_{index:04d}.nii.gz"
        image_rel = f"imagesTr/{generated}"
        label_rel = f"labelsTr/{generated}"
        try:
            clear_header_text(case.image, msd_dir / image_rel)
            clear_header_text(case.label, msd_dir / label_rel)
        except DataError as error:
            raise ImportFailed([_from_data_error(error)])
        size = (msd_dir / image_rel).stat().st_size + (msd_dir / label_rel).stat().st_size
        cases.append(
            ImportedCase(
                index=index,
                case_id=case.case_id,
                image_rel=image_rel,
                label_rel=label_rel,
                preview_name=preview_name,
                original_image_name=case.image.name,
                original_label_name=case.label.name,
                shape=list(info.shape),
                n_channels=info.n_channels,
                spacing=[round(s, 6) for s in info.spacing],
                dtype=info.dtype,
                label_values=label_values,
                size_bytes=size,
            )
        )
    channels = {str(i): name for i, name in enumerate(spec.channel_names)}
    description = {
        "name": spec.name,
        "description": "Imported by VoxelSearch (identifying header fields cleared).",
        "modality": channels,
        "labels": {str(k): v for k, v in sorted(spec.labels.items())},
        "numTraining": len(cases),
        "numTest": 0,
        "training": [{"image": f"./{c.image_rel}", "label": f"./{c.label_rel}"} for c in cases],
        "test": [],
    }
    (msd_dir / "dataset.json").write_text(json.dumps(description, indent=2), encoding="utf-8")
    return cases


def run_import(
    *,
    source: str,
    upload_dir: Path,
    work_dir: Path,
    msd_dir: Path,
    preview_dir: Path,
    name: str,
    labels,
    channel_names,
    limits: ImportLimits,
) -> ImportResult:
    """Run the whole pipeline. On ImportFailed (or any error) the caller removes the folders."""
    for folder in (work_dir, msd_dir, preview_dir):
        shutil.rmtree(folder, ignore_errors=True)  # a retried job starts clean
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = gather_spec(
        source=source, upload_dir=upload_dir, work_dir=work_dir, labels=labels,
        channel_names=channel_names, name=name, limits=limits,
    )
    checked = _check_and_preview(spec, preview_dir, limits)
    cases = _store(spec, checked, msd_dir)
    stored = load_dataset(msd_dir)
    try:
        fingerprint = compute_fingerprint(stored, max_voxels=limits.max_voxels)
    except DataError as error:
        raise ImportFailed([_from_data_error(error)])
    return ImportResult(
        name=spec.name,
        labels={str(k): v for k, v in sorted(spec.labels.items())},
        channel_names=list(spec.channel_names),
        modality=spec.modality,
        cases=cases,
        fingerprint=fingerprint,
        size_bytes=sum(c.size_bytes for c in cases),
    )
