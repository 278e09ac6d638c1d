"""Sequence (4D) plugin: a series whose images repeat every slice position — time points, echoes, b-values —
becomes one multi-volume loadable, beside the scalar interpretation.

Volumes are made the way dcm2niix does: group the images by position along the slice normal; when every
position holds the same number m ≥ 2 of images, there are m volumes, told apart (and ordered) by the first
attribute whose values differ. Diffusion b-values and gradient directions are carried with each volume.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from . import scalar
from .loadable import Loadable

NAME = "sequence"
POSITION_TOLERANCE_MM = 0.01
# (attribute, label, unit): the first that tells the volumes apart names the sequence
VARYING = [("TemporalPositionIdentifier", "time points", ""), ("TriggerTime", "trigger times", "ms"),
           ("EchoTime", "echo times", "ms"), ("DiffusionBValue", "b-values", "s/mm²"),
           ("DiffusionGradientOrientation", "diffusion directions", ""), ("AcquisitionNumber", "acquisitions", ""),
           ("ContentTime", "content times", ""), ("AcquisitionTime", "acquisition times", "")]
CONF = 0.6  # above the scalar reading, whose all-files loadable warns about repeated positions


def examine(instances: list[dict[str, Any]], split_by_time: bool = False) -> list[Loadable]:
    images = [i for i in instances if i.get("has_pixels") and (i.get("NumberOfFrames") or 1) <= 1]
    if len(images) < 4:
        return []
    orientation = scalar.vector(images[0].get("ImageOrientationPatient"), 6)
    positions = [scalar.vector(i.get("ImagePositionPatient"), 3) for i in images]
    if orientation is None or any(p is None for p in positions):
        return []
    normal = np.cross(orientation[:3], orientation[3:])
    by_position: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for inst, pos in zip(images, positions):
        by_position[int(round(float(np.dot(pos, normal)) / POSITION_TOLERANCE_MM))].append(inst)
    counts = {len(group) for group in by_position.values()}
    if len(counts) != 1 or (m := counts.pop()) < 2:
        return []
    groups = [by_position[key] for key in sorted(by_position)]
    key, label, unit = _varying(groups[0])
    for group in groups:
        group.sort(key=lambda i: (_sortable(i.get(key)) if key else 0, i.get("InstanceNumber") or 0))
    volumes = [[group[v] for group in groups] for v in range(m)]
    first = instances[0]
    name = f"{first.get('SeriesNumber') if first.get('SeriesNumber') is not None else '?'}: " \
           f"{first.get('SeriesDescription') or 'series'}"
    warnings: list[str] = []
    geometries = []
    for v, members in enumerate(volumes):
        ordered, vol_warnings, geometry = scalar.check_geometry(members)
        volumes[v] = ordered
        geometries.append(geometry)
        warnings += [f"volume {v + 1}: {w}" for w in vol_warnings if f"volume {v + 1}: {w}" not in warnings]
    values = [volume[0].get(key) if key else None for volume in volumes]
    what = f"{m} volumes over {len(set(map(str, values)))} {label}" if key else f"{m} repeated volumes"
    loadable = Loadable(f"{name} ({what})", [i for volume in volumes for i in volume], NAME,
                        CONF if not warnings else scalar.CONF_DOUBTFUL, warnings,
                        series_uid=first.get("SeriesInstanceUID", ""),
                        details={"volumes": volumes, "geometries": geometries, "key": key, "unit": unit,
                                 "values": values})
    return [loadable]


def _varying(group: list[dict[str, Any]]) -> tuple[str | None, str, str]:
    for key, label, unit in VARYING:
        values = [str(i.get(key)) for i in group]
        if len(set(values)) > 1:
            return key, label, unit
    return None, "", ""


def _sortable(value: Any) -> tuple:
    if value is None:
        return (1, 0.0, "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (0, 0.0, str(value))


def load(db, loadable: Loadable, progress=None, regularize: bool = False):
    """One Volume per time point/echo/b-value, each with the value that sets it apart in ``extra``."""
    details = loadable.details
    volumes = []
    total = len(loadable.instances)
    done = 0
    for members, geometry, value in zip(details["volumes"], details["geometries"], details["values"]):
        part = Loadable(loadable.name, members, scalar.NAME, loadable.confidence, loadable.warnings,
                        series_uid=loadable.series_uid, details={"geometry": geometry})

        def step(n: int, _total: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + n, total)

        volume = scalar.load(db, part, step, regularize=regularize)
        done += len(members)
        volume.extra = {"key": details["key"], "value": value, "unit": details["unit"]}
        b = members[0].get("DiffusionBValue")
        if b is not None:
            volume.extra["bvalue"] = float(b)
            volume.extra["gradient"] = scalar.vector(members[0].get("DiffusionGradientOrientation"), 3)
        volumes.append(volume)
    return volumes
