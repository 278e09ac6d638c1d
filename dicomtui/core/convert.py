"""Write a Volume as NIfTI (nibabel) or NRRD (pynrrd). LPS → RAS happens here, once, for NIfTI."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
FORMATS = (".nii", ".nii.gz", ".nrrd")


class ConvertError(Exception):
    """The volume cannot be written where or how asked."""


def output_format(path: str | Path) -> str:
    name = str(path).lower()
    for ext in (".nii.gz", ".nii", ".nrrd"):
        if name.endswith(ext):
            return ext
    raise ConvertError(f"{path}: the output must end in .nii, .nii.gz or .nrrd")


def write(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to ``path`` in the format its extension names; returns the path."""
    path = Path(path)
    fmt = output_format(path)
    data = np.ascontiguousarray(volume.array.transpose(2, 1, 0))  # [k, j, i] → [i, j, k]
    if fmt == ".nrrd":
        import nrrd

        header = {
            "space": "left-posterior-superior",
            "space directions": volume.affine[:3, :3].T.tolist(),  # one row per axis i, j, k
            "space origin": volume.affine[:3, 3].tolist(),
            "kinds": ["domain", "domain", "domain"],
            "encoding": "gzip",
        }
        nrrd.write(str(path), data, header, index_order="F")
        return path
    import nibabel as nib

    affine = LPS_TO_RAS @ volume.affine
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)  # scanner-anatomical
    image.set_qform(affine, code=1)  # nibabel keeps the closest rotation when the sform is sheared (tilt)
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = (volume.name or "dicomtui")[:79].encode("ascii", "replace")
    nib.save(image, str(path))
    return path
