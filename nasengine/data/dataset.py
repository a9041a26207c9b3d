"""What a dataset is: its cases (image + label files), label names, channel names, modality.

Two ways in:

* :func:`load_dataset` for the Medical Segmentation Decathlon (MSD) layout: ``dataset.json`` with
  ``labels`` (MSD: ``{"0": "background", "1": "liver"}``; nnU-Net v2's ``{"background": 0}`` is
  also accepted), ``modality`` (MSD) or ``channel_names`` (nnU-Net v2), and a ``training`` list of
  ``{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}``; optional ``test`` list.
* :func:`dataset_from_pairs` for plain (image, label) file pairs, e.g. single uploads.

Only file names and ``dataset.json`` are looked at here; headers and voxel data are checked by
``nasengine.data.checks``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")

#: Channel names that mean "computed tomography" (normalised with fixed, dataset-wide statistics).
CT_NAMES = frozenset({"CT", "CTA", "COMPUTED TOMOGRAPHY"})


@dataclass(frozen=True)
class Case:
    """One training (or test) case.

    Attributes:
        case_id: the file name without ``.nii.gz`` / ``.nii``.
        image: the image file (3D, or 4D ``[X, Y, Z, C]`` for several channels).
        label: the label map (3D integer values), or ``None`` for unlabelled cases.
    """

    case_id: str
    image: Path
    label: Path | None = None


@dataclass
class DatasetSpec:
    """A dataset as the engine sees it.

    Attributes:
        name: dataset name.
        labels: label value -> name; ``0`` is background.
        channel_names: one name per image channel, e.g. ``["CT"]`` or ``["FLAIR", "T1w"]``.
        modality: ``"CT"`` when every channel is CT, the single channel's name otherwise, or
            ``"multi-channel"`` for mixed channels.
        cases: the labelled training cases (the only cases training and validation use).
        test_images: the images of the ``test`` list of ``dataset.json``, if any.
        test_cases: the same test split as cases: ``label`` is set when the entry gave one
            (``{"image": ..., "label": ...}``), ``None`` for MSD's plain ``"./imagesTs/x.nii.gz"``.
            Never used for training or validation; for held-out evaluation.
        missing_test: test entries listed but not found (only with ``missing_test="skip"``).
        root: the dataset folder (``None`` for pairs).
    """

    name: str
    labels: dict[int, str]
    channel_names: list[str]
    modality: str
    cases: list[Case]
    test_images: list[Path] = field(default_factory=list)
    test_cases: list[Case] = field(default_factory=list)
    missing_test: list[str] = field(default_factory=list)
    root: Path | None = None

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def n_classes(self) -> int:
        """Number of classes including background (the network's output channels)."""
        return len(self.labels)

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise KeyError(case_id)

    def to_dict(self) -> dict:
        """JSON-able description (paths as strings)."""
        return {
            "name": self.name,
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "channel_names": list(self.channel_names),
            "modality": self.modality,
            "cases": [
                {"case_id": c.case_id, "image": str(c.image), "label": str(c.label) if c.label else None}
                for c in self.cases
            ],
            "test_images": [str(p) for p in self.test_images],
            "test_cases": [
                {"case_id": c.case_id, "image": str(c.image), "label": str(c.label) if c.label else None}
                for c in self.test_cases
            ],
            "root": str(self.root) if self.root else None,
        }


def case_id_from_path(path: str | Path) -> str:
    """``"imagesTr/liver_003.nii.gz"`` -> ``"liver_003"``."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def modality_from_channels(channel_names: Sequence[str]) -> str:
    """One word for the dataset's modality (see :attr:`DatasetSpec.modality`)."""
    names = [str(n).strip() for n in channel_names]
    if names and all(n.upper() in CT_NAMES for n in names):
        return "CT"
    if len(set(n.upper() for n in names)) == 1:
        return names[0]
    return "multi-channel"


def normalise_labels(labels: Mapping, source: str | Path = "labels") -> dict[int, str]:
    """Accept ``{"0": "background", ...}`` (MSD), ``{0: "background"}`` or ``{"background": 0}``
    (nnU-Net v2) and return ``{0: "background", ...}`` sorted by value.

    Raises:
        DataError: unusable label declarations (named after ``source``).
    """
    if not isinstance(labels, Mapping) or not labels:
        raise DataError(source, "'labels' must be a non-empty mapping of label value to class name")
    result: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, (int, str)) and str(value).strip().lstrip("-").isdigit() and not str(key).strip().isdigit():
            number, name = int(value), str(key)  # nnU-Net v2: name -> value
        elif str(key).strip().lstrip("-").isdigit():
            number, name = int(str(key).strip()), str(value)
        else:
            raise DataError(
                source,
                f"label entry {key!r}: {value!r} is not understood; expected "
                '{"0": "background", "1": "organ", ...}',
            )
        if number < 0 or number > 65535:
            raise DataError(source, f"label value {number} is out of range (0 to 65535)")
        if number in result:
            raise DataError(source, f"label value {number} is declared twice")
        result[number] = name
    if 0 not in result:
        raise DataError(
            source, f"label 0 (background) is not declared (declared: {', '.join(map(str, sorted(result)))})"
        )
    if len(result) < 2:
        raise DataError(source, "only the background label is declared; at least one class is needed")
    return dict(sorted(result.items()))


def _channel_names(description: Mapping, source: Path) -> list[str]:
    channels = description.get("channel_names", description.get("modality"))
    if channels is None:
        raise DataError(source, "neither 'modality' (MSD) nor 'channel_names' says what the image channels are")
    if isinstance(channels, str):
        return [channels]
    if isinstance(channels, Mapping):
        try:
            ordered = sorted(channels.items(), key=lambda item: int(item[0]))
        except (TypeError, ValueError) as exc:
            raise DataError(source, f"channel keys must be 0, 1, ...; got {list(channels)}") from exc
        if [int(k) for k, _ in ordered] != list(range(len(ordered))):
            raise DataError(source, f"channel keys must be 0, 1, ... without gaps; got {list(channels)}")
        return [str(v) for _, v in ordered]
    if isinstance(channels, list) and channels:
        return [str(v) for v in channels]
    raise DataError(source, f"cannot read the channel names from {channels!r}")


def _resolve_inside(root: Path, relative: str, source: Path, what: str, listing: str = "training") -> Path:
    if not isinstance(relative, str) or not relative.strip():
        raise DataError(source, f"a {what} entry in '{listing}' is empty or not a path")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise DataError(source, f"{what} path {relative!r} points outside the dataset folder")
    if not candidate.is_file():
        raise DataError(candidate, f"{what} listed in dataset.json was not found ({relative})")
    return candidate


def load_dataset(root: str | Path, *, missing_test: str = "error") -> DatasetSpec:
    """Read an MSD-layout dataset folder.

    Args:
        root: folder holding ``dataset.json``, ``imagesTr/``, ``labelsTr/`` (``imagesTs/`` optional).
        missing_test: what a ``test`` entry whose image is absent does: ``"error"`` raises,
            ``"skip"`` leaves it out and lists it in ``spec.missing_test`` (MSD publishes
            ``dataset.json`` listing test images that are not shipped with every copy).

    Returns:
        DatasetSpec with one Case per ``training`` entry (in the listed order), and the ``test``
        entries (strings ``"./imagesTs/x.nii.gz"`` or ``{"image": ..., "label": ...}``) as
        ``test_cases`` / ``test_images``, kept apart from the training cases.

    Raises:
        DataError: missing or malformed ``dataset.json``, listed files missing, paths leaving the
            folder, duplicate case ids. File contents are not read (see ``checks``).
    """
    root = Path(root)
    source = root / "dataset.json"
    if not source.is_file():
        raise DataError(source, f"not found in {root}; an MSD dataset folder needs dataset.json next to imagesTr/ and labelsTr/")
    try:
        description = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(source, f"is not valid JSON ({exc})") from exc
    if not isinstance(description, Mapping):
        raise DataError(source, "must hold a JSON object")
    if "labels" not in description:
        raise DataError(source, "has no 'labels' (e.g. {\"0\": \"background\", \"1\": \"organ\"})")
    labels = normalise_labels(description["labels"], source)
    channel_names = _channel_names(description, source)
    training = description.get("training")
    if not isinstance(training, list) or not training:
        raise DataError(source, "has no 'training' list of {\"image\": ..., \"label\": ...} entries")
    cases: list[Case] = []
    seen: set[str] = set()
    for index, entry in enumerate(training):
        if not isinstance(entry, Mapping) or "image" not in entry or "label" not in entry:
            raise DataError(source, f"training entry {index} must have 'image' and 'label'")
        image = _resolve_inside(root, entry["image"], source, "image")
        label = _resolve_inside(root, entry["label"], source, "label")
        case_id = case_id_from_path(image)
        if case_id in seen:
            raise DataError(source, f"case {case_id!r} is listed twice in 'training'")
        seen.add(case_id)
        cases.append(Case(case_id=case_id, image=image, label=label))
    test_cases: list[Case] = []
    missing: list[str] = []
    test_entries = description.get("test", []) or []
    if not isinstance(test_entries, list):
        raise DataError(source, "'test' must be a list of image paths or {\"image\": ...} entries")
    for entry in test_entries:
        relative = entry.get("image") if isinstance(entry, Mapping) else entry
        label_relative = entry.get("label") if isinstance(entry, Mapping) else None
        try:
            image = _resolve_inside(root, relative, source, "test image", "test")
        except DataError as error:
            if missing_test != "skip" or error.path == source:  # only absent files are skipped
                raise
            missing.append(str(relative))
            continue
        label = _resolve_inside(root, label_relative, source, "test label", "test") if label_relative else None
        case_id = case_id_from_path(image)
        if case_id in seen:
            raise DataError(source, f"case {case_id!r} is listed twice (in 'training' or 'test')")
        seen.add(case_id)
        test_cases.append(Case(case_id=case_id, image=image, label=label))
    return DatasetSpec(
        name=str(description.get("name") or root.name),
        labels=labels,
        channel_names=channel_names,
        modality=modality_from_channels(channel_names),
        cases=cases,
        test_images=[c.image for c in test_cases],
        test_cases=test_cases,
        missing_test=missing,
        root=root,
    )


def dataset_from_pairs(
    pairs: Iterable[tuple[str | Path, str | Path | None]],
    labels: Mapping,
    channel_names: Sequence[str] | str,
    *,
    name: str = "dataset",
) -> DatasetSpec:
    """Build a DatasetSpec from (image, label) file pairs.

    Args:
        pairs: ``[(image_path, label_path_or_None), ...]``.
        labels: label declarations (any form :func:`normalise_labels` accepts).
        channel_names: one name per channel, e.g. ``["MR"]`` (a single string is one channel).
        name: dataset name.

    Raises:
        DataError: missing files, duplicate case ids, bad label declarations.
    """
    if isinstance(channel_names, str):
        channel_names = [channel_names]
    cases: list[Case] = []
    seen: set[str] = set()
    for image, label in pairs:
        image = Path(image)
        if not image.is_file():
            raise DataError(image, "image file not found")
        if label is not None:
            label = Path(label)
            if not label.is_file():
                raise DataError(label, "label file not found")
        case_id = case_id_from_path(image)
        if case_id in seen:
            raise DataError(image, f"two images have the same case name {case_id!r}")
        seen.add(case_id)
        cases.append(Case(case_id=case_id, image=image, label=label))
    if not cases:
        raise DataError(name, "no image/label pairs were given")
    return DatasetSpec(
        name=name,
        labels=normalise_labels(labels, name),
        channel_names=[str(c) for c in channel_names],
        modality=modality_from_channels(channel_names),
        cases=cases,
    )
