"""Stack geometry: order slices along the slice normal and say, in sentences with numbers, everything doubtful
about stacking them (uneven spacing, missing slices, gantry tilt, mixed orientations, sizes or frames of
reference, missing geometry).

Works from the tags stored at import (never opens a file). Slices are ordered by their position along the normal
(PS3.3 C.7.6.2.1.1: ImagePositionPatient is the centre of the first voxel, ImageOrientationPatient the row and
column direction cosines), not by InstanceNumber. Coordinates are DICOM patient space (LPS), millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Row = dict[str, Any]
"""An instance row as the database stores it (``DicomDatabase.series_instances``): DICOM keywords as keys, the
multi-values as DICOM writes them ("a\\b\\c")."""

# DS values are written with at most 16 characters, so positions carry about 0.001 mm of rounding; 0.01 mm
# tells real spacing differences from rounding without hiding a wrong slice.
SPACING_TOLERANCE_MM = 0.01
# Direction cosines as written (often 6-10 decimals): a difference above 1e-6 is a different orientation.
ORIENTATION_TOLERANCE = 1e-6
# A slice stack moving sideways by less than 0.01° from the normal is not tilted (rounding of the positions).
TILT_TOLERANCE_DEG = 0.01


def vector(text: Any, n: int) -> np.ndarray | None:
    """Parse a DICOM multi-value ("a\\b\\c") into an array of n floats, or None when absent or malformed."""
    if text is None:
        return None
    try:
        values = [float(v) for v in str(text).split("\\")]
    except ValueError:
        return None
    return np.array(values, dtype=float) if len(values) == n else None


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a stack lie, once checked: everything a load needs to place the voxels.

    Arrays are in LPS millimetres; ``positions`` and ``distances`` follow the stacking order (increasing along
    ``normal``)."""

    row: np.ndarray  # (3,) unit vector along a row (increasing column index i), from ImageOrientationPatient
    col: np.ndarray  # (3,) unit vector down a column (increasing row index j)
    normal: np.ndarray  # (3,) row × col: the direction the slices are ordered along
    pixel_spacing: np.ndarray  # (2,) PixelSpacing as stored: (between rows, between columns) mm
    positions: np.ndarray  # (slices, 3) ImagePositionPatient per slice, in stacking order
    distances: np.ndarray  # (slices,) position along the normal, mm, increasing
    spacing: float  # usual slice spacing along the normal (median), mm; SliceThickness (else 1) for one slice
    tilt_deg: float = 0.0  # angle between the line through the first and last positions and the normal

    @property
    def irregular(self) -> bool:
        """Uneven spacing, gaps or tilt: what regularization fixes."""
        diffs = np.diff(self.distances)
        uneven = bool(diffs.size and diffs.max() - diffs.min() > SPACING_TOLERANCE_MM)
        return uneven or self.tilt_deg > TILT_TOLERANCE_DEG


@dataclass(frozen=True)
class StackCheck:
    """The outcome of checking a stack: its rows in stacking order, the warnings a user should read first (whole
    sentences), and the geometry — None when some image lacks position, orientation or pixel spacing (then the
    rows are ordered by InstanceNumber and stacked 1 mm apart)."""

    instances: list[Row]
    warnings: list[str] = field(default_factory=list)
    geometry: StackGeometry | None = None


def check_stack(images: list[Row]) -> StackCheck:
    """Order ``images`` (single-frame rows, or frames as rows) along the slice normal and check the stack."""
    warnings = _content_warnings(images)
    n = len(images)
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
        return StackCheck(ordered, warnings, None)
    iop_list: list[np.ndarray] = [v for v in iops if v is not None]
    ipp_list: list[np.ndarray] = [v for v in ipps if v is not None]
    ref = iop_list[0]
    if any(np.max(np.abs(v - ref)) > ORIENTATION_TOLERANCE for v in iop_list):
        distinct = len({tuple(np.round(v, 5)) for v in iop_list})
        warnings.append(f"mixed orientations ({distinct} different ImageOrientationPatient): not one volume")
    row_dir, col_dir = ref[:3], ref[3:]
    normal = np.cross(row_dir, col_dir)
    distances = np.array([float(np.dot(p, normal)) for p in ipp_list])
    order = np.argsort(distances, kind="stable")
    ordered = [images[k] for k in order]
    distances = distances[order]
    positions = np.array([ipp_list[k] for k in order])
    if n > 1:
        spacing, spacing_warnings = _spacing(distances)
        warnings += spacing_warnings
        tilt = _tilt(positions, normal)
        if tilt > TILT_TOLERANCE_DEG:
            warnings.append(f"gantry tilt or sheared geometry: slice positions move {tilt:.2f}° away from the "
                            f"slice normal; the volume is stored sheared (regularize to resample it)")
    else:  # one image: the slice thickness is the best guess at a spacing
        spacing, tilt = float(images[0].get("SliceThickness") or 1.0), 0.0
    pixel = spacings[0]
    assert pixel is not None  # checked above: every image has PixelSpacing
    geometry = StackGeometry(row=row_dir, col=col_dir, normal=normal, pixel_spacing=pixel, positions=positions,
                             distances=distances, spacing=spacing, tilt_deg=tilt)
    return StackCheck(ordered, warnings, geometry)


def _content_warnings(images: list[Row]) -> list[str]:
    """What keeps the images from forming one volume whatever their positions: sizes and frames of reference."""
    warnings = []
    sizes = {(i.get("Rows"), i.get("Columns")) for i in images}
    if len(sizes) > 1:
        shown = ", ".join(f"{c}x{r}" for r, c in sorted(sizes, key=str))
        warnings.append(f"mixed image sizes ({shown}): the images cannot be stacked into one volume")
    frames = {i.get("FrameOfReferenceUID") for i in images if i.get("FrameOfReferenceUID")}
    if len(frames) > 1:
        warnings.append(f"{len(frames)} different FrameOfReferenceUIDs: the images may not share one coordinate system")
    return warnings


def _spacing(distances: np.ndarray) -> tuple[float, list[str]]:
    """The usual spacing (median of the steps along the normal, mm) and the sentences about repeated positions,
    missing slices (a step close to a whole multiple of the usual one) and uneven spacing (any other)."""
    warnings = []
    diffs = np.diff(distances)
    if np.any(diffs < SPACING_TOLERANCE_MM):
        dup = int(np.sum(diffs < SPACING_TOLERANCE_MM))
        warnings.append(f"{dup} slices share a position with another slice: several volumes or repeated "
                        f"acquisitions are mixed in this series")
    ordered, mid = np.sort(diffs), len(diffs) // 2  # the median as np.median computes it, without importing
    spacing = float(ordered[mid] if len(diffs) % 2 else (ordered[mid - 1] + ordered[mid]) / 2)  # numpy.ma (~8 ms)
    if spacing > SPACING_TOLERANCE_MM and diffs.max() - diffs.min() > SPACING_TOLERANCE_MM:
        gaps = []
        for k, d in enumerate(diffs):
            ratio = d / spacing
            if ratio > 1.5 and abs(ratio - round(ratio)) < 0.1:  # 1.5: half a slice more is not a missing slice
                gaps.append((k, int(round(ratio)) - 1))
        for k, count in gaps:
            warnings.append(f"{count} missing slices between slice {k + 1} and {k + 2} (positions "
                            f"{distances[k]:.2f} and {distances[k + 1]:.2f} mm along the normal; usual spacing "
                            f"{spacing:.3g} mm)")
        gapped = {k for k, _ in gaps}
        others = [d for k, d in enumerate(diffs) if k not in gapped]
        if others and max(others) - min(others) > SPACING_TOLERANCE_MM:
            warnings.append(f"slices are not equally spaced: spacing varies from {min(others):.4g} to "
                            f"{max(others):.4g} mm (tolerance {SPACING_TOLERANCE_MM} mm)")
    return spacing, warnings


def _tilt(positions: np.ndarray, normal: np.ndarray) -> float:
    """Degrees between the first-to-last slice travel and the normal (0 when the positions do not move)."""
    step = positions[-1] - positions[0]
    length = float(np.linalg.norm(step))
    if length <= 0:
        return 0.0
    cos = min(1.0, abs(float(np.dot(step / length, normal))))
    return math.degrees(math.acos(cos))
