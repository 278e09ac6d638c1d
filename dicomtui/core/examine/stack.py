"""Slices + their checked geometry → a Volume: stored values rescaled into the smallest exact type, the affine
(i, j, k) → LPS mm from the geometry, and (on request) regularization of an irregular stack.

The arrays are ``[k, j, i]`` = (slice in stacking order, row, column), as DICOM stores frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LoadError
from ..volume import Presentation, Volume, window_presets
from .geometry import Row, StackGeometry
from .plugin import Progress, image_kind

_INT_TYPES: list[type[np.integer[Any]]] = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64]


def read_volume(db: Any, instances: list[Row], geometry: StackGeometry | None, *, name: str,
                warnings: list[str], progress: Progress | None = None, regularize: bool = False) -> Volume:
    """Read the single-frame slices ``instances`` (in stacking order) from ``db``'s files and build the Volume.

    ``progress(done, total)`` is called as slices arrive; when it raises (a cancel), the slices not yet read are
    not read and the exception propagates. Raises ``LoadError`` when the images differ in size, ``PixelError``
    when a file cannot be decoded."""
    from ..pixels import read_presentation, read_stack
    from .unreadable import leave_out

    sizes = {(i.get("Rows"), i.get("Columns")) for i in instances}
    if len(sizes) > 1:
        raise LoadError(f"{name}: images of different sizes cannot be stacked into one volume")
    kinds = {image_kind(i) for i in instances}
    if len(kinds) > 1:
        raise LoadError(f"{name}: grey and colour images ({', '.join(sorted(kinds))}) cannot be stacked into one "
                        f"volume")
    paths = [db.abspath(i["path"], bool(i["stored"])) for i in instances]
    presentation, luts = read_presentation(paths, instances)
    unreadable: list[tuple[int, str]] = []
    raw = read_stack(paths, instances, progress, unreadable=unreadable if len(paths) > 1 else None)
    if unreadable:  # one bad file does not take the series down: the others load, the warning names it
        if luts is not None:
            luts = [lut for k, lut in enumerate(luts) if k not in {b for b, _ in unreadable}]
        raw, instances, geometry, warnings = leave_out(raw, instances, unreadable, warnings)
    volume = build_volume(raw, instances, geometry, name=name, warnings=warnings, regularize=regularize,
                          presentation=presentation, modality_luts=luts)
    if volume.modality == "PT":  # SUV factors, units and SUV window presets from the header (core/suv.py)
        from ..suv import attach

        attach(volume, db.abspath(instances[0]["path"], bool(instances[0]["stored"])), instances)
    return volume


def build_volume(raw: np.ndarray, instances: list[Row], geometry: StackGeometry | None, *, name: str,
                 warnings: list[str], regularize: bool = False, presentation: Presentation | None = None,
                 modality_luts: list[Any] | None = None) -> Volume:
    """A Volume from the stored values ``raw`` [k, j, i] (or RGB [k, j, i, 3]) of ``instances`` (same order)
    and their geometry.

    RescaleSlope/Intercept are applied per slice (in place when the type allows), or the Modality LUTs when
    given (``pixels.read_presentation``, PS3.3 C.11.1); colour is kept as read. Windows come from the first
    instance (its WindowCenter/Width, then the modality's presets); ``presentation`` goes with the volume. With
    ``regularize`` and an irregular stack, the voxels are resampled onto a regular orthogonal grid and the
    volume says so (``resampled``, a warning)."""
    if raw.ndim == 4:  # RGB: no Rescale or LUT applies to colour (PS3.3 C.7.6.3.1.2)
        array = raw
    elif modality_luts is not None:
        from ..pixels import apply_modality_luts

        array = apply_modality_luts(raw, modality_luts)
    else:
        array = rescale(raw, [i.get("RescaleSlope") for i in instances],
                        [i.get("RescaleIntercept") for i in instances])
    affine = stack_affine(geometry)
    first = instances[0]
    warnings = list(warnings)
    resampled = False
    if regularize and geometry is not None and len(instances) > 1 and geometry.irregular and array.ndim == 4:
        warnings.append("not resampled: a colour volume is loaded as acquired (the resampling is for grey values)")
    elif regularize and geometry is not None and len(instances) > 1 and geometry.irregular:
        from ..regularize import regularize as resample

        acquired = len(instances)
        array, affine = resample(array, geometry.positions, geometry.row, geometry.col, geometry.normal,
                                 geometry.pixel_spacing, geometry.spacing)
        resampled = True
        warnings.append(f"resampled onto a regular grid of {array.shape[0]} slices {geometry.spacing:.4g} mm apart "
                        f"along the slice normal (from {acquired} acquired slices: {_how_irregular(geometry)})")
    elif regularize and geometry is not None and geometry.placed and len(instances) > 1:
        warnings.append(f"not resampled: the slices are regular within {geometry.tolerance:.2g} mm (the precision "
                        f"of their written positions) and not tilted")
    modality = first.get("Modality") or ""
    return Volume(array=array, affine=affine, name=name, modality=modality,
                  windows=window_presets(modality, first.get("WindowCenter"), first.get("WindowWidth"), array),
                  instance_uids=[] if resampled else [i["SOPInstanceUID"] for i in instances], warnings=warnings,
                  resampled=resampled, presentation=presentation or _presentation_of(first),
                  series_uid=str(first.get("SeriesInstanceUID") or ""))


def _presentation_of(row: Row) -> Presentation:
    """The Presentation the stored row tells (PhotometricInterpretation only) when the headers were not read."""
    from ..pixels import is_colour

    return Presentation(photometric="RGB" if is_colour(row) else
                        str(row.get("PhotometricInterpretation") or "MONOCHROME2"))


def _how_irregular(geometry: StackGeometry) -> str:
    """How far the acquired slices were from the regular grid they were resampled onto, in words with numbers."""
    offsets = geometry.distances - geometry.distances[0]
    off_grid = float(np.max(np.abs(offsets - np.round(offsets / geometry.spacing) * geometry.spacing)))
    steps = np.diff(geometry.distances)
    parts = [f"steps {steps.min():.4g} to {steps.max():.4g} mm", f"up to {off_grid:.3g} mm off the grid"]
    if geometry.tilt_deg > 0:
        parts.append(f"a {geometry.tilt_deg:.2f}° tilt straightened")
    return ", ".join(parts)


def frame_row(inst: Row, f: int | None, frame: dict[str, Any]) -> Row:
    """Frame (or mosaic tile) ``f`` (0-based) of ``inst`` as if it were a single-frame instance row (its
    SOPInstanceUID ``uid#f+1``), with the geometry and rescale frames.py stored for it in place of the file's;
    ``f`` None keeps the row's UID (the one frame of a single-frame object: its functional groups, or the pixel
    size and slice spacing of an image without position)."""
    row = dict(inst)
    if f is not None:
        row["SOPInstanceUID"] = f"{inst['SOPInstanceUID']}#{f + 1}"
        row["NumberOfFrames"] = 1
    for key, keyword in (("p", "ImagePositionPatient"), ("o", "ImageOrientationPatient"), ("s", "PixelSpacing"),
                         ("is", "ImagerPixelSpacing")):
        if frame.get(key):
            row[keyword] = "\\".join(repr(v) for v in frame[key])
    for key, keyword in (("t", "SliceThickness"), ("z", "SpacingBetweenSlices"), ("rs", "RescaleSlope"),
                         ("ri", "RescaleIntercept"), ("n", "InstanceNumber")):
        if frame.get(key) is not None:
            row[keyword] = frame[key]
    return row


def with_frame_geometry(rows: list[Row]) -> list[Row]:
    """Single-frame rows with the geometry frames.py stored at import applied (``frame_row``): functional groups
    of one-frame enhanced objects, ImagerPixelSpacing and SpacingBetweenSlices of images without position."""
    import json

    out = []
    for inst in rows:
        frames = json.loads(inst["frames"]) if inst.get("frames") else None
        out.append(frame_row(inst, None, frames[0]) if frames and len(frames) == 1 else inst)
    return out


def stack_affine(geometry: StackGeometry | None) -> np.ndarray:
    """The 4×4 affine (i, j, k, 1) → LPS mm of a stack as acquired; the identity (1 mm, unplaced) without geometry.

    Column i steps along the row direction by the column spacing, j along the column direction by the row
    spacing (PixelSpacing is (row, column), PS3.3 C.7.6.2.1.1), k from the first slice towards the last by the
    usual spacing along the normal — keeping any sideways drift (gantry tilt), so the grid is sheared."""
    affine = np.eye(4)
    if geometry is None:
        return affine
    dy, dx = (float(v) for v in geometry.pixel_spacing)
    affine[:3, 0] = geometry.row * dx
    affine[:3, 1] = geometry.col * dy
    positions = geometry.positions
    spacing = geometry.spacing or 1.0
    step = geometry.normal * spacing
    if len(positions) > 1:
        travel = positions[-1] - positions[0]
        along = float(np.dot(travel, geometry.normal))
        if along > 0:  # keep any sideways drift (tilt) but the usual spacing along the normal
            step = travel * (spacing / along)
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    return affine


def rescale(raw: np.ndarray, slopes: list[Any], intercepts: list[Any]) -> np.ndarray:
    """Apply RescaleSlope/Intercept per slice k of ``raw`` [k, j, i], into the smallest type that holds every
    value exactly (integers when every slope is 1 and every intercept whole, else float32).

    In place when the result type has the raw type's size, else into one new array, slice by slice: peak
    memory stays at most the raw array plus the result."""
    slope_values = [1.0 if s is None else float(s) for s in slopes]
    intercept_values = [0.0 if b is None else float(b) for b in intercepts]
    if all(s == 1.0 for s in slope_values) and all(b.is_integer() for b in intercept_values):
        shifts = [int(b) for b in intercept_values]
        lo = int(raw.min()) + min(shifts) if raw.size else 0
        hi = int(raw.max()) + max(shifts) if raw.size else 0
        target = np.dtype(next(t for t in _INT_TYPES if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max))
        if raw.dtype == target:  # the usual case (CT int16 - 1024): add in place, no temporary at all
            for k, shift in enumerate(shifts):
                if shift:
                    np.add(raw[k], shift, out=raw[k], casting="unsafe")  # fits: checked against lo/hi above
            return raw
        out = raw.view(target) if target.itemsize == raw.dtype.itemsize else np.empty(raw.shape, dtype=target)
        for k, shift in enumerate(shifts):
            out[k] = raw[k].astype(np.int64) + shift  # a one-slice temporary: safe in place
        return out
    result = np.empty(raw.shape, dtype=np.float32)
    for k, (slope, intercept) in enumerate(zip(slope_values, intercept_values, strict=True)):
        result[k] = raw[k] * np.float32(slope) + np.float32(intercept)
    return result
