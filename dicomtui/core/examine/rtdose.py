"""RT Dose plugin: the dose grid of an RT Dose instance as a float32 volume in Gy with its own geometry.

PS3.3 C.8.8.3: stored values × DoseGridScaling = dose in DoseUnits (GY, or RELATIVE to an unnamed reference: then
said as a warning). The frames of a multi-frame dose lie at ImagePositionPatient + GridFrameOffsetVector[f] along
the normal; the vector is relative (its first value 0) or — only for ImageOrientationPatient 1\\0\\0\\0\\1\\0 —
absolute z coordinates (its first value the z of ImagePositionPatient), C.8.8.3.2. The image series the dose
belongs with is the one of the same FrameOfReferenceUID in the database (the plan and structure set it
references share that frame of reference), named as ``referenced_series_uid``; the dose is not resampled onto it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LoadError, PixelError
from ..volume import Volume, window_presets
from .plugin import (
    CONF_ALL,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    Row,
    check_cancel,
    is_rt_dose,
    series_name,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

NAME = name = "rtdose"
_NOT_IMAGES = ("RTDOSE", "RTSTRUCT", "RTPLAN", "RTRECORD", "SEG", "REG", "SR", "KO", "PR")  # never a dose's grid


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per RT Dose instance with pixel data (CONF_ALL); the scalar and multi-frame plugins leave RT
    Dose to this one (``plugin.is_rt_dose``): read as plain images its frames would all lie at one position,
    unscaled."""
    out = []
    for row in rows:
        if is_rt_dose(row) and row.get("has_pixels"):
            number = f" {row['InstanceNumber']}" if len(rows) > 1 and row.get("InstanceNumber") is not None else ""
            out.append(Loadable(f"{series_name(row)} (RT dose{number})", [row], NAME, CONF_ALL,
                                series_uid=row.get("SeriesInstanceUID", "")))
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The dose grid: ``array`` [k, j, i] float32 in Gy (``units`` "GY"; "RELATIVE" with a warning), the affine
    from ImagePositionPatient, ImageOrientationPatient, PixelSpacing and GridFrameOffsetVector. Raises
    ``LoadError`` when the geometry is missing or inconsistent, or ``cancel`` is set; ``PixelError`` when the
    file or its pixels cannot be read."""
    import pydicom

    row = loadable.instances[0]
    check_cancel(cancel, loadable.name, 0, 1)
    path = db.abspath(row["path"], bool(row["stored"]))
    try:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - any reader or decoder failure is one sentence naming the file
        raise PixelError(f"{loadable.name}: the dose grid of {path} could not be read ({exc})") from exc
    stored = stored.reshape((-1, *stored.shape[-2:]))  # one frame: [1, rows, columns]
    warnings = list(loadable.warnings)
    affine, geometry_warnings = dose_affine(ds, stored.shape[0], loadable.name)
    warnings += geometry_warnings
    dose = stored.astype(np.float32) * np.float32(float(ds.get("DoseGridScaling") or 1.0))
    units = str(ds.get("DoseUnits") or "").upper()
    if units == "RELATIVE":
        warnings.append("DoseUnits RELATIVE: the values are relative to a reference dose the file does not give, "
                        "not Gy")
    elif units != "GY":
        warnings.append(f"DoseUnits {units or 'absent'}: the values are taken as Gy")
        units = "GY"
    referenced, more = _image_series_of(db, str(ds.get("FrameOfReferenceUID") or ""))
    if more:
        warnings.append(f"{len(more) + 1} image series share the dose's frame of reference: it refers to "
                        f"{referenced} (also {', '.join(more)})")
    if progress is not None:
        progress(1, 1)
    extra = {key: str(ds.get(key)) for key in ("DoseType", "DoseSummationType") if ds.get(key)}
    return [Volume(dose, affine, name=loadable.name, modality="RTDOSE",
                   windows=window_presets("RTDOSE", None, None, dose), warnings=warnings, extra=extra,
                   series_uid=str(row.get("SeriesInstanceUID") or ""), referenced_series_uid=referenced,
                   units=units, instance_uids=[f"{row['SOPInstanceUID']}#{f + 1}" for f in range(dose.shape[0])])]


def dose_affine(ds: Dataset, frames: int, name: str) -> tuple[np.ndarray, list[str]]:
    """The 4×4 affine (i, j, k, 1) → LPS mm of an RT Dose grid of ``frames`` frames, and warnings (uneven frame
    offsets: the grid takes their mean step). Raises ``LoadError`` when the position, orientation or pixel
    spacing is missing, or GridFrameOffsetVector does not give one offset per frame."""
    try:
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        spacing = [float(v) for v in ds.PixelSpacing]
    except (AttributeError, TypeError, ValueError) as exc:
        raise LoadError(f"{name}: the dose grid has no usable ImagePositionPatient, ImageOrientationPatient or "
                        f"PixelSpacing") from exc
    row, col = orientation[:3] / np.linalg.norm(orientation[:3]), orientation[3:] / np.linalg.norm(orientation[3:])
    normal = np.cross(row, col)
    warnings: list[str] = []
    offsets = np.array([float(v) for v in (ds.get("GridFrameOffsetVector") or [0.0])])
    if len(offsets) != frames:
        raise LoadError(f"{name}: GridFrameOffsetVector has {len(offsets)} values for {frames} frames")
    if offsets[0] != 0:  # absolute: the frames' z coordinates (C.8.8.3.2, axial only)
        if not np.allclose(normal, [0, 0, 1], atol=1e-4):
            warnings.append("GridFrameOffsetVector is absolute (its first value is not 0) but the grid is not "
                            "axial: the offsets are taken along the normal from the first frame")
        offsets = offsets - offsets[0]
    step = 1.0
    if frames > 1:
        steps = np.diff(offsets)
        step = float(np.mean(steps))
        if np.ptp(steps) > 0.01 * max(abs(step), 1e-6):
            warnings.append(f"the dose frames are unevenly spaced (steps {steps.min():.4g} to {steps.max():.4g} mm):"
                            f" the grid takes their mean step, {step:.4g} mm")
    affine = np.eye(4)
    affine[:3, 0] = row * spacing[1]  # column index i steps along the row by the column spacing
    affine[:3, 1] = col * spacing[0]
    affine[:3, 2] = normal * step
    affine[:3, 3] = position
    return affine, warnings


def _image_series_of(db: Any, frame_of_reference: str) -> tuple[str, list[str]]:
    """The image series (SeriesInstanceUID) in the database that share ``frame_of_reference``: the first (CT
    before MR before PT, then by SeriesNumber) and the others; ("", []) when none does."""
    if not frame_of_reference:
        return "", []
    marks = ",".join("?" * len(_NOT_IMAGES))
    found = db.conn.execute(
        f"SELECT DISTINCT s.SeriesInstanceUID, s.Modality, s.SeriesNumber FROM instances i JOIN series s "
        f"ON i.series_fk = s.id WHERE i.FrameOfReferenceUID = ? AND i.has_pixels = 1 AND COALESCE(s.Modality, '') "
        f"NOT IN ({marks})", (frame_of_reference, *_NOT_IMAGES)).fetchall()
    order = {"CT": 0, "MR": 1, "PT": 2}
    found.sort(key=lambda r: (order.get(r[1] or "", 3), r[2] if r[2] is not None else 1 << 30))
    uids = [str(r[0]) for r in found]
    return (uids[0], uids[1:]) if uids else ("", [])
