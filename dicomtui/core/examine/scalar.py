"""Scalar volume plugin: a series of single-frame images as one regularly spaced volume, honestly checked.

Works from the tags stored at import (never opens files to examine). Slices are sorted along the slice normal,
not by InstanceNumber. Every doubt becomes a sentence with numbers: uneven spacing, missing slices, gantry tilt,
mixed orientations or image sizes, missing geometry, several frames of reference.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from ..errors import LoadError
from .loadable import Loadable

NAME = "scalar"
SPACING_TOLERANCE_MM = 0.01
ORIENTATION_TOLERANCE = 1e-6
TILT_TOLERANCE_DEG = 0.01
SPLIT_KEYS = [("AcquisitionNumber", "acquisition"), ("ImageType", "image type"),
              ("ImageOrientationPatient", "orientation"), ("DiffusionGradientOrientation", "gradient")]
TIME_KEYS = [("ContentTime", "content time"), ("TriggerTime", "trigger time")]

CONF_ALL = 0.5
CONF_SUB = 0.45
CONF_PREFERRED = 0.55
CONF_DOUBTFUL = 0.4
CONF_NO_PIXELS = 0.1


def vector(text: Any, n: int) -> np.ndarray | None:
    """Parse a DICOM multi-value ("a\\b\\c") into n floats, or None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in str(text).split("\\")]
    except ValueError:
        return None
    return np.array(values, dtype=float) if len(values) == n else None


def examine(instances: list[dict[str, Any]], split_by_time: bool = False) -> list[Loadable]:
    """Loadables of one series (instance rows from the database)."""
    if not instances:
        return []
    first = instances[0]
    name = f"{first.get('SeriesNumber') if first.get('SeriesNumber') is not None else '?'}: " \
           f"{first.get('SeriesDescription') or 'series'}"
    series_uid = first.get("SeriesInstanceUID", "")
    images = [i for i in instances if i.get("has_pixels") and (i.get("NumberOfFrames") or 1) <= 1]
    if not images and any(i.get("has_pixels") for i in instances):
        return []  # only multi-frame images: the multi-frame plugin reads them
    if not images:
        return [Loadable(name, instances, NAME, CONF_NO_PIXELS, [
            f"no single-frame image with pixel data among the {len(instances)} instances: nothing to show as a volume"],
            series_uid=series_uid)]
    skipped = len(instances) - len(images)
    whole = _loadable(name, images, series_uid)
    if skipped:
        whole.warnings.append(f"{skipped} instances without pixel data or with several frames are left out")
    out = [whole]
    offered = {whole.files}
    keys = SPLIT_KEYS + (TIME_KEYS if split_by_time else [])
    for key, label in keys:
        groups = _group(images, key)
        if len(groups) < 2:
            continue
        if len(groups) == 2 and min(len(g) for g in groups.values()) == 1 and len(images) > 2:
            scout = next(g for g in groups.values() if len(g) == 1)[0]
            subs = [(f"{name} (without the localizer)", [i for i in images if i is not scout])]
        else:
            subs = [(f"{name} ({label} {_show(value)})", members) for value, members in groups.items()]
        for sub_name, members in subs:
            sub = _loadable(sub_name, members, series_uid)
            if sub.files not in offered:  # two keys can split the same way (a localizer differs in both)
                offered.add(sub.files)
                out.append(sub)
    subs = out[1:]
    for sub in subs:
        sub.confidence = CONF_SUB
    if whole.warnings:
        whole.confidence = CONF_DOUBTFUL
        for sub in subs:
            sub.confidence = CONF_PREFERRED if not sub.warnings else CONF_DOUBTFUL
    return out


def _show(value: Any) -> str:
    return str(value).replace("\\", "/") if value is not None else "none"


def _group(images: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if key == "ImageOrientationPatient":
        reps: list[tuple[np.ndarray | None, Any]] = []
        for inst in images:
            v = vector(inst.get(key), 6)
            for rep, label in reps:
                if (v is None and rep is None) or (v is not None and rep is not None
                                                    and np.max(np.abs(v - rep)) <= ORIENTATION_TOLERANCE):
                    groups[label].append(inst)
                    break
            else:
                label = inst.get(key)
                reps.append((v, label))
                groups[label].append(inst)
        return dict(groups)
    for inst in images:
        groups[inst.get(key)].append(inst)
    return dict(groups)


def _loadable(name: str, images: list[dict[str, Any]], series_uid: str) -> Loadable:
    ordered, warnings, geometry = check_geometry(images)
    return Loadable(name, ordered, NAME, CONF_ALL, warnings, series_uid=series_uid, details={"geometry": geometry})


def check_geometry(images: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Sort slices along the normal and say everything doubtful about stacking them.

    Returns (sorted instances, warnings, geometry) where geometry holds what load needs: row/column directions,
    pixel spacing, positions along the normal, and whether the geometry is usable at all."""
    warnings: list[str] = []
    n = len(images)
    sizes = {(i.get("Rows"), i.get("Columns")) for i in images}
    if len(sizes) > 1:
        shown = ", ".join(f"{c}x{r}" for r, c in sorted(sizes, key=str))
        warnings.append(f"mixed image sizes ({shown}): the images cannot be stacked into one volume")
    frames = {i.get("FrameOfReferenceUID") for i in images if i.get("FrameOfReferenceUID")}
    if len(frames) > 1:
        warnings.append(f"{len(frames)} different FrameOfReferenceUIDs: the images may not share one coordinate system")
    ipps = [vector(i.get("ImagePositionPatient"), 3) for i in images]
    iops = [vector(i.get("ImageOrientationPatient"), 6) for i in images]
    spacings = [vector(i.get("PixelSpacing"), 2) for i in images]
    missing = [name for name, values in (("ImagePositionPatient", ipps), ("ImageOrientationPatient", iops),
                                         ("PixelSpacing", spacings)) if any(v is None for v in values)]
    if missing:
        count = sum(1 for k in range(n) if ipps[k] is None or iops[k] is None or spacings[k] is None)
        warnings.append(f"missing geometry ({', '.join(missing)}) in {count} of {n} images: slices are stacked by "
                        f"InstanceNumber with 1 mm spacing, positions are not trustworthy")
        ordered = sorted(images, key=lambda i: (i.get("InstanceNumber") is None, i.get("InstanceNumber") or 0))
        return ordered, warnings, {"valid": False}
    ref = iops[0]
    if any(np.max(np.abs(v - ref)) > ORIENTATION_TOLERANCE for v in iops):
        distinct = len({tuple(np.round(v, 5)) for v in iops})
        warnings.append(f"mixed orientations ({distinct} different ImageOrientationPatient): not one volume")
    row_dir, col_dir = ref[:3], ref[3:]
    normal = np.cross(row_dir, col_dir)
    distances = np.array([float(np.dot(p, normal)) for p in ipps])
    order = np.argsort(distances, kind="stable")
    ordered = [images[k] for k in order]
    distances = distances[order]
    positions = np.array([ipps[k] for k in order])
    pixel = spacings[0]
    geometry = {"valid": True, "row": row_dir, "col": col_dir, "normal": normal, "pixel_spacing": pixel,
                "positions": positions, "distances": distances}
    if n > 1:
        diffs = np.diff(distances)
        if np.any(diffs < SPACING_TOLERANCE_MM):
            dup = int(np.sum(diffs < SPACING_TOLERANCE_MM))
            warnings.append(f"{dup} slices share a position with another slice: several volumes or repeated "
                            f"acquisitions are mixed in this series")
        spacing = float(np.median(diffs))
        geometry["spacing"] = spacing
        if spacing > SPACING_TOLERANCE_MM and diffs.max() - diffs.min() > SPACING_TOLERANCE_MM:
            gaps = []
            for k, d in enumerate(diffs):
                ratio = d / spacing
                if ratio > 1.5 and abs(ratio - round(ratio)) < 0.1:
                    gaps.append((k, int(round(ratio)) - 1))
            for k, count in gaps:
                warnings.append(f"{count} missing slices between slice {k + 1} and {k + 2} (positions "
                                f"{distances[k]:.2f} and {distances[k + 1]:.2f} mm along the normal; usual spacing "
                                f"{spacing:.3g} mm)")
            others = [d for k, d in enumerate(diffs) if not any(k == g for g, _ in gaps)]
            if others and max(others) - min(others) > SPACING_TOLERANCE_MM:
                warnings.append(f"slices are not equally spaced: spacing varies from {min(others):.4g} to "
                                f"{max(others):.4g} mm (tolerance {SPACING_TOLERANCE_MM} mm)")
        step = positions[-1] - positions[0]
        length = float(np.linalg.norm(step))
        if length > 0:
            cos = min(1.0, abs(float(np.dot(step / length, normal))))
            angle = math.degrees(math.acos(cos))
            geometry["tilt_deg"] = angle
            if angle > TILT_TOLERANCE_DEG:
                warnings.append(f"gantry tilt or sheared geometry: slice positions move {angle:.2f}° away from the "
                                f"slice normal; the volume is stored sheared (regularize to resample it)")
    else:  # one image: the slice thickness is the best guess at a spacing
        geometry["spacing"] = float(images[0].get("SliceThickness") or 1.0)
    return ordered, warnings, geometry


def load(db, loadable: Loadable, progress=None, regularize: bool = False):
    """Read the slices of ``loadable`` and stack them into a Volume with the acquired geometry; with
    ``regularize``, an unevenly spaced, gapped or tilted stack is resampled onto a regular orthogonal grid."""
    from ..pixels import read_stack

    insts = loadable.instances
    sizes = {(i.get("Rows"), i.get("Columns")) for i in insts}
    if len(sizes) > 1:
        raise LoadError(f"{loadable.name}: images of different sizes cannot be stacked into one volume")
    paths = [db.abspath(i["path"], bool(i["stored"])) for i in insts]
    return build_volume(loadable, read_stack(paths, insts, progress), regularize)


def build_volume(loadable: Loadable, raw: np.ndarray, regularize: bool = False):
    """A Volume from the stored values of the loadable's slices (in its order) and its checked geometry."""
    from ..volume import Volume, window_presets

    insts = loadable.instances
    array = rescale(raw, [i.get("RescaleSlope") for i in insts], [i.get("RescaleIntercept") for i in insts])
    geometry = loadable.details.get("geometry", {"valid": False})
    affine = np.eye(4)
    if geometry.get("valid"):
        dy, dx = (float(v) for v in geometry["pixel_spacing"])
        affine[:3, 0] = geometry["row"] * dx
        affine[:3, 1] = geometry["col"] * dy
        positions = geometry["positions"]
        spacing = geometry.get("spacing") or 1.0
        step = geometry["normal"] * spacing
        if len(positions) > 1:
            travel = positions[-1] - positions[0]
            along = float(np.dot(travel, geometry["normal"]))
            if along > 0:  # keep any sideways drift (tilt) but the usual spacing along the normal
                step = travel * (spacing / along)
        affine[:3, 2] = step
        affine[:3, 3] = positions[0]
    first = insts[0]
    warnings = list(loadable.warnings)
    resampled = False
    if regularize and geometry.get("valid") and len(insts) > 1 and _irregular(geometry):
        from ..regularize import regularize as resample

        array, affine = resample(array, geometry["positions"], geometry["row"], geometry["col"],
                                 geometry["normal"], geometry["pixel_spacing"], geometry["spacing"])
        resampled = True
        warnings.append(f"resampled onto a regular grid of {array.shape[0]} slices {geometry['spacing']:.4g} mm "
                        f"apart along the slice normal (the acquired slices were not regular)")
    return Volume(array=array, affine=affine, name=loadable.name, modality=first.get("Modality") or "",
                  windows=window_presets(first.get("Modality") or "", first.get("WindowCenter"),
                                         first.get("WindowWidth"), array),
                  instance_uids=[] if resampled else [i["SOPInstanceUID"] for i in insts], warnings=warnings,
                  resampled=resampled)


def _irregular(geometry: dict[str, Any]) -> bool:
    """Uneven spacing, gaps or tilt: what regularization fixes."""
    distances = geometry["distances"]
    diffs = np.diff(distances)
    return bool(diffs.max() - diffs.min() > SPACING_TOLERANCE_MM or geometry.get("tilt_deg", 0.0) > TILT_TOLERANCE_DEG)



_INT_TYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64]


def rescale(raw: np.ndarray, slopes: list, intercepts: list) -> np.ndarray:
    """Apply RescaleSlope/Intercept per slice, into the smallest type that holds every value exactly.

    In place when the result type has the raw type's size, else into one new array, slice by slice: peak
    memory stays at most the raw array plus the result."""
    slopes = [1.0 if s is None else float(s) for s in slopes]
    intercepts = [0.0 if b is None else float(b) for b in intercepts]
    if all(s == 1.0 for s in slopes) and all(b.is_integer() for b in intercepts):
        shifts = [int(b) for b in intercepts]
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
    out = np.empty(raw.shape, dtype=np.float32)
    for k, (slope, intercept) in enumerate(zip(slopes, intercepts)):
        out[k] = raw[k] * np.float32(slope) + np.float32(intercept)
    return out
