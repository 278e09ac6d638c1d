"""The frame rate of a cine, from the file's header: what ``p`` plays at (the viewer reads
``Volume.extra["frame_rate"]``, frames per second).

PS3.3 C.7.6.5 (Cine Module): Cine Rate (0018,0040) and Recommended Display Frame Rate (0008,2144) are frames per
second; Frame Time (0018,1063) is the nominal time per frame in ms; Frame Time Vector (0018,1065) the increments
in ms between frames, its first value 0 (the first frame's own, C.7.6.5.1.2), so the rate is 1000 over the mean
of the others. Absent, zero or malformed values tell nothing: None, and the viewer plays at its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["frame_rate", "frame_rate_of"]


def frame_rate(path: Path) -> float | None:
    """Frames per second of the cine in the indexed file at ``path`` (its header only, the library's warnings
    kept off stderr; see ``frame_rate_of``); None when the header says nothing or cannot be read (the pixels'
    reader reports a bad file, not this)."""
    from pydicom.errors import InvalidDicomError

    from ..dicomfile import read_dataset

    try:
        ds = read_dataset(path, defer_size=4096).dataset
    except (OSError, InvalidDicomError, ValueError, EOFError):
        return None
    return frame_rate_of(ds)


def frame_rate_of(ds: Any) -> float | None:
    """Frames per second from a data set's Cine Module attributes, in order: CineRate, RecommendedDisplayFrameRate,
    1000 / FrameTime (ms), 1000 / the mean of FrameTimeVector after its first value (ms). None when none of them
    holds a positive number."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        value = _number(ds.get(keyword))
        if value is not None:
            return value
    frame_time = _number(ds.get("FrameTime"))
    if frame_time is not None:
        return 1000.0 / frame_time
    vector = ds.get("FrameTimeVector")
    if vector is None:
        return None
    try:
        times = [float(v) for v in _values(vector)]
    except (TypeError, ValueError):
        return None
    increments = times[1:] if len(times) > 1 else times
    mean = sum(increments) / len(increments) if increments else 0.0
    return 1000.0 / mean if mean > 0 else None


def _number(value: Any) -> float | None:
    """A positive float from a DS/IS value (a multi-value's first), else None."""
    if value is None or value == "":
        return None
    try:
        number = float(_values(value)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if number > 0 else None


def _values(value: Any) -> list[Any]:
    """A DICOM value as a list: a multi-value (pydicom's MultiValue, a list) as its items, one value as itself."""
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    return list(value)
