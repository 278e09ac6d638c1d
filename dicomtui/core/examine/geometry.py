"""Stack geometry: order slices along the slice normal and say, in sentences with numbers, everything doubtful
about stacking them (uneven spacing, missing slices, gantry tilt, mixed orientations, sizes or frames of
reference, missing geometry).

Works from the tags stored at import (never opens a file). Slices are ordered by their position along the normal
(PS3.3 C.7.6.2.1.1: ImagePositionPatient is the centre of the first voxel, ImageOrientationPatient the row and
column direction cosines), not by InstanceNumber. Coordinates are DICOM patient space (LPS), millimetres.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..plural import counted

Row = dict[str, Any]
"""An instance row as the database stores it (``DicomDatabase.series_instances``): DICOM keywords as keys, the
multi-values as DICOM writes them ("a\\b\\c")."""

# Tolerances follow the precision DS values are written with (PS3.5 6.2: at most 16 characters).
# Direction cosines: most scanners write 6 decimals, so two writings of one orientation differ by at most 1e-6 per
# component (half a unit of the 6th decimal each); they are compared after normalising (``orientation``).
ORIENTATION_TOLERANCE = 2e-6
# Positions: two slices "at the same place" or "equally spaced" differ by the rounding of the written positions
# (half a unit of their last decimal per coordinate, see ``position_rounding``), projected on the normal, plus
# 0.1 % of the spacing (scanners compute positions in float32), and never less than 0.01 mm.
SPACING_FLOOR_MM = 0.01
SPACING_RELATIVE = 1e-3
SPACING_TOLERANCE_MM = SPACING_FLOOR_MM  # the tolerance of positions written with 3 or more decimals


def vector(text: Any, n: int) -> np.ndarray | None:
    """Parse a DICOM multi-value ("a\\b\\c") into an array of n floats, or None when absent or malformed."""
    if text is None:
        return None
    try:
        values = [float(v) for v in str(text).split("\\")]
    except ValueError:
        return None
    return np.array(values, dtype=float) if len(values) == n else None


def orientation(text: Any) -> np.ndarray | None:
    """ImageOrientationPatient (PS3.3 C.7.6.2.1.1) as 6 floats with the row and the column cosines each scaled to
    unit length — the one place cosines are read, so that a normal made of cosines written to 6 decimals is a unit
    vector (unnormalised, |row × col| = 0.99999986 reads as a 0.03° tilt). None when absent, malformed or zero."""
    values = vector(text, 6)
    if values is None:
        return None
    row, col = np.linalg.norm(values[:3]), np.linalg.norm(values[3:])
    if row == 0 or col == 0:
        return None
    return np.r_[values[:3] / row, values[3:] / col]


def slice_normal(cosines: np.ndarray) -> np.ndarray:
    """The unit slice normal row × col of normalised cosines (``orientation``), LPS."""
    normal = np.cross(cosines[:3], cosines[3:])
    length = float(np.linalg.norm(normal))
    return normal / length if length > 0 else normal


def position_rounding(texts: list[Any]) -> float:
    """Half a unit of the finest decimal the DS values ``texts`` ("a\\b\\c") are written with, mm: what rounding
    the written positions may carry (a stack written on a 0.1 mm grid: 0.05). Whole numbers say nothing (scanners
    write exact values without decimals), so the finest decimal any value shows sets it; 0 when none shows one
    (then the tolerances' floors hold: a stack of whole millimetres is taken as exact, not as ±0.5 mm)."""
    finest = -1
    for text in texts:
        for value in str(text or "").split("\\"):
            mantissa, _, exponent = value.strip().lower().partition("e")
            decimals = len(mantissa.partition(".")[2])
            try:
                decimals -= int(exponent) if exponent else 0
            except ValueError:
                continue
            if decimals > 0:
                finest = max(finest, decimals)
    return 0.5 * 10.0 ** -finest if finest > 0 else 0.0


def same_position_tolerance(rows: list[Row], normal: np.ndarray) -> float:
    """Two positions along ``normal`` closer than this (mm) are one: twice the rounding of the rows' written
    ImagePositionPatient (``position_rounding``) per coordinate, projected on the normal; at least 0.01 mm."""
    rounding = position_rounding([i.get("ImagePositionPatient") for i in rows])
    return max(SPACING_FLOOR_MM, 2 * rounding * float(np.abs(normal).sum()))


def repeat_labels(rows: list[Row]) -> list[int]:
    """Per row, how many rows before it (in the given order) lie at its position along the slice normal: 0 for
    every row of a stack without repeated positions. All 0 when the rows lack position or orientation."""
    cosines = orientation(rows[0].get("ImageOrientationPatient")) if rows else None
    points = [vector(i.get("ImagePositionPatient"), 3) for i in rows]
    if cosines is None or any(p is None for p in points):
        return [0] * len(rows)
    normal = slice_normal(cosines)
    labels = same_position_labels([float(np.dot(p, normal)) for p in points if p is not None],
                                  same_position_tolerance(rows, normal))
    seen: dict[int, int] = defaultdict(int)
    out = []
    for label in labels:
        out.append(seen[label])
        seen[label] += 1
    return out


def same_position_labels(distances: list[float], same: float) -> list[int]:
    """A label per distance along the normal (mm): the rank of its position, distances closer than ``same`` to
    the previous one (in sorted order) sharing it — so a rounding step never splits one position in two."""
    order = sorted(range(len(distances)), key=distances.__getitem__)
    labels = [0] * len(distances)
    label = 0
    for n, k in enumerate(order):
        if n and distances[k] - distances[order[n - 1]] >= same:
            label += 1
        labels[k] = label
    return labels


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a stack lie, once checked: everything a load needs to place the voxels.

    Arrays are in LPS millimetres; ``positions`` and ``distances`` follow the stacking order (increasing along
    ``normal``). Without ImagePositionPatient (``placed`` False) the positions are k × spacing along the normal
    from 0: the pixel size is known, the place is not."""

    row: np.ndarray  # (3,) unit vector along a row (increasing column index i), from ImageOrientationPatient
    col: np.ndarray  # (3,) unit vector down a column (increasing row index j)
    normal: np.ndarray  # (3,) row × col, unit: the direction the slices are ordered along
    pixel_spacing: np.ndarray  # (2,) PixelSpacing as stored: (between rows, between columns) mm
    positions: np.ndarray  # (slices, 3) ImagePositionPatient per slice, in stacking order
    distances: np.ndarray  # (slices,) position along the normal, mm, increasing
    spacing: float  # slice spacing along the normal, mm: (last - first) / (n - 1) of a regular stack, the median
    #                 step of an irregular one; SpacingBetweenSlices, SliceThickness (else 1) for one slice
    tilt_deg: float = 0.0  # angle between the first-to-last travel and the normal; 0 within the DS precision
    tolerance: float = SPACING_TOLERANCE_MM  # mm: steps differing by less are equal (see the constants above)
    placed: bool = True  # False: no ImagePositionPatient (or orientation), positions are made up from 0

    @property
    def irregular(self) -> bool:
        """Uneven spacing, gaps or tilt: what regularization fixes."""
        diffs = np.diff(self.distances)
        uneven = bool(diffs.size and diffs.max() - diffs.min() > self.tolerance)
        return uneven or self.tilt_deg > 0


@dataclass(frozen=True)
class StackCheck:
    """The outcome of checking a stack: its rows in stacking order, the warnings a user should read first (whole
    sentences), and the geometry — None when some image lacks its pixel size (then the rows are ordered by
    InstanceNumber and stacked 1 mm apart)."""

    instances: list[Row]
    warnings: list[str] = field(default_factory=list)
    geometry: StackGeometry | None = None


def check_stack(images: list[Row]) -> StackCheck:
    """Order ``images`` (single-frame rows, or frames as rows) along the slice normal and check the stack."""
    warnings = _content_warnings(images)
    n = len(images)
    ipps = [vector(i.get("ImagePositionPatient"), 3) for i in images]
    iops = [orientation(i.get("ImageOrientationPatient")) for i in images]
    spacings = [vector(i.get("PixelSpacing"), 2) for i in images]
    missing = [name for name, values in (("ImagePositionPatient", ipps), ("ImageOrientationPatient", iops),
                                         ("PixelSpacing", spacings)) if any(v is None for v in values)]
    if missing:
        return _unplaced(images, missing, warnings)
    iop_list: list[np.ndarray] = [v for v in iops if v is not None]
    ipp_list: list[np.ndarray] = [v for v in ipps if v is not None]
    ref = iop_list[0]
    if any(np.max(np.abs(v - ref)) > ORIENTATION_TOLERANCE for v in iop_list):
        distinct = len({tuple(np.round(v, 5)) for v in iop_list})
        warnings.append(f"mixed orientations ({distinct} different ImageOrientationPatient): not one volume")
    row_dir, col_dir = ref[:3], ref[3:]
    normal = slice_normal(ref)
    distances = np.array([float(np.dot(p, normal)) for p in ipp_list])
    order = np.argsort(distances, kind="stable")
    ordered = [images[k] for k in order]
    distances = distances[order]
    positions = np.array([ipp_list[k] for k in order])
    rounding = position_rounding([i.get("ImagePositionPatient") for i in images])
    same = tolerance = same_position_tolerance(images, normal)
    if n > 1:
        spacing, tolerance, spacing_warnings = _spacing(distances, same)
        warnings += spacing_warnings
        tilt = _tilt(positions, normal, rounding)
        if tilt > 0:
            warnings.append(f"gantry tilt or sheared geometry: slice positions move {tilt:.2f}° away from the "
                            f"slice normal; the volume is stored sheared (regularize to resample it)")
    else:  # one image: the spacing between slices, else the slice thickness, is the best guess at a spacing
        spacing, tilt = _one_slice_spacing(images[0]), 0.0
    pixel = spacings[0]
    assert pixel is not None  # checked above: every image has PixelSpacing
    geometry = StackGeometry(row=row_dir, col=col_dir, normal=normal, pixel_spacing=pixel, positions=positions,
                             distances=distances, spacing=spacing, tilt_deg=tilt, tolerance=tolerance)
    return StackCheck(ordered, warnings, geometry)


def _one_slice_spacing(row: Row) -> float:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = row.get(keyword)
        if value is not None and float(value) > 0:
            return abs(float(value))
    return 1.0


def _unplaced(images: list[Row], missing: list[str], warnings: list[str]) -> StackCheck:
    """Images without position or orientation: stacked by InstanceNumber. When every image has its pixel size
    (PixelSpacing, else ImagerPixelSpacing: at the detector, PS3.3 C.8.11.4) the geometry keeps it — the place is
    unknown, the size is not — with the spacing between slices along the frame axis."""
    n = len(images)
    ordered = sorted(images, key=lambda i: (i.get("InstanceNumber") is None, i.get("InstanceNumber") or 0))
    sizes = [vector(i.get("PixelSpacing"), 2) for i in images]
    source = "PixelSpacing"
    if any(s is None for s in sizes):
        sizes, source = [vector(i.get("ImagerPixelSpacing"), 2) for i in images], "ImagerPixelSpacing"
    count = sum(1 for i in images if any(vector(i.get(k), m) is None for k, m in (
        ("ImagePositionPatient", 3), ("ImageOrientationPatient", 6), ("PixelSpacing", 2))))
    first = sizes[0]
    unplaced_all = all(vector(i.get("ImagePositionPatient"), 3) is None for i in images) or all(
        orientation(i.get("ImageOrientationPatient")) is None for i in images)
    if not unplaced_all or first is None or any(s is None or np.max(np.abs(s - first)) > 0 for s in sizes):
        warnings.append(f"missing geometry ({', '.join(missing)}) in {count} of {n} images: slices are stacked by "
                        f"InstanceNumber with 1 mm spacing, positions are not trustworthy")
        return StackCheck(ordered, warnings, None)
    cosines = orientation(images[0].get("ImageOrientationPatient"))
    if cosines is None or "ImageOrientationPatient" in missing:
        cosines = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    normal = slice_normal(cosines)
    spacing = _one_slice_spacing(images[0])
    distances = np.arange(n) * spacing
    where = ("ImagerPixelSpacing, at the detector: sizes in the patient are smaller by the magnification"
             if source == "ImagerPixelSpacing" else "PixelSpacing")
    frame_axis = f", slices {spacing:g} mm apart by InstanceNumber" if n > 1 else ""
    warnings.append(f"no patient position ({', '.join(k for k in missing if k != 'PixelSpacing') or 'PixelSpacing'}"
                    f" missing in {count} of {n} images): the place is unknown (origin 0), the pixel size is "
                    f"{first[1]:g} x {first[0]:g} mm from {where}{frame_axis}")
    geometry = StackGeometry(row=cosines[:3], col=cosines[3:], normal=normal, pixel_spacing=first,
                             positions=distances[:, None] * normal, distances=distances, spacing=spacing,
                             placed=False)
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


def _spacing(distances: np.ndarray, same: float) -> tuple[float, float, list[str]]:
    """The spacing, the tolerance its steps are compared with, and the sentences about repeated positions (steps
    below ``same`` mm, the DS precision of the positions), missing slices (a step close to a whole multiple of the
    usual one) and uneven spacing (any other). A regular stack's spacing is (last - first) / (n - 1), so the last
    slice lands on its recorded position; an irregular one's is its median step (the grid regularize resamples to).
    """
    warnings = []
    diffs = np.diff(distances)
    if np.any(diffs < same):
        dup = int(np.sum(diffs < same))
        warnings.append(f"{dup} slices share a position with another slice: several volumes or repeated "
                        f"acquisitions are mixed in this series")
    ordered, mid = np.sort(diffs), len(diffs) // 2  # the median as np.median computes it, without importing
    spacing = float(ordered[mid] if len(diffs) % 2 else (ordered[mid - 1] + ordered[mid]) / 2)  # numpy.ma (~8 ms)
    tolerance = same + SPACING_RELATIVE * abs(spacing)
    if spacing > same and diffs.max() - diffs.min() > tolerance:
        gaps = []
        for k, d in enumerate(diffs):
            ratio = d / spacing
            if ratio > 1.5 and abs(ratio - round(ratio)) < 0.1:  # 1.5: half a slice more is not a missing slice
                gaps.append((k, int(round(ratio)) - 1))
        for k, count in gaps:
            warnings.append(f"{counted(count, 'missing slice')} between slice {k + 1} and {k + 2} (positions "
                            f"{distances[k]:.2f} and {distances[k + 1]:.2f} mm along the normal; usual spacing "
                            f"{spacing:.3g} mm)")
        gapped = {k for k, _ in gaps}
        others = [d for k, d in enumerate(diffs) if k not in gapped]
        if others and max(others) - min(others) > tolerance:
            warnings.append(f"slices are not equally spaced: spacing varies from {min(others):.4g} to "
                            f"{max(others):.4g} mm (tolerance {tolerance:.2g} mm)")
    elif len(distances) > 1:
        spacing = float(distances[-1] - distances[0]) / (len(distances) - 1)
    return spacing, tolerance, warnings


def _tilt(positions: np.ndarray, normal: np.ndarray, rounding: float) -> float:
    """Degrees between the first-to-last slice travel and the normal; 0 when the sideways drift is within what
    the rounding of the written positions (``rounding`` per coordinate, two positions) and of the cosines
    (ORIENTATION_TOLERANCE over the travel) explain, and never below 0.01 mm (float32 arithmetic of scanners)."""
    step = positions[-1] - positions[0]
    length = float(np.linalg.norm(step))
    if length <= 0:
        return 0.0
    along = float(np.dot(step, normal))
    drift = float(np.linalg.norm(step - along * normal))
    if drift <= max(SPACING_FLOOR_MM, 2 * rounding * math.sqrt(3) + ORIENTATION_TOLERANCE * length):
        return 0.0
    cos = min(1.0, abs(along) / length)
    return math.degrees(math.acos(cos))
