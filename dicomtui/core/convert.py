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


def write(volume: Volume | list[Volume], path: str | Path) -> list[Path]:
    """Write ``volume`` (or a list of same-grid volumes, as 4D) to ``path`` in the format its extension names.

    Diffusion volumes also get FSL ``.bval``/``.bvec`` files next to a NIfTI. Returns the paths written."""
    path = Path(path)
    fmt = output_format(path)
    volumes = volume if isinstance(volume, list) else [volume]
    first = volumes[0]
    for other in volumes[1:]:
        if other.array.shape != first.array.shape or not np.allclose(other.affine, first.affine, atol=1e-4):
            raise ConvertError(f"{path}: the volumes do not share one grid, so they cannot form one 4D image")
    arrays = [np.ascontiguousarray(v.array.transpose(2, 1, 0)) for v in volumes]  # [k, j, i] → [i, j, k]
    data = arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=-1)
    written = [_write_nrrd(first, data, path) if fmt == ".nrrd" else _write_nifti(first, data, path)]
    if fmt != ".nrrd" and len(volumes) > 1 and all("bvalue" in v.extra for v in volumes):
        written += write_fsl_gradients(volumes, path)
    return written


def _write_nrrd(volume: Volume, data: np.ndarray, path: Path) -> Path:
    import nrrd

    directions = volume.affine[:3, :3].T.tolist()  # one row per axis i, j, k
    kinds = ["domain", "domain", "domain"]
    if data.ndim == 4:
        directions.append([float("nan")] * 3)
        kinds.append("list")
    header = {"space": "left-posterior-superior", "space directions": directions,
              "space origin": volume.affine[:3, 3].tolist(), "kinds": kinds, "encoding": "gzip"}
    nrrd.write(str(path), data, header, index_order="F")
    return path


def _write_nifti(volume: Volume, data: np.ndarray, path: Path) -> Path:
    import nibabel as nib

    affine = LPS_TO_RAS @ volume.affine
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)  # scanner-anatomical
    image.set_qform(affine, code=1)  # nibabel keeps the closest rotation when the sform is sheared (tilt)
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = (volume.name or "dicomtui")[:79].encode("ascii", "replace")
    nib.save(image, str(path))
    return path


def fsl_bvecs(volumes: list[Volume]) -> np.ndarray:
    """Gradient directions (3 × volumes) in the NIfTI's voxel axes, x negated when the image is stored
    "neurological" (positive determinant), as FSL and dcm2niix write them."""
    affine = LPS_TO_RAS @ volumes[0].affine
    directions_lps = volumes[0].direction  # unit i, j, k in LPS
    flip = np.linalg.det(affine[:3, :3]) > 0
    out = np.zeros((3, len(volumes)))
    for n, vol in enumerate(volumes):
        g = vol.extra.get("gradient")
        if g is None or not np.any(g):
            continue
        v = directions_lps.T @ (np.asarray(g, dtype=float) / np.linalg.norm(g))
        if flip:
            v[0] = -v[0]
        out[:, n] = v
    return out


def write_fsl_gradients(volumes: list[Volume], path: Path) -> list[Path]:
    stem = str(path)[: -len(output_format(path))]
    bval, bvec = Path(stem + ".bval"), Path(stem + ".bvec")
    bval.write_text(" ".join(f"{v.extra['bvalue']:g}" for v in volumes) + "\n")
    vectors = fsl_bvecs(volumes)
    bvec.write_text("".join(" ".join(f"{x:.6f}" for x in row) + "\n" for row in vectors))
    return [bval, bvec]
