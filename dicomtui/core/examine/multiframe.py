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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .cine import frame_rate
from .four_d import sequence_loadable, sortable, varying_attribute, volume_extra
from .geometry import ORIENTATION_TOLERANCE, Row, StackCheck, check_stack, repeat_labels
from .plugin import (
    CONF_ALL,
    CONF_DOUBTFUL,
    CONF_DOUBTFUL_PART,
    CONF_SUB,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    FrameRef,
    FramesPayload,
    Loadable,
    LoadOptions,
    Progress,
    SequencePayload,
    check_cancel,
    is_rt_dose,
    series_name,
    ticker,
)
from .stack import build_volume, frame_row

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "multiframe"


# Dimensions that place a frame inside one volume (PS3.3 C.7.6.17.1): never a reason to split.
SPATIAL = frozenset(("InStackPositionNumber", "ImagePositionPatient", "SliceLocation"))
# How a dimension that splits is named: (label, unit); others by their keyword.
LABELS = {"StackID": ("stack", ""), "TemporalPositionIndex": ("time point", ""),
          "EffectiveEchoTime": ("echo time", " ms"), "DiffusionBValue": ("b-value", " s/mm²"),
          "NominalCardiacTriggerDelayTime": ("trigger delay", " ms"), "DiffusionGradientOrientation": ("direction", "")}
# A dimension as the sequence plugin reads it from classic images (its VARYING keywords; the MR Echo macro's Effective
# Echo Time, PS3.3 C.8.13.5, stands for Echo Time; Frame Content's Temporal Position Index, C.7.6.16.2.2, for
# Temporal Position Identifier): a 4D
# loadable's volumes carry these in Volume.extra["key"], so the viewer, `load -o` and W treat both kinds alike.
CLASSIC = {"TemporalPositionIndex": "TemporalPositionIdentifier", "EffectiveEchoTime": "EchoTime",
           "NominalCardiacTriggerDelayTime": "TriggerTime"}
DIFFUSION = frozenset(("DiffusionBValue", "DiffusionGradientOrientation"))  # one dimension: a diffusion volume


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per combination of the values of every non-spatial dimension that varies across the frames of
    a multi-frame instance (declared in its Dimension Index Sequence, or echo time, b-value, stack, time point:
    frames.py stored them); frames repeating a position within one combination are split by repetition, never
    stacked. When one dimension varies (per stack; b-value and gradient direction count as one) and its values'
    frames are complete stacks on one grid, one 4D loadable of them all comes first and is preferred (``_four_d``).
    A file without per-frame positions is one doubtful loadable of its frames in file order."""
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
            groups[key].append(_with_values(frame_row(inst, f, frame), values[f]))
            named[key] = ", ".join(_label(k, values[f][k]) for k in varying if values[f].get(k) is not None)
        singles: list[_Group] = []  # each stack of each group: what a 4D loadable is made of
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
                item = Loadable(title, check.instances, NAME, CONF_ALL if not warnings else CONF_DOUBTFUL,
                                warnings, series_uid=series_uid, payload=FramesPayload(check.geometry, refs))
                singles.append(_Group(values[_frame_index(members[0])], named[key], check, refs, item,
                                      len(parts) > 1, _dimension_order(members, frames)))
        singles.sort(key=lambda g: _in_order(g, varying))  # dimension order, as the 4D loadable's volumes
        out += _four_d(inst, varying, singles) + [group.loadable for group in singles]
    return out


@dataclass
class _Group:
    """The frames of one combination of dimension values (one repetition of it), as examine offered them."""

    values: dict[str, Any]  # the dimension values of its first frame
    named: str  # "time point 2"
    check: StackCheck
    refs: tuple[FrameRef, ...]
    loadable: Loadable
    repeated: bool  # its combination repeats positions: split by repetition
    order: tuple[int, ...]  # the least DimensionIndexValues of its frames; () when some frame has none


def _four_d(inst: Row, varying: list[str], groups: list[_Group]) -> list[Loadable]:
    """Per stack, one 4D loadable of the groups (``four_d.sequence_loadable``) when one dimension sets them apart
    (b-value and gradient direction count as one), in dimension order (the Dimension Index Values, else the
    values), their volumes told apart as the sequence plugin tells those of classic images (the classic keyword:
    ``CLASSIC``); the per-value loadables stay, as parts of it (CONF_SUB when clean). Groups that are not one
    grid: no 4D loadable, and each per-value loadable says why (a warning)."""
    dims = [k for k in varying if k != "StackID"]
    if not dims or (len(dims) > 1 and not set(dims) <= DIFFUSION):
        return []
    by_stack: dict[str, list[_Group]] = defaultdict(list)
    for group in groups:
        by_stack[json.dumps(group.values.get("StackID")) if "StackID" in varying else ""].append(group)
    out = []
    for members in by_stack.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda g: _in_order(g, dims))
        why = _not_one_grid(members)
        if why:
            others = f"{len(members) - 1} volume{'s' if len(members) > 2 else ''}"
            for group in members:
                group.loadable.warnings.append(f"not loaded as one 4D image with the other {others}: {why}")
                group.loadable.confidence = CONF_DOUBTFUL
            continue
        first_rows = [group.check.instances[0] for group in members]
        told = varying_attribute(first_rows)
        if told[0] is None:  # a declared dimension of no classic attribute: its own keyword
            label, unit = LABELS.get(dims[0], (dims[0], ""))
            told = (dims[0], f"values of {label}", unit.strip())
        for group in members:  # a part of the 4D reading, offered beside it, never loaded with it by default
            group.loadable.confidence = CONF_SUB if group.loadable.confidence == CONF_ALL else CONF_DOUBTFUL_PART
        qualifier = _label("StackID", members[0].values["StackID"]) if "StackID" in varying else ""
        out.append(sequence_loadable(inst, [group.check for group in members], NAME, told,
                                     [group.refs for group in members], qualifier))
    return out


def _in_order(group: _Group, dims: list[str]) -> tuple[Any, ...]:
    """The sort key of a group in dimension order: its least DimensionIndexValues, then its values of ``dims``,
    then its first frame in the file."""
    return (group.order, *(sortable(group.values.get(k)) for k in dims), group.refs[0].index)


def _not_one_grid(groups: list[_Group]) -> str:
    """Why the frames of ``groups`` are not one 4D grid, in words ("" when they are): each group one stack
    without repeated positions, placed, and of the first group's frame count, orientation, pixel size and
    positions (within the DS precision of the positions written)."""
    first = groups[0]
    for group in groups:
        if group.repeated:
            return f"the frames of {group.named or 'one volume'} repeat positions"
        if group.check.geometry is None or not group.check.geometry.placed:
            return f"the frames of {group.named or 'one volume'} have no position in space"
    ref = first.check.geometry
    assert ref is not None
    for group in groups[1:]:
        geometry = group.check.geometry
        assert geometry is not None
        if len(group.refs) != len(first.refs):
            return f"{group.named} has {len(group.refs)} frames, {first.named} {len(first.refs)}"
        if not (np.allclose(geometry.row, ref.row, atol=ORIENTATION_TOLERANCE)
                and np.allclose(geometry.col, ref.col, atol=ORIENTATION_TOLERANCE)):
            return f"{group.named} has another orientation than {first.named}"
        if not np.allclose(geometry.pixel_spacing, ref.pixel_spacing, atol=1e-4):
            return (f"{group.named} has another pixel size than {first.named} ("
                    f"{' x '.join(f'{v:g}' for v in geometry.pixel_spacing)} mm vs "
                    f"{' x '.join(f'{v:g}' for v in ref.pixel_spacing)} mm)")
        if not np.allclose(geometry.positions, ref.positions, atol=max(geometry.tolerance, ref.tolerance)):
            return f"the frames of {group.named} lie at other positions than those of {first.named}"
    return ""


def _with_values(row: Row, values: dict[str, Any]) -> Row:
    """A frame row with its dimension values as attributes, under the classic keyword where there is one
    (``CLASSIC``: what the sequence plugin reads from classic images), lists as DICOM multi-values ("a\\b")."""
    for keyword, value in values.items():
        if keyword not in SPATIAL and value is not None:
            row[CLASSIC.get(keyword, keyword)] = ("\\".join(repr(v) for v in value) if isinstance(value, list)
                                                  else value)
    return row


def _dimension_order(members: list[Row], frames: list[dict[str, Any]]) -> tuple[int, ...]:
    """The least DimensionIndexValues of the frames ``members`` (frame rows): groups that differ in one dimension
    sort by its index this way, whatever slot the Dimension Index Sequence gives it; () when a frame has none."""
    indices = [frames[_frame_index(row)].get("d") for row in members]
    return min(tuple(d) for d in indices if d) if all(indices) else ()


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
    """The Volume of ``loadable`` — or, of a 4D loadable (``SequencePayload``), one per volume in dimension order,
    each with ``extra`` as the sequence plugin gives it (``sequence.volume_extra``: ``key``, ``value``, ``unit``;
    ``bvalue``, ``gradient``). Each file's frames are read once, each volume's frames stacked in its order;
    ``extra["frame_rate"]`` (frames per second, ``cine.frame_rate``) when the first file's Cine Module gives one.
    Progress counts the frames of all volumes. Raises ``LoadError`` (``cancel`` set: checked between frames) or
    ``PixelError``."""
    from ..pixels import read_frames, read_presentation

    payload = loadable.payload
    if isinstance(payload, SequencePayload):
        pieces = [(part.instances, part.frames, part.geometry) for part in payload.parts]
    elif isinstance(payload, FramesPayload):
        pieces = [(loadable.instances, payload.frames, payload.geometry)]
    else:
        raise TypeError(f"{loadable.name}: not a multi-frame loadable")
    total = len(loadable.instances)
    tick = ticker(progress, cancel, loadable.name, total)
    check_cancel(cancel, loadable.name, 0, total)
    by_file: dict[str, np.ndarray] = {}
    stacks = []
    done = 0
    for rows, refs, _ in pieces:
        picked = []
        for row, ref in zip(rows, refs, strict=True):
            key = row["path"]
            if key not in by_file:
                by_file[key] = read_frames(db.abspath(row["path"], bool(row["stored"])),
                                           {**row, "NumberOfFrames": ref.count})
            picked.append(by_file[key][ref.index])
            done += 1
            if tick is not None:
                tick(done, total)
        stacks.append(np.stack(picked))
    first = loadable.instances[0]  # the first file's Presentation and Modality LUT stand for the loadable's
    first_path = db.abspath(first["path"], bool(first["stored"]))
    presentation, luts = read_presentation([first_path], [first])
    rate = frame_rate(first_path)  # a cine (US, XA): p plays at the file's rate
    volumes = []
    for n, (raw, (rows, _, geometry)) in enumerate(zip(stacks, pieces, strict=True)):
        volume = build_volume(raw, rows, geometry, name=loadable.name, warnings=loadable.warnings,
                              regularize=options.regularize, presentation=presentation,
                              modality_luts=None if luts is None else luts * len(rows))
        if isinstance(payload, SequencePayload):
            volume.extra = volume_extra(payload, payload.parts[n])
        if volume.modality == "PT":  # Enhanced PET: SUV factors from its functional groups (core/suv.py)
            from ..suv import attach

            attach(volume, first_path, rows)
        if rate is not None:
            volume.extra["frame_rate"] = rate
        volumes.append(volume)
    return volumes
