"""Sequence (4D) plugin: a series whose images repeat every slice position — time points, echoes, b-values —
becomes one multi-volume loadable, beside the scalar interpretation.

Volumes are made the way dcm2niix does: group the images by position along the slice normal; when every
position holds the same number m ≥ 2 of images, there are m volumes, told apart (and ordered) by the first
attribute whose values differ. Diffusion b-values and gradient directions are carried with each volume.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import (
    Row,
    StackCheck,
    check_stack,
    orientation,
    same_position_labels,
    same_position_tolerance,
    slice_normal,
    vector,
)
from .plugin import (
    CONF_DOUBTFUL,
    CONF_SEQUENCE,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    FrameRef,
    Loadable,
    LoadOptions,
    Progress,
    SequencePart,
    SequencePayload,
    check_cancel,
    image_kind,
    is_mosaic,
    series_name,
    ticker,
)
from .stack import read_volume, with_frame_geometry

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "sequence"
# (attribute, label, unit): the first that tells the volumes apart names the sequence
VARYING = [("TemporalPositionIdentifier", "time points", ""), ("TriggerTime", "trigger times", "ms"),
           ("EchoTime", "echo times", "ms"), ("DiffusionBValue", "b-values", "s/mm²"),
           ("DiffusionGradientOrientation", "diffusion directions", ""), ("AcquisitionNumber", "acquisitions", ""),
           ("ContentTime", "content times", ""), ("AcquisitionTime", "acquisition times", "")]


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One 4D loadable when every slice position of the series holds the same number (≥ 2) of single-frame
    images, else []. Each volume is checked as a stack; its warnings are prefixed "volume n: "."""
    images = with_frame_geometry([i for i in rows if i.get("has_pixels") and (i.get("NumberOfFrames") or 1) <= 1
                                  and not is_mosaic(i)])
    if len(images) < 4 or len({image_kind(i) for i in images}) > 1:  # sizes or grey/colour differ: not one 4D
        return []
    cosines = orientation(images[0].get("ImageOrientationPatient"))
    positions = [vector(i.get("ImagePositionPatient"), 3) for i in images]
    points = [p for p in positions if p is not None]
    if cosines is None or len(points) < len(positions):
        return []
    normal = slice_normal(cosines)
    same = same_position_tolerance(images, normal)  # within the rounding of the written positions
    by_position: dict[int, list[Row]] = defaultdict(list)
    distances = [float(np.dot(pos, normal)) for pos in points]
    for inst, rank in zip(images, same_position_labels(distances, same), strict=True):
        by_position[rank].append(inst)
    counts = {len(group) for group in by_position.values()}
    if len(counts) != 1 or (m := counts.pop()) < 2:
        return []
    groups = [by_position[key] for key in sorted(by_position)]
    key, label, unit = varying_attribute(groups[0])
    for group in groups:
        group.sort(key=lambda i: (sortable(i.get(key)) if key else 0, i.get("InstanceNumber") or 0))
    volumes = [[group[v] for group in groups] for v in range(m)]
    return [sequence_loadable(rows[0], [check_stack(members) for members in volumes], NAME, (key, label, unit))]


def sequence_loadable(first: Row, checks: list[StackCheck], plugin: str, varying: tuple[str | None, str, str],
                      frames: list[tuple[FrameRef, ...]] | None = None, qualifier: str = "") -> Loadable:
    """The one 4D loadable of the volumes ``checks`` (each checked as a stack, in volume order), told apart by
    ``varying`` (attribute keyword or None, its label in the plural, its unit; see VARYING), named "SeriesNumber:
    SeriesDescription (m volumes over n <label>)" after ``first`` (``qualifier, `` before the count: a stack); each
    volume's value is its first row's ``key``. Its warnings are each volume's, prefixed "volume n: "; without any
    it is CONF_SEQUENCE, else CONF_DOUBTFUL. ``frames``: per volume, where its rows' pixels are (multi-frame)."""
    key, label, unit = varying
    warnings: list[str] = []
    parts = []
    for v, check in enumerate(checks):
        value = check.instances[0].get(key) if key else None
        parts.append(SequencePart(check.instances, check.geometry, value, frames[v] if frames else ()))
        warnings += [f"volume {v + 1}: {w}" for w in check.warnings if f"volume {v + 1}: {w}" not in warnings]
    values = [part.value for part in parts]
    m = len(parts)
    what = f"{m} volumes over {len(set(map(str, values)))} {label}" if key else f"{m} repeated volumes"
    return Loadable(f"{series_name(first)} ({qualifier + ', ' if qualifier else ''}{what})",
                    [i for part in parts for i in part.instances], plugin,
                    CONF_SEQUENCE if not warnings else CONF_DOUBTFUL, warnings,
                    series_uid=first.get("SeriesInstanceUID", ""), payload=SequencePayload(key, unit, tuple(parts)))


def varying_attribute(group: list[Row]) -> tuple[str | None, str, str]:
    """(keyword, label in the plural, unit) of the first VARYING attribute whose values differ across ``group``
    (the images of one position, one per volume); (None, "", "") when none does."""
    for key, label, unit in VARYING:
        values = [str(i.get(key)) for i in group]
        if len(set(values)) > 1:
            return key, label, unit
    return None, "", ""


def sortable(value: Any) -> tuple:
    """A sort key of an attribute value: numbers by value, then text, None last."""
    if value is None:
        return (1, 0.0, "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (0, 0.0, str(value))


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """One Volume per time point/echo/b-value, in order, each with the value that sets it apart in ``extra``
    (``key``, ``value``, ``unit``; diffusion adds ``bvalue`` and ``gradient``). Progress counts the slices of
    all volumes. Raises ``LoadError`` (``cancel`` set: checked between slices) or ``PixelError``."""
    payload = loadable.payload
    if not isinstance(payload, SequencePayload):
        raise TypeError(f"{loadable.name}: not a sequence loadable")
    volumes = []
    total = len(loadable.instances)
    done = 0
    check_cancel(cancel, loadable.name, 0, total)
    for part in payload.parts:
        volume = read_volume(db, part.instances, part.geometry, name=loadable.name, warnings=loadable.warnings,
                             progress=ticker(progress, cancel, loadable.name, total, offset=done),
                             regularize=options.regularize)
        done += len(part.instances)
        volume.extra = volume_extra(payload, part)
        volumes.append(volume)
    return volumes


def volume_extra(payload: SequencePayload, part: SequencePart) -> dict[str, Any]:
    """A sequence volume's ``Volume.extra``: ``key``, ``value``, ``unit``; a diffusion volume adds ``bvalue``
    (s/mm²) and ``gradient`` ((3,) LPS unit vector, or None for b = 0), from its first row."""
    extra: dict[str, Any] = {"key": payload.key, "value": part.value, "unit": payload.unit}
    b = part.instances[0].get("DiffusionBValue")
    if b is not None:
        extra["bvalue"] = float(b)
        extra["gradient"] = vector(part.instances[0].get("DiffusionGradientOrientation"), 3)
    return extra
