"""The confidence scale of examine in words: what a loadable's number means, and why a loadable is not loaded by
default (``select`` takes, per series, the most confident readings). For the examine screen and ``examine``."""

from __future__ import annotations

from .plugin import (
    CONF_ALL,
    CONF_CANNOT_LOAD,
    CONF_DOUBTFUL,
    CONF_DOUBTFUL_PART,
    CONF_IMAGES,
    CONF_NO_PIXELS,
    CONF_PREFERRED,
    CONF_REPEATS_STACKED,
    CONF_SEQUENCE,
    CONF_SUB,
    Loadable,
)

__all__ = ["SCALE", "confidence_sentence", "why_not_selected"]

# (the confidence, in a few words, in a sentence), highest first: the CONF_ constants of plugin.py
MEANINGS = [
    (CONF_SEQUENCE, "4D", "a clean 4D reading (time points, echoes or b-values), preferred to the 3D readings"),
    (CONF_PREFERRED, "clean part of a doubtful series",
     "a clean part of a doubtful series (e.g. without its localizer), preferred to the whole"),
    (CONF_ALL, "clean whole series", "the whole series as one clean volume: the plain reading"),
    (CONF_SUB, "part of a clean series", "a part of a clean series; the whole series is preferred"),
    (CONF_IMAGES, "images one by one",
     "every image shown alone at its own size (sizes differ, or projections with no place to stack them by); "
     "a clean volume of the series is preferred, a volume with warnings is not"),
    (CONF_DOUBTFUL, "with warnings", "a reading with warnings; any clean reading of the series is preferred"),
    (CONF_DOUBTFUL_PART, "a volume of a 4D reading with warnings",
     "one volume of a 4D reading with warnings, offered alone; the 4D reading is preferred"),
    (CONF_REPEATS_STACKED, "repeats stacked",
     "repeated positions stacked as one volume; its parts, one per repetition, are preferred"),
    (CONF_NO_PIXELS, "no image", "nothing to show as a volume; listed so that you see why; never loaded by default"),
    (CONF_CANNOT_LOAD, "cannot be one volume",
     "images of several sizes, or grey and colour, that cannot form one volume; its parts are offered instead"),
]
SCALE = ("Confidence ranks the readings of one series, the highest loaded by default: "
         + ", ".join(f"{c:.2f} {short}" for c, short, _ in MEANINGS) + ".")


def confidence_sentence(confidence: float) -> str:
    """"0.50: the whole series as one clean volume: the plain reading" — the meaning of the nearest step of the
    scale (plugins use the CONF_ constants; a value between two steps takes the one below it)."""
    below = [text for c, _, text in MEANINGS if c <= confidence + 1e-9]
    return f"{confidence:.2f}: {below[0] if below else MEANINGS[-1][2]}"


def why_not_selected(item: Loadable, loadables: list[Loadable]) -> str:
    """Why ``item`` is (not) loaded by default, from the other readings of its series in ``loadables``: the
    reading preferred to it and its confidence, or the same files already chosen (as ``select`` decides)."""
    same = [other for other in loadables if other.series_uid == item.series_uid and other is not item]
    if item.selected:
        if not same:
            return "Loaded by default: the only reading of its series."
        return f"Loaded by default: the most confident of the {len(same) + 1} readings of its series."
    better = [other for other in same if other.selected and other.confidence > item.confidence]
    if better:
        best = max(better, key=lambda other: other.confidence)
        return (f"Not loaded by default: {best.name} ({best.confidence:.2f}) is preferred to it"
                f" ({item.confidence:.2f}). Space selects it too.")
    twin = [other for other in same if other.selected and other.files == item.files]
    if twin:
        return f"Not loaded by default: {twin[0].name} reads the same images. Space selects it too."
    return "Not loaded by default. Space selects it."
