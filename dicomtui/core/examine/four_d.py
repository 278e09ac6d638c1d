"""What every 4D loadable shares, whichever plugin finds it (classic images repeating each position: sequence.py;
the frames of an enhanced multi-frame file: multiframe.py): which attribute tells the volumes apart and how the
loadable is named after it, its confidence and warnings, and the ``Volume.extra`` of each volume at load.
"""

from __future__ import annotations

from typing import Any

from .geometry import Row, StackCheck, vector
from .plugin import CONF_DOUBTFUL, CONF_SEQUENCE, FrameRef, Loadable, SequencePart, SequencePayload, series_name

# (attribute, label, unit): the first that tells the volumes apart names the sequence
VARYING = [("TemporalPositionIdentifier", "time points", ""), ("TriggerTime", "trigger times", "ms"),
           ("EchoTime", "echo times", "ms"), ("DiffusionBValue", "b-values", "s/mm²"),
           ("DiffusionGradientOrientation", "diffusion directions", ""), ("AcquisitionNumber", "acquisitions", ""),
           ("ContentTime", "content times", ""), ("AcquisitionTime", "acquisition times", "")]


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




def volume_extra(payload: SequencePayload, part: SequencePart) -> dict[str, Any]:
    """A sequence volume's ``Volume.extra``: ``key``, ``value``, ``unit``; a diffusion volume adds ``bvalue``
    (s/mm²) and ``gradient`` ((3,) LPS unit vector, or None for b = 0), from its first row."""
    extra: dict[str, Any] = {"key": payload.key, "value": part.value, "unit": payload.unit}
    b = part.instances[0].get("DiffusionBValue")
    if b is not None:
        extra["bvalue"] = float(b)
        extra["gradient"] = vector(part.instances[0].get("DiffusionGradientOrientation"), 3)
    return extra
