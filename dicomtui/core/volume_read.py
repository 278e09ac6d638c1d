"""Read a NIfTI-1/2 or NRRD image file into a :class:`~dicomtui.core.volume.Volume` (the reverse of volume_io).

The voxels come back indexed ``[k, j, i]`` and the affine maps ``(i, j, k)`` to LPS millimetres, as every Volume:
NIfTI's RAS world (its sform when set, else its qform: the NIfTI-1 rule, nifti1.h "Method 3 / Method 2") is turned
into LPS here, once, and NRRD's ``space`` is honoured (LPS, RAS or LAS). NIfTI is read by nibabel (the reference
reader: every datatype, both byte orders, NIfTI-2, scl_slope/scl_inter applied, .gz), NRRD by pynrrd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import VolumeWriteError
from .volume import Volume

# NRRD ``space`` values (NRRD format 5, "space") → the sign that turns each axis into LPS
_NRRD_SPACES = {"left-posterior-superior": (1, 1, 1), "right-anterior-superior": (-1, -1, 1),
                "left-anterior-superior": (1, -1, 1), "LPS": (1, 1, 1), "RAS": (-1, -1, 1), "LAS": (1, -1, 1)}
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_image(path: str | Path, volume: int | None = None) -> Volume:
    """The 3-D volume in ``path`` (.nii, .nii.gz, .nrrd, .nhdr): ``array`` [k, j, i] in the file's data type
    (scaled to float when the NIfTI has scl_slope/scl_inter), ``affine`` (i, j, k) → LPS mm, ``name`` the file's
    stem. ``volume``: which volume (from 0) of a 4-D image (time points, b-values); a 4-D image needs it. Raises
    VolumeWriteError when the file cannot be read, is not a grey image, or ``volume`` is out of range."""
    array, affine, stem = _read(Path(path))
    if array.ndim == 4 and (volume is not None or array.shape[3] == 1):
        if not 0 <= (volume or 0) < array.shape[3]:
            raise VolumeWriteError(f"{path} holds {array.shape[3]} volumes: choose one from 0 to {array.shape[3] - 1}.")
        array = array[..., volume or 0]
    if array.ndim != 3:
        hint = (" (choose one of its volumes, or write them all as one series: volume-to-dicom --volume N or "
                "--all-volumes)" if array.ndim == 4 else "")
        raise VolumeWriteError(f"{path} holds a {array.ndim}-D image of shape {array.shape}; only a 3-D volume can "
                               f"become a DICOM series{hint}.")
    return Volume(np.ascontiguousarray(array.transpose(2, 1, 0)), affine, name=stem)


def read_image_volumes(path: str | Path) -> list[Volume]:
    """Every volume of ``path``, the file read once: [the volume] of a 3-D image, each volume of a 4-D image in
    order (time points, b-values), as :func:`read_image` returns one. Raises VolumeWriteError as it does."""
    array, affine, stem = _read(Path(path))
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise VolumeWriteError(f"{path} holds a {array.ndim}-D image of shape {array.shape}; only 3-D volumes can "
                               f"become a DICOM series.")
    return [Volume(np.ascontiguousarray(array[..., t].transpose(2, 1, 0)), affine, name=stem)
            for t in range(array.shape[3])]


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(array [i, j, k(, t)], affine (i, j, k) → LPS, the file's stem). Raises VolumeWriteError."""
    from nibabel.filebasedimages import ImageFileError
    from nrrd.errors import NRRDError

    lower = path.name.lower()
    try:
        if lower.endswith((".nii", ".nii.gz")):
            array, affine = _read_nifti(path)
        elif lower.endswith((".nrrd", ".nhdr")):
            array, affine = _read_nrrd(path)
        else:
            raise VolumeWriteError(f"{path} is neither NIfTI (.nii, .nii.gz) nor NRRD (.nrrd, .nhdr).")
    except (OSError, ValueError, EOFError, ImageFileError, NRRDError) as exc:
        raise VolumeWriteError(f"cannot read {path}: {exc}") from exc
    stem = path.name[: -len(".nii.gz")] if lower.endswith(".nii.gz") else path.stem
    return array, affine, stem


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel

    image: Any = nibabel.load(str(path))
    affine = image.affine  # the sform when coded, else the qform, else pixdim alone (nibabel's get_best_affine)
    array = np.asanyarray(image.dataobj)  # [i, j, k(, t)]; scl_slope/scl_inter applied when set
    return array, _RAS_TO_LPS @ np.asarray(affine, dtype=float)


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nrrd

    data, header = nrrd.read(str(path), index_order="F")  # data[i, j, k]: the first axis varies fastest
    directions = header.get("space directions")
    space = str(header.get("space", "left-posterior-superior"))
    if directions is None or space not in _NRRD_SPACES:
        raise ValueError(f"no 'space directions' in a known space (found space {space!r})")
    rows = [np.asarray(d, dtype=float) for d in directions]
    keep = [n for n, d in enumerate(rows) if np.all(np.isfinite(d))]  # axes of kind "list"/"vector" have none
    if len(keep) != 3 or data.ndim != len(rows):
        raise ValueError(f"{len(keep)} spatial axes in {len(rows)} (only one 3-D grey volume is read)")
    affine = np.eye(4)
    affine[:3, :3] = np.stack([rows[n] for n in keep], axis=1)
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    affine = np.diag([*_NRRD_SPACES[space], 1.0]) @ affine
    others = [n for n in range(data.ndim) if n not in keep]
    data = np.moveaxis(data, keep + others, list(range(data.ndim)))
    return data, affine
