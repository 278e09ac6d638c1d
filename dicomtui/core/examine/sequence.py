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

from .four_d import sequence_loadable, sortable, varying_attribute, volume_extra
from .geometry import (
    Row,
    check_stack,
    orientation,
    same_position_labels,
    same_position_tolerance,
    slice_normal,
    vector,
)
from .plugin import (
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    SequencePayload,
    check_cancel,
    image_kind,
    is_mosaic,
    ticker,
)
from .stack import read_volume, with_frame_geometry

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "sequence"


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


