"""Multi-frame plugin: enhanced CT/MR/PET and other multi-frame files, one loadable per stack and time point,
with geometry from the per-frame and shared functional groups (stored at import: see frames.py).

Each frame becomes a pseudo-instance row (``SOPInstanceUID#frame``) so that the scalar plugin's geometry checks
(sorting along the normal, spacing, gaps, tilt) apply unchanged.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from . import scalar
from .loadable import Loadable

NAME = "multiframe"


def examine(instances: list[dict[str, Any]], split_by_time: bool = False) -> list[Loadable]:
    out: list[Loadable] = []
    for inst in instances:
        if (inst.get("NumberOfFrames") or 1) <= 1 or not inst.get("has_pixels"):
            continue
        base = f"{inst.get('SeriesNumber') if inst.get('SeriesNumber') is not None else '?'}: " \
               f"{inst.get('SeriesDescription') or 'series'}"
        frames = json.loads(inst["frames"]) if inst.get("frames") else None
        if not frames:
            rows = [_pseudo(inst, f, {}) for f in range(inst["NumberOfFrames"])]
            out.append(Loadable(f"{base} (frames)", rows, NAME, scalar.CONF_DOUBTFUL, [
                f"no per-frame geometry: the {len(rows)} frames are stacked in file order with 1 mm spacing "
                f"(a cine loop or a projection series, not a volume)"], series_uid=inst.get("SeriesInstanceUID", ""),
                details={"geometry": {"valid": False}}))
            continue
        groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for f, frame in enumerate(frames):
            groups[(frame.get("k"), frame.get("ti"))].append(_pseudo(inst, f, frame))
        for (stack, time), rows in groups.items():
            suffix = []
            if len({k for k, _ in groups}) > 1:
                suffix.append(f"stack {stack}")
            if len({t for _, t in groups}) > 1:
                suffix.append(f"time point {time}")
            name = base + (f" ({', '.join(suffix)})" if suffix else "")
            ordered, warnings, geometry = scalar.check_geometry(rows)
            out.append(Loadable(name, ordered, NAME, scalar.CONF_ALL if not warnings else scalar.CONF_DOUBTFUL,
                                warnings, series_uid=inst.get("SeriesInstanceUID", ""),
                                details={"geometry": geometry}))
    return out


def _pseudo(inst: dict[str, Any], f: int, frame: dict[str, Any]) -> dict[str, Any]:
    """A frame as if it were a single-frame instance row."""
    row = dict(inst)
    row["SOPInstanceUID"] = f"{inst['SOPInstanceUID']}#{f + 1}"
    row["frame"] = f
    row["_frames"] = inst["NumberOfFrames"]  # the file's own count, for reading it
    row["NumberOfFrames"] = 1
    if frame.get("p"):
        row["ImagePositionPatient"] = "\\".join(repr(v) for v in frame["p"])
    if frame.get("o"):
        row["ImageOrientationPatient"] = "\\".join(repr(v) for v in frame["o"])
    if frame.get("s"):
        row["PixelSpacing"] = "\\".join(repr(v) for v in frame["s"])
    if frame.get("t") is not None:
        row["SliceThickness"] = frame["t"]
    if frame.get("rs") is not None:
        row["RescaleSlope"] = frame["rs"]
    if frame.get("ri") is not None:
        row["RescaleIntercept"] = frame["ri"]
    if frame.get("n") is not None:
        row["InstanceNumber"] = frame["n"]
    return row


def load(db, loadable: Loadable, progress=None, regularize: bool = False):
    """Read each file's frames once and stack the loadable's frames in its order."""
    import numpy as np

    from ..pixels import read_frames

    by_file: dict[str, np.ndarray] = {}
    picked = []
    for n, row in enumerate(loadable.instances):
        key = row["path"]
        if key not in by_file:
            by_file[key] = read_frames(db.abspath(row["path"], bool(row["stored"])),
                                       {**row, "NumberOfFrames": row["_frames"]})
        picked.append(by_file[key][row["frame"]])
        if progress is not None:
            progress(n + 1, len(loadable.instances))
    return scalar.build_volume(loadable, np.stack(picked), regularize)
