"""The import pipeline: from uploaded files to a checked, scrubbed dataset in MSD layout.

No Django models here: ``run_import`` takes plain paths and settings and either returns an
:class:`ImportResult` or raises :class:`ImportFailed` with every problem found, each a
``{"file", "problem"}`` dict worded for a researcher. The NIfTI checks are calls into
``nasengine.data`` (the engine reads the data the same way later).

Steps:
1. Gather: an archive is checked from its directory, then stream-extracted with caps
   (``archives``); its ``dataset.json`` is read (size and nesting depth capped, every listed file
   looked for, every missing one named) and then by ``nasengine.data.dataset.load_dataset``.
   Test images that ``dataset.json`` lists but the archive lacks (MSD publishes it so) are a
   note, not a refusal; present ``imagesTs/`` (and ``labelsTs/``) become the test split. Single
   files are each diagnosed as themselves first (is it NIfTI at all?), then paired by name
   (``pair_files``) and described by ``dataset_from_pairs``.
2. Check every file and case: first ``nasengine.data.checks.check_nifti_bytes``, the one cheap
   raw-byte check shared with the prediction upload (header and extension sizes, pixdim,
   truncation, trailing data, decompressed size, memory estimate), then header checks (dims,
   dtype, affine, image/label agreement), then data (NaN/Inf, label values declared) with
   ``load_checked_case``; every problem is collected, per file. A preview PNG is drawn from the
   data already read.
3. Store: each image is copied with its identifying header text cleared
   (``nasengine.data.io.clear_header_text``) to ``imagesTr/case_0001.nii.gz`` etc., each label
   map is written as uint8 with the same header geometry (identifying text and extensions
   dropped), test cases go to ``imagesTs/`` / ``labelsTs/``, and a fresh ``dataset.json`` lists
   both splits: the stored dataset is an MSD folder the engine can read.
4. Fingerprint the stored dataset (training cases only) with
   ``nasengine.data.fingerprint.compute_fingerprint``.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from nasengine.data.checks import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_MEMORY_BYTES,
    NiftiBytes,
    check_nifti_bytes,
    load_checked_case,
    read_label,
)
from nasengine.data.dataset import Case as SpecCase
from nasengine.data.dataset import DatasetSpec, case_id_from_path, dataset_from_pairs, load_dataset, normalise_labels
from nasengine.data.errors import DataError, scrub_paths
from nasengine.data.fingerprint import compute_fingerprint
from nasengine.data.io import IDENTIFYING_HEADER_FIELDS, clear_header_text, inspect_nifti
from webapp.common.parsers import JSONTooDeep, loads_limited

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
MAX_HEADER_BYTES = DEFAULT_MAX_HEADER_BYTES
#: Largest dataset.json read (the Decathlon's biggest is a few hundred KB); it is parsed in memory.
MAX_DATASET_JSON_BYTES = 16 * 1024 * 1024
#: Most declared classes, background included: label maps are stored as uint8 (values 0-255),
#: and the choice of 255 (not 256) keeps one value free, as the issue asks "<= 255 incl. background".
MAX_CLASSES = 255
#: Largest label value accepted (uint8 storage).
MAX_LABEL_VALUE = 255


@dataclass(frozen=True)
class ImportLimits:
    archive: ArchiveLimits
    max_voxels: int
    max_cases: int
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES


@dataclass
class ImportedCase:
    index: int
    case_id: str
    image_rel: str  # relative to the dataset's msd folder
    label_rel: str  # "" for a test case without a label map
    preview_name: str
    original_image_name: str
    original_label_name: str
    shape: list[int]
    n_channels: int
    spacing: list[float]
    dtype: str
    label_values: list[int]
    size_bytes: int
    split: str = "train"  # "train" or "test"


@dataclass
class ImportResult:
    name: str
    labels: dict[str, str]
    channel_names: list[str]
    modality: str
    cases: list[ImportedCase]  # training cases, then the test split
    fingerprint: dict
    size_bytes: int
    notes: list[dict] = field(default_factory=list)  # [{"file", "note"}]: imported anyway


@dataclass
class ImportFailed(Exception):
    problems: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p['file']}: {p['problem']}" if p["file"] else p["problem"] for p in self.problems)


def problem(file: str | Path | None, text: str) -> dict:
    """One problem shown to users: the file's name (never its server path) and what is wrong."""
    return {"file": Path(file).name if file else "", "problem": scrub_paths(text)}


def note(file: str | Path | None, text: str) -> dict:
    return {"file": Path(file).name if file else "", "note": scrub_paths(text)}


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
                raw = loads_limited(text)
            except JSONTooDeep as exc:
                raise ValueError(f"The label classes are not valid: {exc}.") from exc
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
        return cap_labels(raw, "labels")
    except DataError as error:
        raise ValueError(f"Label classes: {error.problem}.") from error


def cap_labels(raw, source: str | Path) -> dict[int, str]:
    """``normalise_labels`` within the uint8 storage: at most ``MAX_CLASSES`` classes (background
    included), values 0 to ``MAX_LABEL_VALUE``, names of at most 200 characters. The count is
    checked before the entries are read (a dataset.json declaring 60,000 classes is refused
    without building them)."""
    if isinstance(raw, dict) and len(raw) > MAX_CLASSES:
        raise DataError(
            source,
            f"{len(raw):,} classes are declared, more than the limit of {MAX_CLASSES} (background "
            "included; label maps are stored with values 0 to 255)",
        )
    labels = normalise_labels(raw, source)
    too_big = [v for v in labels if v > MAX_LABEL_VALUE]
    if too_big:
        raise DataError(source, f"label value {too_big[0]} is above {MAX_LABEL_VALUE}; label maps are stored with values 0 to 255")
    long_names = [name for name in labels.values() if len(name) > 200]
    if long_names:
        raise DataError(source, f"the class name {long_names[0][:40]!r}… is longer than 200 characters")
    return labels


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


def check_file(path: Path, limits: ImportLimits, role: str = "image", *, header_only: bool = False) -> NiftiBytes:
    """The shared cheap raw-byte check (``check_nifti_bytes``) with this import's caps."""
    return check_nifti_bytes(
        path, max_voxels=limits.max_voxels, max_header_bytes=MAX_HEADER_BYTES,
        max_memory_bytes=limits.max_memory_bytes, role=role, header_only=header_only,
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


def _listed_path_problem(root: Path, relative, what: str) -> str | None:
    """Why a path listed in dataset.json is unusable (None when it is a file in the folder)."""
    if not isinstance(relative, str) or not relative.strip():
        return f"a {what} entry is empty or not a path"
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        return f"{what} path {relative!r} points outside the dataset folder"
    if not candidate.is_file():
        return f"{what} listed in dataset.json was not found ({relative})"
    return None


def _read_description(root: Path) -> tuple[list[dict], list[dict]]:
    """Check dataset.json before the engine reads it: (problems, notes), every one listed.

    JSON nesting depth and the declared classes are capped; every training image and label map
    listed is looked for (each missing one is its own problem); a listed test image that is
    absent is a note (MSD's dataset.json lists test images that not every copy ships).
    """
    source = root / "dataset.json"
    try:
        description = loads_limited(source.read_bytes())
    except JSONTooDeep as exc:
        return [problem("dataset.json", f"dataset.json is not usable: {exc}")], []
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [problem("dataset.json", f"dataset.json is not valid JSON ({exc})")], []
    if not isinstance(description, dict):
        return [problem("dataset.json", "dataset.json must hold a JSON object")], []
    problems: list[dict] = []
    notes: list[dict] = []
    if "labels" in description:
        try:
            cap_labels(description["labels"], "dataset.json")
        except DataError as error:
            problems.append(_from_data_error(error))
    training = description.get("training")
    if isinstance(training, list):
        for index, entry in enumerate(training):
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                problems.append(problem("dataset.json", f"training entry {index} must have 'image' and 'label'"))
                continue
            for key, what in (("image", "image"), ("label", "label")):
                reason = _listed_path_problem(root, entry[key], what)
                if reason:
                    name = entry[key] if isinstance(entry[key], str) and entry[key].strip() else "dataset.json"
                    problems.append(problem(name, reason))
    test = description.get("test") or []
    if isinstance(test, list):
        for entry in test:
            relative = entry.get("image") if isinstance(entry, dict) else entry
            reason = _listed_path_problem(root, relative, "test image")
            if reason and reason.endswith(f"was not found ({relative})"):
                notes.append(note(relative, "listed as a test image in dataset.json but not included; imported without it"))
            elif reason:
                problems.append(problem(relative if isinstance(relative, str) and relative.strip() else "dataset.json", reason))
            label = entry.get("label") if isinstance(entry, dict) else None
            if label is not None and not reason:
                label_reason = _listed_path_problem(root, label, "test label")
                if label_reason:
                    problems.append(problem(label if isinstance(label, str) and label.strip() else "dataset.json", label_reason))
    return problems, notes


def _test_split(spec: DatasetSpec, root: Path) -> list[SpecCase]:
    """The test split: the listed test images found, then any other image in ``imagesTs/``;
    a label map of the same name in ``labelsTs/`` goes with its image when the entry gave none."""
    cases = list(spec.test_cases)
    listed = {c.image.resolve() for c in cases}
    images_ts = root / "imagesTs"
    if images_ts.is_dir():
        for path in sorted(images_ts.iterdir()):
            if path.is_file() and nifti_stem(path.name) is not None and path.resolve() not in listed:
                cases.append(SpecCase(case_id=case_id_from_path(path), image=path, label=None))
    labels_ts = root / "labelsTs"
    out = []
    for case in cases:
        label = case.label
        if label is None and (labels_ts / case.image.name).is_file():
            label = labels_ts / case.image.name
        out.append(SpecCase(case_id=case.case_id, image=case.image, label=label))
    return out


@dataclass
class Gathered:
    """What ``gather_spec`` found: the spec, its test split, notes, and the raw-byte facts of the
    files already checked (so no file is decompressed twice for the same check)."""

    spec: DatasetSpec
    test_cases: list[SpecCase] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    facts: dict[Path, NiftiBytes] = field(default_factory=dict)


def _gather_msd(root: Path) -> Gathered:
    problems, notes = _read_description(root)
    if problems:
        raise ImportFailed(problems[:MAX_PROBLEMS])
    try:
        spec = load_dataset(root, missing_test="skip")
    except DataError as error:
        raise ImportFailed([_from_data_error(error)])
    test_cases = _test_split(spec, root)
    ids = [c.case_id for c in spec.cases]
    clashes = [c for c in test_cases if c.case_id in ids]
    if clashes:
        raise ImportFailed([problem(c.image, f"a test image has the same case name {c.case_id!r} as a training case") for c in clashes])
    return Gathered(spec=spec, test_cases=test_cases, notes=notes[:MAX_PROBLEMS])


def _role_by_name(path: Path) -> str:
    stem = (nifti_stem(path.name) or "").lower()
    return "label" if any(stem.endswith(s) and len(stem) > len(s) for s in LABEL_SUFFIXES) else "image"


def gather_spec(
    *, source: str, upload_dir: Path, work_dir: Path, labels, channel_names, name: str, limits: ImportLimits
) -> Gathered:
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
        return _gather_msd(_find_msd_root(extracted))
    if source == "folder":
        return _gather_msd(_find_msd_root(upload_dir))
    # Single files: each is diagnosed as itself first (is it NIfTI at all?); pairing advice is
    # given only for files that are fine on their own.
    own_problems: list[dict] = []
    broken: set[str] = set()
    facts: dict[Path, NiftiBytes] = {}
    for path in uploads:
        if nifti_stem(path.name) is None:
            continue  # pair_files names it
        try:
            facts[path] = check_file(path, limits, _role_by_name(path))
            inspect_nifti(path, max_voxels=limits.max_voxels)
        except DataError as error:
            own_problems.append(_from_data_error(error))
            broken.add(path.name)
    pairs, pairing = pair_files(uploads)
    problems = own_problems + [p for p in pairing if p["file"] not in broken]
    if problems:
        raise ImportFailed(problems[:MAX_PROBLEMS])
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
        spec = dataset_from_pairs(pairs, labels, channel_names, name=name)
    except DataError as error:
        raise ImportFailed([_from_data_error(error)])
    return Gathered(spec=spec, facts=facts)


def _check_and_preview(gathered: Gathered, preview_dir: Path, limits: ImportLimits):
    """Check every case (training, then test); return per-case facts, or raise ImportFailed with
    every problem, one per file."""
    spec = gathered.spec
    problems: list[dict] = []
    checked = []
    everything = [(case, "train") for case in spec.cases] + [(case, "test") for case in gathered.test_cases]
    if len(everything) > limits.max_cases:
        raise ImportFailed([problem(None, f"The dataset has {len(everything):,} cases, more than the limit of {limits.max_cases:,}.")])
    # The cheap raw-byte checks and the headers of every file first: a broken or huge file is
    # refused before any voxel data is read into memory.
    header_ok = []
    for case, split in everything:
        ok = True
        # The case's memory estimate from both headers first (540 bytes each), so a case too big
        # to preprocess is refused before either file is streamed.
        try:
            memory = sum(
                check_file(path, limits, role, header_only=True).memory_bytes
                for path, role in ((case.image, "image"), (case.label, "label")) if path is not None
            )
        except DataError:
            memory = 0  # the full check below names the problem
        if memory > limits.max_memory_bytes:
            problems.append(problem(
                case.image,
                f"preprocessing this case (image and label map) would take about {memory / 1024**3:.1f} GB of "
                f"memory, more than the limit of {limits.max_memory_bytes / 1024**3:.1f} GB; crop or downsample it first",
            ))
            header_ok.append(False)
            continue
        for path, role in ((case.image, "image"), (case.label, "label")):
            if path is None:
                continue
            try:
                facts = gathered.facts.get(path) or check_file(path, limits, role)
                if facts.role != role:  # a single-file upload guessed the other role
                    facts = check_file(path, limits, role)
                inspect_nifti(path, max_voxels=limits.max_voxels)
            except DataError as error:
                problems.append(_from_data_error(error))
                ok = False
        if case.label is None and split == "train":
            problems.append(problem(case.image, "this case has no label map"))
            ok = False
        header_ok.append(ok)
    for index, ((case, split), ok) in enumerate(zip(everything, header_ok), start=1):
        if not ok or len(problems) >= MAX_PROBLEMS:
            continue
        try:
            data = load_checked_case(case, spec.labels, n_channels=spec.n_channels, max_voxels=limits.max_voxels)
        except DataError as error:
            problems.append(_from_data_error(error))
            continue
        preview_name = f"case_{index:04d}.png"
        info = data.image.info
        if not problems:  # previews only matter when the import can still succeed
            render_preview(data.image.data[0], data.label, info.affine, preview_dir / preview_name)
        checked.append((index, case, split, info, data.label_values, preview_name))
        del data
    if problems:
        raise ImportFailed(problems[:MAX_PROBLEMS])
    return checked


def store_label_uint8(source: Path, target: Path, max_value: int = MAX_LABEL_VALUE) -> Path:
    """Write a checked label map as uint8 NIfTI with the source header's geometry (sform, qform,
    pixdim unchanged), its identifying text fields and extensions dropped. The voxels are read
    as integers slab by slab (``read_label``)."""
    image = nib.load(str(source))
    label = read_label(source, max_value=max_value)
    header = image.header.copy()
    for name in IDENTIFYING_HEADER_FIELDS:
        if name in header.keys():
            header[name] = b""
    del header.extensions[:]
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    out = type(image)(label.data, None, header=header)  # affine None: the header's geometry stays
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".partial-{target.name}")  # nibabel picks the format from the suffix
    try:
        nib.save(out, str(tmp))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return target


def _store(gathered: Gathered, checked, msd_dir: Path) -> list[ImportedCase]:
    spec = gathered.spec
    cases = []
    for index, case, split, info, label_values, preview_name in checked:
        generated = f"case_{index:04d}.nii.gz"
        images, labels = ("imagesTr", "labelsTr") if split == "train" else ("imagesTs", "labelsTs")
        image_rel = f"{images}/{generated}"
        label_rel = f"{labels}/{generated}" if case.label is not None else ""
        try:
            clear_header_text(case.image, msd_dir / image_rel)
            if label_rel:
                store_label_uint8(case.label, msd_dir / label_rel)
        except DataError as error:
            raise ImportFailed([_from_data_error(error)])
        size = (msd_dir / image_rel).stat().st_size + ((msd_dir / label_rel).stat().st_size if label_rel else 0)
        cases.append(
            ImportedCase(
                index=index,
                case_id=case.case_id,
                image_rel=image_rel,
                label_rel=label_rel,
                preview_name=preview_name,
                original_image_name=case.image.name,
                original_label_name=case.label.name if case.label is not None else "",
                shape=list(info.shape),
                n_channels=info.n_channels,
                spacing=[round(s, 6) for s in info.spacing],
                dtype=info.dtype,
                label_values=label_values,
                size_bytes=size,
                split=split,
            )
        )
    for folder in ("imagesTr", "labelsTr"):
        (msd_dir / folder).mkdir(parents=True, exist_ok=True)
    training = [c for c in cases if c.split == "train"]
    test = [c for c in cases if c.split == "test"]
    channels = {str(i): name for i, name in enumerate(spec.channel_names)}
    description = {
        "name": spec.name,
        "description": "Imported by VoxelSearch (identifying header fields cleared).",
        "modality": channels,
        "labels": {str(k): v for k, v in sorted(spec.labels.items())},
        "numTraining": len(training),
        "numTest": len(test),
        "training": [{"image": f"./{c.image_rel}", "label": f"./{c.label_rel}"} for c in training],
        # The held-out test split, never used for search or retraining: {"image", "label"}
        # entries (the label only when one was uploaded), which load_dataset reads as test_cases.
        "test": [
            {"image": f"./{c.image_rel}", **({"label": f"./{c.label_rel}"} if c.label_rel else {})} for c in test
        ],
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
    gathered = gather_spec(
        source=source, upload_dir=upload_dir, work_dir=work_dir, labels=labels,
        channel_names=channel_names, name=name, limits=limits,
    )
    spec = gathered.spec
    checked = _check_and_preview(gathered, preview_dir, limits)
    cases = _store(gathered, checked, msd_dir)
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
        notes=gathered.notes,
    )
