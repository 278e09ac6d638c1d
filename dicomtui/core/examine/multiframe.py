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

from .cine import frame_rate
from .geometry import Row, check_stack, repeat_labels
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
    is_rt_dose,
    series_name,
    ticker,
)
from .stack import build_volume, frame_row

if TYPE_CHECKING:
    import numpy as np

    from ..volume import Volume

NAME = name = "multiframe"


# Dimensions that place a frame inside one volume (PS3.3 C.7.6.17.1): never a reason to split.
SPATIAL = frozenset(("InStackPositionNumber", "ImagePositionPatient", "SliceLocation"))
# How a dimension that splits is named: (label, unit); others by their keyword.
LABELS = {"StackID": ("stack", ""), "TemporalPositionIndex": ("time point", ""),
          "EffectiveEchoTime": ("echo time", " ms"), "DiffusionBValue": ("b-value", " s/mm²"),
          "NominalCardiacTriggerDelayTime": ("trigger delay", " ms")}


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per combination of the values of every non-spatial dimension that varies across the frames of
    a multi-frame instance (declared in its Dimension Index Sequence, or echo time, b-value, stack, time point:
    frames.py stored them); frames repeating a position within one combination are split by repetition, never
    stacked. A file without per-frame positions is one doubtful loadable of its frames in file order."""
    out: list[Loadable] = []
    for inst in rows:
        if (inst.get("NumberOfFrames") or 1) <= 1 or not inst.get("has_pixels") or is_rt_dose(inst):
            continue
        base = series_name(inst)
        series_uid = inst.get("SeriesInstanceUID", "")
        count = inst["NumberOfFrames"]
        frames = json.loads(inst["frames"]) if inst.get("frames") else None
        if not frames or len(frames) != count or not any(f.get("p") for f in frames):
            refs = tuple(FrameRef(f, count) for f in range(count))
            pseudo = [frame_row(inst, f, frames[f] if frames and f < len(frames) else {}) for f in range(count)]
            check = check_stack(pseudo)  # unplaced: file order, the pixel size when known
            out.append(Loadable(f"{base} (frames)", check.instances, NAME, CONF_DOUBTFUL, [
                f"no per-frame geometry: the {len(pseudo)} frames are stacked in file order "
                f"{'with 1 mm spacing' if check.geometry is None else f'{check.geometry.spacing:g} mm apart'} "
                f"(a cine loop or a projection series, not a volume)"], series_uid=series_uid,
                payload=FramesPayload(check.geometry, tuple(refs[_frame_index(r)] for r in check.instances))))
            continue
        values = [_dimensions(frame) for frame in frames]
        # a dimension splits when it varies, but not when every frame has its own value (a frame time stamp or
        # number: that would leave one-frame "volumes"); repeated positions left in a group are split below
        varying = [key for key in dict.fromkeys(k for v in values for k in v)
                   if key not in SPATIAL and 1 < len({json.dumps(v.get(key)) for v in values}) < len(values)]
        groups: dict[str, list[Row]] = defaultdict(list)
        named: dict[str, str] = {}
        for f, frame in enumerate(frames):
            key = json.dumps([values[f].get(k) for k in varying])
            groups[key].append(frame_row(inst, f, frame))
            named[key] = ", ".join(_label(k, values[f].get(k)) for k in varying)
        for key, members in groups.items():
            repeats = repeat_labels(members)
            parts = [[m for m, r in zip(members, repeats, strict=True) if r == rep] for rep in range(max(repeats) + 1)]
            for rep, part in enumerate(parts):
                suffix = [named[key]] if named[key] else []
                if len(parts) > 1:
                    suffix.append(f"repeat {rep + 1} of {len(parts)}")
                title = base + (f" ({', '.join(suffix)})" if suffix else "")
                check = check_stack(part)
                warnings = list(check.warnings)
                if len(parts) > 1:
                    warnings.append(f"{len(members)} frames repeat {len(members) - len(parts[0])} positions with "
                                    f"nothing declared to tell them apart: split by repetition in file order")
                refs = tuple(FrameRef(_frame_index(r), count) for r in check.instances)
                out.append(Loadable(title, check.instances, NAME, CONF_ALL if not warnings else CONF_DOUBTFUL,
                                    warnings, series_uid=series_uid, payload=FramesPayload(check.geometry, refs)))
    return out


def _dimensions(frame: dict[str, Any]) -> dict[str, Any]:
    """The dimension values of one stored frame; StackID and TemporalPositionIndex from the older keys too."""
    values = dict(frame.get("dv") or {})
    if frame.get("k") is not None:
        values.setdefault("StackID", frame["k"])
    if frame.get("ti") is not None:
        values.setdefault("TemporalPositionIndex", frame["ti"])
    return values


def _label(keyword: str, value: Any) -> str:
    label, unit = LABELS.get(keyword, (keyword, ""))
    shown = "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) if isinstance(value, list) else (
        f"{value:g}" if isinstance(value, float) else str(value))
    return f"{label} {shown}{unit}"


def _frame_index(row: Row) -> int:
    """The 0-based frame of a frame row (``uid#n``, n 1-based)."""
    return int(str(row["SOPInstanceUID"]).rpartition("#")[2]) - 1


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The one Volume of ``loadable``: each file's frames read once, the loadable's frames stacked in its order;
    ``extra["frame_rate"]`` (frames per second, ``cine.frame_rate``) when the first file's Cine Module gives one.
    Raises ``LoadError`` (``cancel`` set: checked between frames) or ``PixelError``."""
    import numpy as np

    from ..pixels import read_frames, read_presentation

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
    first = loadable.instances[0]  # the first file's Presentation and Modality LUT stand for the loadable's
    first_path = db.abspath(first["path"], bool(first["stored"]))
    presentation, luts = read_presentation([first_path], [first])
    volume = build_volume(np.stack(picked), loadable.instances, payload.geometry, name=loadable.name,
                          warnings=loadable.warnings, regularize=options.regularize, presentation=presentation,
                          modality_luts=None if luts is None else luts * total)
    if volume.modality == "PT":  # Enhanced PET: SUV factors from its functional groups (core/suv.py)
        from ..suv import attach

        attach(volume, first_path, loadable.instances)
    rate = frame_rate(first_path)  # a cine (US, XA): p plays at the file's rate
    if rate is not None:
        volume.extra["frame_rate"] = rate
    return [volume]
