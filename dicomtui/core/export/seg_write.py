"""A label volume written as a DICOM Segmentation (PS3.3 A.51, binary) referencing its source series, by highdicom,
and stored in the database as a copied file is (the import's copy path, ``volume_series.store_written``).

The labels (loaded, or read from NIfTI/NRRD by ``volume_read``) are put on the grid of the source series ``like``
(its default loadable, loaded): exactly when their voxels are the series' voxels (any axis order or flip), else by
nearest neighbour with a warning. Each non-zero label value becomes one segment; segments are numbered 1, 2, … in
increasing label value (PS3.3 C.8.20.2: Segment Number starts at 1 and increases by 1; a warning gives the mapping
when the values differ). Names and codes come from a small JSON keyed by label value (:func:`segment_specs`), else
defaults ("segment N", category and type Tissue, SCT 85756007). Frames without any segment are left out (sparse).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..database import DicomDatabase
from ..dicomfile import read_dataset
from ..errors import ExportError, SelectionError
from ..volume import Volume
from .volume_series import DEFAULT_UID_ROOT, new_uid, store_written

DEFAULT_SEG_SERIES_NUMBER = 1100
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
_TISSUE = ("85756007", "SCT", "Tissue")  # SNOMED CT "Tissue": Slicer's default category and type


@dataclass(frozen=True)
class SegmentSpec:
    """What one segment is called: SegmentLabel, category and type as (CodeValue, CodingSchemeDesignator,
    CodeMeaning) (PS3.3 C.8.20.2, CID 7150/7151), display colour RGB 0-255 (None: highdicom writes none)."""

    label: str
    category: tuple[str, str, str] = _TISSUE
    type: tuple[str, str, str] = _TISSUE
    color: tuple[int, int, int] | None = None


def segment_specs(text: str) -> dict[int, SegmentSpec]:
    """Segment names and codes by label value from JSON: ``{"1": {"label": "liver", "category": "Tissue",
    "type": "Liver", "color": [255, 0, 0]}}``; a category or type is a keyword of pydicom's SNOMED CT dictionary
    (``codes.SCT.Liver``) or ``{"value": "10200004", "scheme": "SCT", "meaning": "Liver"}``. Raises ExportError
    with the entry at fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"the segments JSON is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ExportError('the segments JSON must be an object keyed by label value: {"1": {"label": "liver"}}')
    out = {}
    for key, entry in data.items():
        if not str(key).isdigit() or int(key) == 0 or not isinstance(entry, dict):
            raise ExportError(f"segments JSON entry {key!r}: keys are label values 1, 2, … and values objects")
        color = entry.get("color")
        if color is not None and (len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color)):
            raise ExportError(f"segments JSON entry {key!r}: color must be three integers 0-255")
        out[int(key)] = SegmentSpec(str(entry.get("label") or f"segment {key}"),
                                    _code(entry.get("category"), key), _code(entry.get("type"), key),
                                    tuple(color) if color is not None else None)
    return out


def _code(value: Any, key: str) -> tuple[str, str, str]:
    from pydicom.sr.codedict import codes

    if value is None:
        return _TISSUE
    if isinstance(value, dict) and {"value", "scheme", "meaning"} <= set(value):
        return str(value["value"]), str(value["scheme"]), str(value["meaning"])
    if isinstance(value, str):
        keyword = "".join(part[:1].upper() + part[1:] for part in value.replace("-", " ").split())
        try:
            code = getattr(codes.SCT, keyword)
        except AttributeError:
            raise ExportError(f"segments JSON entry {key!r}: {value!r} is not a SNOMED CT keyword pydicom knows "
                              f'(give {{"value": …, "scheme": "SCT", "meaning": …}} instead)') from None
        return str(code.value), str(code.scheme_designator), str(code.meaning)
    raise ExportError(f"segments JSON entry {key!r}: a code is a keyword or {{value, scheme, meaning}}")


@dataclass
class SegWriteReport:
    """What was written: the new SEG's series and instance UIDs, its segments (label value → segment number and
    label), where it went, and what the user should know."""

    series_uid: str
    sop_instance_uid: str
    like: str
    segments: list[tuple[int, int, str]]  # (label value, segment number, label)
    frames: int
    stored: int = 0
    file: Path | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> str:
        where = [f"{self.stored} stored in the database"] if self.stored else []
        if self.file is not None:
            where.append(f"written to {self.file}")
        names = ", ".join(f"{number}: {label}" for _value, number, label in self.segments)
        lines = [f"New segmentation {self.series_uid} ({len(self.segments)} segments: {names}; {self.frames} frames; "
                 f"{', '.join(where) or 'nothing kept'}) referencing series {self.like}, in {self.elapsed_s:.1f} s."]
        lines += [f"Warning: {w}" for w in self.warnings] + [f"Not stored: {p}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"series_uid": self.series_uid, "sop_instance_uid": self.sop_instance_uid, "like": self.like,
                "segments": [{"value": v, "number": n, "label": label} for v, n, label in self.segments],
                "frames": self.frames, "stored": self.stored, "file": str(self.file) if self.file else None,
                "warnings": self.warnings, "problems": self.problems}


def write_labels_as_seg(db: DicomDatabase, labels: Volume, like: str, specs: dict[int, SegmentSpec] | None = None,
                        *, folder: str | Path | None = None, store: bool = True, description: str = "",
                        series_number: int = DEFAULT_SEG_SERIES_NUMBER,
                        uid_root: str = DEFAULT_UID_ROOT, min_free: int = 0) -> SegWriteReport:
    """Write ``labels`` (``[k, j, i]`` integer label values, 0 = background; affine (i, j, k) → LPS mm) as a
    binary SEG of series ``like`` (a full SeriesInstanceUID of ``db``): stored in ``db`` (``store``) and/or written
    to ``folder`` (``SEG.dcm``, never over a file); ``min_free``: bytes kept free on the database's disk (not
    stored otherwise, :func:`.volume_series.store_written`). Raises SelectionError (no such series, nothing of it
    loads as an image) and ExportError (labels not integers, no label, a multi-frame source, a file in the way)."""
    import highdicom as hd
    from pydicom import dcmwrite

    from ..examine import referenced_grid
    from ..examine.seg import place_mask

    start = time.perf_counter()
    found = referenced_grid(db).loaded(like)
    if found is None:
        raise SelectionError(f"The database {db.root} has no series {like} that loads as an image.")
    loadable, grid = found
    if any("#" in uid for uid in grid.instance_uids) or len(grid.instance_uids) != grid.array.shape[0]:
        raise ExportError(f"series {like} is not a stack of single-frame images: a SEG of it is not written yet")
    array = np.asarray(labels.array)
    if array.ndim != 3 or not np.array_equal(array, np.round(array)) or (array < 0).any():
        raise ExportError(f"{labels.name or 'the labels'}: a label image holds non-negative whole numbers in 3-D")
    values = [int(v) for v in np.unique(array) if v != 0]
    if not values:
        raise ExportError(f"{labels.name or 'the labels'}: no voxel is labelled (all 0)")
    warnings: list[str] = []
    shape = grid.array.shape[:3]
    on_grid = np.zeros(int(np.prod(shape)), dtype=np.uint16 if len(values) > 255 else np.uint8)
    resampled = False
    for number, value in enumerate(values, 1):
        indices, exact = place_mask(array == value, labels.affine, shape, grid.affine)
        on_grid[indices] = number
        resampled |= not exact
    if resampled:
        warnings.append(f"the labels' voxels are not those of series {like}: resampled onto its grid (nearest "
                        f"neighbour)")
    if values != list(range(1, len(values) + 1)):
        warnings.append("segments are numbered from 1 (PS3.3 C.8.20.2): " + ", ".join(
            f"label {v} → segment {n}" for n, v in enumerate(values, 1)))
    specs = specs or {}
    unknown = sorted(set(specs) - set(values))
    if unknown:
        warnings.append(f"the segments JSON names label values the image does not hold: {unknown}")
    rows = {row["SOPInstanceUID"]: row for row in loadable.instances}
    sources = [read_dataset(db.abspath(rows[uid]["path"], bool(rows[uid]["stored"]))).dataset
               for uid in grid.instance_uids]
    descriptions = [_description(hd, number, specs.get(value) or SegmentSpec(f"segment {value}"))
                    for number, value in enumerate(values, 1)]
    seg = hd.seg.Segmentation(
        sources, on_grid.reshape(shape), hd.seg.SegmentationTypeValues.BINARY, descriptions,
        new_uid(uid_root), series_number, new_uid(uid_root), 1, "dicomtui", "dicomtui", _version(), "1",
        series_description=description or f"{labels.name or 'labels'} (segmentation)",
        content_label="SEGMENTATION", omit_empty_frames=True)
    report = SegWriteReport(str(seg.SeriesInstanceUID), str(seg.SOPInstanceUID), like,
                            [(v, n, d.SegmentLabel) for n, (v, d) in enumerate(zip(values, descriptions,
                                                                                    strict=True), 1)],
                            int(seg.NumberOfFrames), warnings=warnings)
    target = Path(folder) / "SEG.dcm" if folder is not None else None
    if target is not None and target.exists():
        raise ExportError(f"{target} exists; choose an empty folder (nothing was written).")
    scratch = Path(tempfile.mkdtemp(prefix="dicomtui-seg-"))
    try:
        path = scratch / "SEG.dcm"
        dcmwrite(path, seg, enforce_file_format=True)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            report.file = target
        if store:
            report.stored = store_written(db, [(path, report.sop_instance_uid)], str(seg.StudyInstanceUID),
                                          report.series_uid, report.problems, min_free)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.elapsed_s = time.perf_counter() - start
    return report


def _description(hd: Any, number: int, spec: SegmentSpec) -> Any:
    from highdicom.sr.coding import CodedConcept

    color = hd.color.CIELabColor.from_rgb(*spec.color) if spec.color is not None else None
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=spec.label, segmented_property_category=CodedConcept(*spec.category),
        segmented_property_type=CodedConcept(*spec.type), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=color)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dicomtui")
    except PackageNotFoundError:
        return "dev"
