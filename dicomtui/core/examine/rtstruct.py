"""RT Structure Set plugin: each ROI's closed planar contours rasterised on the image series the structure set refers
to (``core.rasterize``: pixel centres, even-odd, holes by XOR per slice — as plastimatch does).

The referenced series is read from the RTSTRUCT file itself at load time (ReferencedFrameOfReferenceSequence >
RTReferencedStudySequence > RTReferencedSeriesSequence, PS3.3 C.8.8.5; else the series of an image a contour
names in its ContourImageSequence), and its grid comes through ``LoadOptions.referenced_grid`` — never by
importing another plugin. ROIs that do not overlap come back as one label volume (value = segment number);
when any two overlap (a body contains its tumour), as one label volume per ROI (value 1), so that no voxel has
to choose (the ``Volume.segments`` contract).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LoadError
from ..plural import counted
from ..rasterize import rasterize, slice_normal
from ..volume import Segment, Volume
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
    series_name,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

NAME = name = "rtstruct"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
_DEFAULT_COLOR = (255, 0, 0)


def is_structure_set(row: Row) -> bool:
    """An RT Structure Set instance (by SOPClassUID, PS3.4 B.5)."""
    return row.get("SOPClassUID") == RT_STRUCTURE_SET_STORAGE


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per RT Structure Set instance of the series (selected like a clean image: CONF_ALL). Examine
    opens no file, so the referenced series and the ROIs are found at load time."""
    out = []
    for row in rows:
        if is_structure_set(row):
            number = f" {row['InstanceNumber']}" if len(rows) > 1 and row.get("InstanceNumber") is not None else ""
            out.append(Loadable(f"{series_name(row)} (RT structure set{number})", [row], NAME, CONF_ALL,
                                series_uid=row.get("SeriesInstanceUID", "")))
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The ROIs of the structure set as label volumes ([k, j, i] uint8/uint16, the referenced grid's affine),
    one volume for all when no two overlap, else one per ROI. Raises ``LoadError`` when the referenced series is
    not in the database, no ROI has a closed planar contour on its grid, or ``cancel`` is set between ROIs."""
    import pydicom

    row = loadable.instances[0]
    path = db.abspath(row["path"], bool(row["stored"]))
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one sentence naming the file
        raise LoadError(f"{loadable.name}: {path} could not be read as DICOM ({exc})") from exc
    grid, referenced = _referenced_grid(db, ds, options)
    if grid is None:
        raise LoadError(f"{loadable.name}: the image series it refers to ({referenced or 'none named'}) is not in "
                        f"the database: import it to rasterise the structure set")
    rois = read_rois(ds)
    shape = grid.array.shape[:3]
    distances = _slice_distances(db, grid)
    warnings = list(loadable.warnings)
    masks: list[tuple[Segment, np.ndarray]] = []
    skipped: Counter[str] = Counter()
    off_grid = not_planar = 0
    for n, roi in enumerate(rois):
        check_cancel(cancel, loadable.name, n, len(rois))
        skipped.update(roi.skipped)
        raster = rasterize(roi.contours, grid.affine, shape, distances)
        off_grid += raster.off_grid
        not_planar += raster.not_planar
        if raster.mask.any():
            masks.append((roi.segment, raster.mask))
        else:
            warnings.append(f"ROI {roi.segment.label!r} has no closed planar contour on the image grid: left out")
        if progress is not None:
            progress(n + 1, len(rois))
    if skipped:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items()))
        warnings.append(f"contours that are not CLOSED_PLANAR are not rasterised: {kinds}")
    if off_grid:
        warnings.append(f"{counted(off_grid, 'contour')} {'lies' if off_grid == 1 else 'lie'} on no slice of the image "
                        f"series (beyond its ends or in a gap): left out")
    if not_planar:
        warnings.append(f"{counted(not_planar, 'contour')} {'is' if not_planar == 1 else 'are'} not parallel to the "
                        f"image slices: left out")
    if not masks:
        raise LoadError(f"{loadable.name}: no ROI has a closed planar contour on the image grid "
                        f"({len(rois)} ROIs)")
    series_uid = str(row.get("SeriesInstanceUID") or "")

    def volume(array: np.ndarray, name: str, segments: tuple[Segment, ...]) -> Volume:
        return Volume(array, grid.affine.copy(), name=name, modality="RTSTRUCT", warnings=list(warnings),
                      segments=segments, series_uid=series_uid, referenced_series_uid=referenced)

    if not _overlap([m for _, m in masks]):
        labels = np.zeros(shape, dtype=np.uint8 if len(masks) < 256 else np.uint16)
        for value, (_, mask) in enumerate(masks, 1):
            labels[mask] = value
        return [volume(labels, loadable.name, tuple(replace(s, number=v) for v, (s, _) in enumerate(masks, 1)))]
    # bool and uint8 have one byte: the mask is the label array (value 1), no copy
    return [volume(mask.view(np.uint8), f"{loadable.name}: {segment.label}", (replace(segment, number=1),))
            for segment, mask in masks]


@dataclass
class RoiContours:
    """One ROI as read: its ``segment`` (number = ROINumber until placed in a label volume), its closed planar
    contours ((N, 3) LPS mm each) and the ContourGeometricType of those left out (``skipped``)."""

    segment: Segment
    contours: list[np.ndarray]
    skipped: list[str]


def read_rois(ds: Dataset) -> list[RoiContours]:
    """The ROIs of an RT Structure Set in StructureSetROISequence order: ROIName, ROIGenerationAlgorithm,
    ROIDisplayColor (ROIContourSequence) and RTROIInterpretedType (RTROIObservationsSequence), joined by ROI
    number (PS3.3 C.8.8.5, C.8.8.6, C.8.8.8); contours with ContourData of ≥ 3 points that are CLOSED_PLANAR."""
    contours_of = {int(item.ReferencedROINumber): item for item in ds.get("ROIContourSequence", [])
                   if "ReferencedROINumber" in item}
    kind_of = {int(item.ReferencedROINumber): str(item.get("RTROIInterpretedType") or "")
               for item in ds.get("RTROIObservationsSequence", []) if "ReferencedROINumber" in item}
    out = []
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        roi_contour = contours_of.get(number)
        color = _DEFAULT_COLOR
        closed: list[np.ndarray] = []
        skipped: list[str] = []
        if roi_contour is not None:
            if len(roi_contour.get("ROIDisplayColor") or []) == 3:
                color = tuple(int(v) for v in roi_contour.ROIDisplayColor)  # type: ignore[assignment]
            for contour in roi_contour.get("ContourSequence", []):
                kind = str(contour.get("ContourGeometricType") or "")
                points = np.asarray(contour.get("ContourData") or [], dtype=float).reshape(-1, 3)
                if kind == "CLOSED_PLANAR" and len(points) >= 3:
                    closed.append(points)
                else:
                    skipped.append(kind or "untyped")
        segment = Segment(number, str(item.get("ROIName") or f"ROI {number}"), color, type=kind_of.get(number, ""),
                          algorithm=str(item.get("ROIGenerationAlgorithm") or ""))
        out.append(RoiContours(segment, closed, skipped))
    return out


def referenced_series(ds: Dataset) -> list[str]:
    """The SeriesInstanceUIDs an RT Structure Set names in ReferencedFrameOfReferenceSequence (PS3.3 C.8.8.5),
    in order, each once."""
    found: list[str] = []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = str(series.get("SeriesInstanceUID") or "")
                if uid and uid not in found:
                    found.append(uid)
    return found


def _referenced_grid(db: Any, ds: Dataset, options: LoadOptions) -> tuple[Volume | None, str]:
    """The image grid of the first referenced series the database holds (by RTReferencedSeriesSequence, else by
    the series of an image a contour refers to), and its UID ("" when the file names none)."""
    candidates = referenced_series(ds) or _series_of_contour_images(db, ds)
    grid_of = options.referenced_grid
    for uid in candidates:
        grid = grid_of(uid) if grid_of is not None else None
        if grid is not None:
            return grid, uid
    return None, ", ".join(candidates)


def _series_of_contour_images(db: Any, ds: Dataset) -> list[str]:
    """The series (UID) of the first image a contour names in its ContourImageSequence that the database holds;
    [] when none is."""
    images = dict.fromkeys(str(image.get("ReferencedSOPInstanceUID") or "")
                           for roi_contour in ds.get("ROIContourSequence", [])
                           for contour in roi_contour.get("ContourSequence", [])
                           for image in contour.get("ContourImageSequence", []))
    for image_uid in images:
        instance = db.find("instance", image_uid) if image_uid else None
        series = db.get("series", instance["series_fk"]) if instance else None
        if series:
            return [str(series["SeriesInstanceUID"])]
    return []


def _slice_distances(db: Any, grid: Volume) -> np.ndarray | None:
    """Each slice's position along the grid's normal (mm), from the ImagePositionPatient stored for its image:
    what places contours on an unevenly spaced or gapped stack (its affine holds the usual spacing only). None
    when the grid was resampled, is made of frames, or a position is unknown: the affine places them then."""
    if grid.resampled or len(grid.instance_uids) != grid.array.shape[0] or any("#" in u for u in grid.instance_uids):
        return None
    normal = slice_normal(grid.affine)
    out = []
    for uid in grid.instance_uids:
        row = db.find("instance", uid)
        try:
            out.append(float(np.dot([float(v) for v in str(row["ImagePositionPatient"]).split("\\")], normal)))
        except (TypeError, ValueError, KeyError):
            return None
    return np.array(out)


def _overlap(masks: list[np.ndarray]) -> bool:
    """Whether any two of ``masks`` share a voxel (one running union: memory of two masks, not of all)."""
    covered = np.zeros_like(masks[0])
    for mask in masks:
        if np.any(covered & mask):
            return True
        covered |= mask
    return False
