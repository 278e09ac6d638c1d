"""Multi-frame plugin: enhanced CT/MR/PET and other multi-frame files, one loadable per stack and time point,
with geometry from the per-frame and shared functional groups (stored at import: see frames.py).

Each frame becomes a pseudo-instance row (``SOPInstanceUID#frame``, 1-based) so that the stack checks of
``geometry`` (sorting along the normal, spacing, gaps, tilt) apply unchanged; where its pixels are (frame index
and the file's frame count) travels beside the rows, in the loadable's ``FramesPayload``.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .geometry import Row, check_stack
from .plugin import (
    CONF_ALL,
    CONF_DOUBTFUL,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    FrameRef,
    FramesPayload,
    Loadable,
    LoadOptions,
    Progress,
    check_cancel,
    series_name,
    ticker,
)
from .stack import build_volume, frame_row

if TYPE_CHECKING:
    import numpy as np

    from ..volume import Volume

NAME = name = "multiframe"


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per (StackID, TemporalPositionIndex) of each multi-frame instance with pixels; a file without
    per-frame geometry is one doubtful loadable of its frames in file order."""
    out: list[Loadable] = []
    for inst in rows:
        if (inst.get("NumberOfFrames") or 1) <= 1 or not inst.get("has_pixels"):
            continue
        base = series_name(inst)
        series_uid = inst.get("SeriesInstanceUID", "")
        frames = json.loads(inst["frames"]) if inst.get("frames") else None
        if not frames:
            count = inst["NumberOfFrames"]
            refs = tuple(FrameRef(f, count) for f in range(count))
            pseudo = [frame_row(inst, f, {}) for f in range(count)]
            out.append(Loadable(f"{base} (frames)", pseudo, NAME, CONF_DOUBTFUL, [
                f"no per-frame geometry: the {len(pseudo)} frames are stacked in file order with 1 mm spacing "
                f"(a cine loop or a projection series, not a volume)"], series_uid=series_uid,
                payload=FramesPayload(None, refs)))
            continue
        groups: dict[tuple[Any, Any], list[Row]] = defaultdict(list)
        index_of: dict[str, int] = {}
        for f, frame in enumerate(frames):
            row = frame_row(inst, f, frame)
            index_of[row["SOPInstanceUID"]] = f
            groups[(frame.get("k"), frame.get("ti"))].append(row)
        for (stack, time), members in groups.items():
            suffix = []
            if len({k for k, _ in groups}) > 1:
                suffix.append(f"stack {stack}")
            if len({t for _, t in groups}) > 1:
                suffix.append(f"time point {time}")
            title = base + (f" ({', '.join(suffix)})" if suffix else "")
            check = check_stack(members)
            refs = tuple(FrameRef(index_of[row["SOPInstanceUID"]], inst["NumberOfFrames"]) for row in check.instances)
            out.append(Loadable(title, check.instances, NAME, CONF_ALL if not check.warnings else CONF_DOUBTFUL,
                                check.warnings, series_uid=series_uid, payload=FramesPayload(check.geometry, refs)))
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The one Volume of ``loadable``: each file's frames read once, the loadable's frames stacked in its order.
    Raises ``LoadError`` (``cancel`` set: checked between frames) or ``PixelError``."""
    import numpy as np

    from ..pixels import read_frames

    payload = loadable.payload
    if not isinstance(payload, FramesPayload):
        raise TypeError(f"{loadable.name}: not a multi-frame loadable")
    total = len(loadable.instances)
    tick = ticker(progress, cancel, loadable.name, total)
    check_cancel(cancel, loadable.name, 0, total)
    by_file: dict[str, np.ndarray] = {}
    picked = []
    for n, (row, ref) in enumerate(zip(loadable.instances, payload.frames, strict=True)):
        key = row["path"]
        if key not in by_file:
            by_file[key] = read_frames(db.abspath(row["path"], bool(row["stored"])),
                                       {**row, "NumberOfFrames": ref.count})
        picked.append(by_file[key][ref.index])
        if tick is not None:
            tick(n + 1, total)
    return [build_volume(np.stack(picked), loadable.instances, payload.geometry, name=loadable.name,
                         warnings=loadable.warnings, regularize=options.regularize)]
