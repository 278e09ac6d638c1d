"""Write Volumes to files: NIfTI-1 (written here, read back by nibabel in the tests), NRRD (pynrrd), and FSL
``.bval``/``.bvec`` beside a diffusion NIfTI. LPS → RAS happens here, once, for NIfTI."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .errors import VolumeWriteError
from .volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
EXTENSIONS = (".nii.gz", ".nii", ".nrrd")  # longest first: ".nii.gz" also ends in ".gz", not ".nii"


def output_format(path: str | Path) -> str:
    """The format ``path`` names by its extension (".nii", ".nii.gz" or ".nrrd", case-insensitive); raises
    ``VolumeWriteError`` for any other."""
    name = str(path).lower()
    for ext in EXTENSIONS:
        if name.endswith(ext):
            return ext
    raise VolumeWriteError(f"{path}: the output must end in .nii, .nii.gz or .nrrd")


def write_volume(volumes: Volume | list[Volume], path: str | Path) -> list[Path]:
    """Write one volume, or several of one grid as one 4D image ([i, j, k, t]), to ``path`` in the format its
    extension names; the volumes as ``load`` returns them (a list of one is written as 3D).

    Diffusion volumes (each with ``extra["bvalue"]``) also get FSL ``.bval``/``.bvec`` files next to a NIfTI.
    Colour volumes ([k, j, i, 3] uint8) are NIfTI RGB24 (datatype 128, R, G, B interleaved per voxel, as dcm2niix
    writes them) or NRRD with a first axis of 3 samples, kind RGB-color.
    Returns the paths written, the image first. Raises ``VolumeWriteError`` (extension, grids differ, a type
    NIfTI-1 cannot store) or ``OSError``."""
    path = Path(path)
    fmt = output_format(path)
    volumes = volumes if isinstance(volumes, list) else [volumes]
    first = volumes[0]
    for other in volumes[1:]:
        if other.array.shape != first.array.shape or not np.allclose(other.affine, first.affine, atol=1e-4):
            raise VolumeWriteError(f"{path}: the volumes do not share one grid, so they cannot form one 4D image")
    # [k, j, i] in C order is [i, j, k] in Fortran order: the layout NIfTI and NRRD store. Views, no copies.
    stacked = first.array if len(volumes) == 1 else np.stack([v.array for v in volumes])  # [t, k, j, i]
    data = stacked.T
    written = [_write_nrrd(first, data, path) if fmt == ".nrrd" else _write_nifti(first, stacked, path)]
    if fmt != ".nrrd" and len(volumes) > 1 and all("bvalue" in v.extra for v in volumes):
        written += write_fsl_gradients(volumes, path)
    return written


def _write_nrrd(volume: Volume, data: np.ndarray, path: Path) -> Path:
    import nrrd

    directions = volume.affine[:3, :3].T.tolist()  # one row per axis i, j, k
    kinds = ["domain", "domain", "domain"]
    if data.ndim == (5 if volume.is_rgb else 4):
        directions.append([float("nan")] * 3)
        kinds.append("list")
    if volume.is_rgb:  # data is (3, i, j, k[, t]): the samples vary fastest, as NRRD's RGB-color axis is stored
        directions.insert(0, [float("nan")] * 3)
        kinds.insert(0, "RGB-color")
    header = {"space": "left-posterior-superior", "space directions": directions,
              "space origin": volume.affine[:3, 3].tolist(), "kinds": kinds, "encoding": "gzip"}
    # level 1, as our NIfTI: pynrrd's default 9 took 10 s for 20 noisy 512² slices here, level 1 0.2–0.8 s, the
    # file 4 % larger
    nrrd.write(str(path), data, header, index_order="F", compression_level=1)
    return path


_NIFTI_TYPES = {np.dtype(np.uint8): 2, np.dtype(np.int16): 4, np.dtype(np.int32): 8, np.dtype(np.float32): 16,
                np.dtype(np.float64): 64, np.dtype(np.int8): 256, np.dtype(np.uint16): 512, np.dtype(np.uint32): 768,
                np.dtype(np.int64): 1024}
_NIFTI_RGB24 = 128  # DT_RGB24 (nifti1.h): three uint8 per voxel, R G B
_NIFTI_HEADER = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"), ("session_error", "<i2"),
    ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", 8), ("intent_p", "<f4", 3), ("intent_code", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", 8), ("vox_offset", "<f4"),
    ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"), ("slice_code", "u1"), ("xyzt_units", "u1"),
    ("cal_max", "<f4"), ("cal_min", "<f4"), ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"),
    ("glmin", "<i4"), ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern", "<f4", 3), ("qoffset", "<f4", 3), ("srow", "<f4", (3, 4)), ("intent_name", "S16"), ("magic", "S4"),
])


def _write_nifti(volume: Volume, stacked: np.ndarray, path: Path) -> Path:
    """NIfTI-1 single file, header per the NIfTI-1 standard (nifti1.h), voxels written straight from memory.

    Written here rather than through nibabel, whose import alone (it pulls in pydicom) takes longer than
    dcm2niix's whole conversion; tests read every file back with nibabel and compare with dcm2niix."""
    dtype = stacked.dtype.newbyteorder("<") if stacked.dtype.byteorder == ">" else stacked.dtype
    rgb = volume.is_rgb
    shape = stacked.shape[-2 if rgb else -1::-1]  # (i, j, k[, t]); RGB: the samples are one voxel, not an axis
    header = nifti_header(volume.affine, shape, dtype, volume.name, rgb=rgb, path=path)
    with open_nifti(path) as f:
        f.write(header)
        data = np.ascontiguousarray(stacked, dtype=dtype)
        f.write(data.data.cast("B"))
    return path


def nifti_header(affine_lps: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, name: str = "", *,
                 slope: float = 1.0, inter: float = 0.0, rgb: bool = False, path: str | Path = "") -> bytes:
    """The 352 bytes before the voxels of a single-file NIfTI-1 (``vox_offset`` 352, no extensions; nifti1.h).

    ``affine_lps`` maps (i, j, k, 1) to LPS mm (turned to RAS here, the sform; the qform too unless sheared);
    ``shape`` is (i, j, k[, t]); ``dtype`` little-endian, one NIfTI-1 can store; stored values times ``slope``
    plus ``inter`` are the data (scl_slope/scl_inter); ``rgb``: uint8 samples R, G, B per voxel (DT_RGB24, the
    samples not counted in ``shape``). Raises ``VolumeWriteError`` (naming ``path``) for a type
    NIfTI-1 cannot store."""
    affine = LPS_TO_RAS @ affine_lps
    dtype = np.dtype(dtype)
    if dtype not in _NIFTI_TYPES:
        raise VolumeWriteError(f"{path}: NIfTI-1 cannot store {dtype}")
    header = np.zeros((), dtype=_NIFTI_HEADER)
    header["sizeof_hdr"] = 348
    header["regular"] = b"r"
    header["dim"][: len(shape) + 1] = [len(shape), *shape]
    header["dim"][len(shape) + 1 :] = 1
    header["datatype"] = _NIFTI_RGB24 if rgb else _NIFTI_TYPES[dtype]
    header["bitpix"] = 24 if rgb else dtype.itemsize * 8
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    header["pixdim"][:] = [1.0, *zooms, 1.0, 1.0, 1.0, 1.0]
    header["vox_offset"] = 352
    header["scl_slope"] = slope
    header["scl_inter"] = inter
    header["xyzt_units"] = 2 | 8  # mm, s
    header["descrip"] = (name or "dicomtui").encode("ascii", "replace")[:79]
    header["sform_code"] = 1  # scanner-anatomical
    header["srow"] = affine[:3, :4]
    quaternion = _quaternion(affine[:3, :3] / zooms)
    if quaternion is not None:  # a sheared (tilted) grid has no qform: the sform alone describes it
        (b, c, d), qfac = quaternion
        header["qform_code"] = 1
        header["quatern"] = [b, c, d]
        header["pixdim"][0] = qfac
    header["qoffset"] = affine[:3, 3]
    header["magic"] = b"n+1"
    return header.tobytes() + b"\0\0\0\0"  # the 4 extension bytes: no extensions


def open_nifti(path: str | Path, compress: bool | None = None, threads: int | None = None) -> io.BufferedIOBase:
    """``path`` opened for writing: plain, or gzip (``compress``; by default when the name ends in ".gz") at
    level 1 through python-isal's ISA-L deflate, compressed by ``threads`` background threads (default: one per
    core, at most 4) while the caller's thread keeps producing; stdlib zlib when python-isal is not installed.

    Level-1 deflate on one core, measured side by side here (bench/load_bench.py, machine shared): on 40 slices
    of 512² CT-like noise ISA-L is 3.6x zlib and 1.4x zlib-ng with the best ratio of the three (0.50; zlib-ng
    0.72); on the benchmark's synthetic volume (1 % after deflate) ISA-L and zlib-ng are 5x zlib."""
    if not (str(path).lower().endswith(".gz") if compress is None else compress):
        return open(path, "wb")
    try:
        from isal import igzip_threaded
    except ImportError:  # optional: the stdlib's zlib writes the same format, slower
        import gzip

        return gzip.open(path, "wb", compresslevel=1)
    threads = threads if threads is not None else min(4, os.cpu_count() or 1)
    return igzip_threaded.open(path, "wb", compresslevel=1, threads=threads)


def _quaternion(rotation: np.ndarray) -> tuple[tuple[float, float, float], float] | None:
    """(b, c, d) and qfac of an orthonormal 3×3 direction matrix, as nifti1_io's mat44_to_quatern; None
    when the columns are not orthonormal (the grid is sheared)."""
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-4):
        return None
    r = rotation.copy()
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r[:, 2] = -r[:, 2]
    a = 1.0 + r[0, 0] + r[1, 1] + r[2, 2]
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b, c, d = 0.25 * (r[2, 1] - r[1, 2]) / a, 0.25 * (r[0, 2] - r[2, 0]) / a, 0.25 * (r[1, 0] - r[0, 1]) / a
    else:
        xd = 1.0 + r[0, 0] - r[1, 1] - r[2, 2]
        yd = 1.0 - r[0, 0] + r[1, 1] - r[2, 2]
        zd = 1.0 - r[0, 0] - r[1, 1] + r[2, 2]
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c, d, a = 0.25 * (r[0, 1] + r[1, 0]) / b, 0.25 * (r[0, 2] + r[2, 0]) / b, 0.25 * (r[2, 1] - r[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b, d, a = 0.25 * (r[0, 1] + r[1, 0]) / c, 0.25 * (r[1, 2] + r[2, 1]) / c, 0.25 * (r[0, 2] - r[2, 0]) / c
        else:
            d = 0.5 * np.sqrt(zd)
            b, c, a = 0.25 * (r[0, 2] + r[2, 0]) / d, 0.25 * (r[1, 2] + r[2, 1]) / d, 0.25 * (r[1, 0] - r[0, 1]) / d
        if a < 0.0:
            b, c, d = -b, -c, -d
    return (float(b), float(c), float(d)), qfac


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
