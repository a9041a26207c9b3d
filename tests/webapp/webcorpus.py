"""Builders for test NIfTI files and archives: good ones and the bad-input corpus.

Every file is generated here (nothing downloaded). Good files carry identifying header text
(``descrip``, ``aux_file``, ``db_name``, ``intent_name``) and a header extension, so tests can
check that the import clears them.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (16, 14, 10)
PATIENT_TEXT = b"Doe^Jane 1970-01-01"


def affine(spacing=(1.5, 1.2, 3.0), origin=(-10.0, 20.0, 5.0)) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def _identifying(img) -> None:
    hdr = img.header
    hdr["descrip"] = PATIENT_TEXT
    hdr["aux_file"] = b"mrn-12345"
    if "db_name" in hdr:
        hdr["db_name"] = b"St Elsewhere"
    hdr["intent_name"] = b"Jane"
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"PatientName=Doe^Jane"))


def write_nifti(path: Path, data: np.ndarray, aff: np.ndarray | None = None, identifying: bool = True, nifti2=False) -> Path:
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    img = cls(data, affine() if aff is None else aff)
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    if identifying:
        _identifying(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def case_arrays(seed: int = 0, shape=SHAPE, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 20.0, size=shape).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    x, y, z = (s // 2 for s in shape)
    label[x - 4 : x + 4, y - 4 : y + 4, z - 2 : z + 2] = 1
    if n_classes >= 2:
        label[x - 1 : x + 2, y - 1 : y + 2, z - 1 : z + 1] = 2
    image[label > 0] += 80.0
    return image, label


def good_pair(folder: Path, name: str, seed: int = 0, suffix: str = "_seg") -> tuple[Path, Path]:
    """``<name>.nii.gz`` + ``<name><suffix>.nii.gz``."""
    image, label = case_arrays(seed)
    return (
        write_nifti(folder / f"{name}.nii.gz", image),
        write_nifti(folder / f"{name}{suffix}.nii.gz", label),
    )


def msd_folder(folder: Path, n_cases: int = 2, labels=None) -> Path:
    labels = labels or {"0": "background", "1": "organ", "2": "lesion"}
    training = []
    for i in range(n_cases):
        image, label = case_arrays(i)
        name = f"case_{i:03d}.nii.gz"
        write_nifti(folder / "imagesTr" / name, image)
        write_nifti(folder / "labelsTr" / name, label)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    description = {"name": "TestSet", "modality": {"0": "CT"}, "labels": labels, "numTraining": n_cases, "training": training}
    (folder / "dataset.json").write_text(json.dumps(description))
    return folder


def zip_folder(folder: Path, out: Path, top: str = "Task01_Test") -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return out


def tar_folder(folder: Path, out: Path, top: str = "Task01_Test") -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(folder, arcname=top)
    return out


# --- bad files -------------------------------------------------------------------------------
def truncated_gz(path: Path, seed: int = 0) -> Path:
    image, _ = case_arrays(seed)
    good = write_nifti(path.with_name("full_" + path.name), image)
    data = good.read_bytes()
    good.unlink()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def text_as_nifti(path: Path) -> Path:
    path.write_text("This is a clinical note, not an image.\n" * 20)
    return path


def huge_header(path: Path) -> Path:
    """A NIfTI-2 header claiming 100000^3 voxels (NIfTI-1 dims stop at 32767), a few data bytes."""
    hdr = nib.Nifti2Header()
    hdr.set_data_shape((100000, 100000, 100000))
    hdr.set_data_dtype(np.uint8)
    hdr.set_sform(affine(), code=1)
    raw = hdr.binaryblock + b"\x00" * 4 + b"\x00" * 64
    with gzip.open(path, "wb") as f:
        f.write(raw)
    return path


def zip_with_member(out: Path, member_name: str, payload: bytes = b"x" * 100) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(member_name), payload)
        zf.writestr("Task/dataset.json", "{}")
    return out


def tar_with_member(out: Path, member_name: str, payload: bytes = b"x" * 100, symlink_to: str | None = None) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        info = tarfile.TarInfo(member_name)
        if symlink_to is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = symlink_to
            tf.addfile(info)
        else:
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return out


def zip_bomb(out: Path, size_mb: int = 48) -> Path:
    """One highly compressible member: ``size_mb`` MB of zeros (deflate ratio about 1000:1)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo("Task/imagesTr/bomb.nii")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(size_mb):
                member.write(block)
        zf.writestr("Task/dataset.json", "{}")
    return out
