"""What a derived object refers to, read once at import and stored with its instance row (column ``refs``), so
that examine knows which series a SEG, an RT structure set or an RT dose belongs on — and which objects refer to a
CT — without opening a file (Slicer's "load referenced series").

Only files that can refer to other series are read (:func:`needs_references`): segmentations, RT structure sets,
RT doses and plans (rare in a database) and DERIVED images (a reformat, a map, dicomtui's own volume → series
export, which writes SourceImageSequence and ReferencedSeriesSequence).

For a DERIVED image the value stands for its series: the first image of a series that an import process reads
gives its references to the others (:func:`references_of_file`), so a 1,000-slice reformat costs one read.

The stored value is compact JSON (:func:`read_references`), each key present only when it holds something:
``{"series": [SeriesInstanceUID…], "sop": [SOPInstanceUID…], "for": [FrameOfReferenceUID…]}`` — the series named
directly (ReferencedSeriesSequence, PS3.3 C.12.2 / C.8.20.2, also inside StudiesContainingOtherReferenced-
InstancesSequence and SourceImageEvidenceSequence; RTSTRUCT's RTReferencedSeriesSequence, C.8.8.5), the
instances named when no series is (SourceImageSequence, C.7.6.1; RT Dose's ReferencedRTPlanSequence and
ReferencedStructureSetSequence, C.8.8.3; RT Plan's ReferencedStructureSetSequence, C.8.8.9), and the frames of
reference to fall back on (RTSTRUCT's ReferencedFrameOfReferenceSequence; a dose's or SEG's own
FrameOfReferenceUID).
``core.examine.references`` resolves them against the database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from .dicomfile import read_dataset

__all__ = ["REFERRING_CLASSES", "needs_references", "read_references", "references_of_file"]

_STORAGE = "1.2.840.10008.5.1.4.1.1."
# SOP classes that refer to other series by nature (PS3.4 B.5), with what such an object is called in examine's
# "referenced by" line.
REFERRING_CLASSES = {_STORAGE + "66.4": "segmentation", _STORAGE + "481.3": "structure set",
                     _STORAGE + "481.2": "dose", _STORAGE + "481.5": "plan", _STORAGE + "481.8": "plan"}
_MAX_INSTANCES = 4096  # SourceImageSequence of a derived slice lists its sources: a few suffice to find the series


def needs_references(header: dict[str, Any]) -> bool:
    """Whether import must read what the file refers to: a SOP class of REFERRING_CLASSES, or an image whose
    ImageType value 1 is DERIVED (PS3.3 C.7.6.1.1.2)."""
    if header.get("SOPClassUID") in REFERRING_CLASSES:
        return True
    return str(header.get("ImageType") or "").upper().split("\\")[0] == "DERIVED"


# DERIVED images: what the first image of a series read in this process refers to stands for its series (the
# "referenced by" relation is between series): later images of it are not read again. pydicom costs ~1 ms a file
# against ~0.09 ms for the whole import of an image (measured in the h19s note of issue 19).
_SERIES_SEEN: dict[str, str | None] = {}
_SERIES_SEEN_MAX = 1024


def references_of_file(header: dict[str, Any], path: str | os.PathLike[str]) -> str | None:
    """:func:`read_references` of a file :func:`needs_references` chose: every SEG / RT object is read; a
    DERIVED image only when no other image of its series was read by this process (it then gets that one's)."""
    if header.get("SOPClassUID") in REFERRING_CLASSES:
        return read_references(path)
    series = str(header.get("SeriesInstanceUID") or "")
    if series and series in _SERIES_SEEN:
        return _SERIES_SEEN[series]
    refs = read_references(path)
    if series:
        if len(_SERIES_SEEN) >= _SERIES_SEEN_MAX:
            _SERIES_SEEN.clear()
        _SERIES_SEEN[series] = refs
    return refs


def read_references(path: str | os.PathLike[str]) -> str | None:
    """The JSON of what the file at ``path`` refers to (see the module), or None when it names nothing. Raises
    what :func:`dicomfile.read_dataset` raises (the caller keeps the row without it)."""
    ds = read_dataset(path, defer_size=4096).dataset
    series: list[str] = [_uid(item, "SeriesInstanceUID") for item in _items(ds, "ReferencedSeriesSequence")]
    # other studies' series (PS3.3 C.12.2), and the evidence of a Legacy Converted Enhanced image (C.8.13.1)
    for keyword in ("StudiesContainingOtherReferencedInstancesSequence", "SourceImageEvidenceSequence"):
        for study in _items(ds, keyword):
            series += [_uid(item, "SeriesInstanceUID") for item in _items(study, "ReferencedSeriesSequence")]
    frames_of_reference: list[str] = []
    for frame in _items(ds, "ReferencedFrameOfReferenceSequence"):  # RTSTRUCT, PS3.3 C.8.8.5
        frames_of_reference.append(_uid(frame, "FrameOfReferenceUID"))
        for study in _items(frame, "RTReferencedStudySequence"):
            series += [_uid(item, "SeriesInstanceUID") for item in _items(study, "RTReferencedSeriesSequence")]
    sop: list[str] = []
    for keyword in ("ReferencedRTPlanSequence", "ReferencedStructureSetSequence"):  # RT Dose, RT Plan: C.8.8.3/9
        sop += [_uid(item, "ReferencedSOPInstanceUID") for item in _items(ds, keyword)]
    if not series:  # a derived image naming only its source images
        sop += [_uid(item, "ReferencedSOPInstanceUID") for item in _items(ds, "SourceImageSequence")][:_MAX_INSTANCES]
    if ds.get("SOPClassUID") in REFERRING_CLASSES and ds.get("FrameOfReferenceUID"):
        frames_of_reference.append(str(ds.FrameOfReferenceUID))  # a dose or SEG lies in its image's frame of reference
    found = {key: list(dict.fromkeys(u for u in values if u))
             for key, values in (("series", series), ("sop", sop), ("for", frames_of_reference))}
    found = {key: values for key, values in found.items() if values}
    return json.dumps(found, separators=(",", ":")) if found else None


def _items(ds: Any, keyword: str) -> Iterable[Any]:
    return ds.get(keyword) or []


def _uid(item: Any, keyword: str) -> str:
    value = item.get(keyword)
    return str(value).strip() if value else ""
