"""Per-frame geometry of multi-frame files (enhanced CT/MR/PET…), read once at import and stored as JSON so
that examine never opens the file.

Each frame: position ``p`` and orientation ``o`` (LPS), pixel spacing ``s`` (row, column), slice thickness ``t``,
StackID ``k``, InStackPositionNumber ``n``, TemporalPositionIndex ``ti``, DimensionIndexValues ``d``, and rescale
``rs``/``ri`` — from the per-frame functional group, else the shared one, else the top level.
"""

from __future__ import annotations

import json
from typing import Any

from .dicomfile import read_dataset


def frame_geometry(path: str, notes: list[str] | None = None) -> str | None:
    """The JSON list of per-frame geometry of a multi-frame file, or None when it has none worth keeping. The
    file is read as the header walk read it (:mod:`.dicomfile`); pydicom's warnings go to ``notes``."""
    opened = read_dataset(path)
    ds = opened.dataset
    if notes is not None:
        notes += opened.warnings
    count = int(ds.get("NumberOfFrames") or 1)
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    frames = []
    for f in range(count):
        item = per_frame[f] if f < len(per_frame) else None
        frame: dict[str, Any] = {
            "p": _floats(_find(item, shared, ds, "PlanePositionSequence", "ImagePositionPatient")),
            "o": _floats(_find(item, shared, ds, "PlaneOrientationSequence", "ImageOrientationPatient")),
            "s": _floats(_find(item, shared, ds, "PixelMeasuresSequence", "PixelSpacing")),
            "t": _float(_find(item, shared, ds, "PixelMeasuresSequence", "SliceThickness")),
            "rs": _float(_find(item, shared, ds, "PixelValueTransformationSequence", "RescaleSlope")),
            "ri": _float(_find(item, shared, ds, "PixelValueTransformationSequence", "RescaleIntercept")),
        }
        content = _first(item.get("FrameContentSequence")) if item is not None else None
        if content is not None:
            frame["k"] = str(content.get("StackID")) if content.get("StackID") is not None else None
            frame["n"] = _int(content.get("InStackPositionNumber"))
            frame["ti"] = _int(content.get("TemporalPositionIndex"))
            dims = content.get("DimensionIndexValues")
            frame["d"] = [int(v) for v in (dims if isinstance(dims, (list, tuple)) or hasattr(dims, "__iter__")
                                           else [dims])] if dims is not None else None
        frames.append(frame)
    if not any(fr["p"] for fr in frames):
        return None
    return json.dumps(frames, separators=(",", ":"))


def _first(seq) -> Any:
    return seq[0] if seq else None


def _find(item, shared, ds, group: str, keyword: str):
    for source in (item, shared):
        if source is None:
            continue
        inner = _first(source.get(group))
        if inner is not None and keyword in inner:
            return inner[keyword].value
    return ds.get(keyword)


def _floats(value) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__")
                                   and not isinstance(value, str) else [value])]
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
