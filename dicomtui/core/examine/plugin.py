"""The examine plugin contract: what a plugin offers (``Loadable``), the options it takes, how confident it may
be, and the two calls every plugin answers (``Plugin.examine`` from stored rows, ``Plugin.load`` into volumes).

Examine never opens a file: it reads the instance rows stored at import. Load reads pixels and returns every
volume of the loadable as a list (one for a stack, several for a sequence). Both faces reach plugins only
through ``dicomtui.core.examine`` (``examine_series``, ``load``, ``load_loadables``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LoadError
from .geometry import Row, StackGeometry

if TYPE_CHECKING:
    from ..volume import Volume

__all__ = ["CONF_ALL", "CONF_CANNOT_LOAD", "CONF_DOUBTFUL", "CONF_DOUBTFUL_PART", "CONF_IMAGES", "CONF_NO_PIXELS",
           "CONF_PREFERRED",
           "CONF_REPEATS_STACKED", "CONF_SEQUENCE", "CONF_SUB", "EXAMINE_DEFAULTS", "LOAD_DEFAULTS", "ExamineOptions",
           "FrameRef", "FramesPayload", "LoadError", "LoadOptions", "Loadable", "Payload", "Plugin", "Progress",
           "RT_DOSE_STORAGE", "ReferencedGrid", "Row",
           "SequencePart", "SequencePayload", "StackPayload", "check_cancel", "image_kind", "is_mosaic", "is_rt_dose",
           "series_name",
           "ticker", "unpackable_mosaic"]

# Confidences (0-1): per series, the loadables with the highest one are selected by default (``select``), so
# only their order matters. From the bottom up:
CONF_CANNOT_LOAD = 0.05  # images that cannot form one volume (sizes, grey and colour): listed, never selected
CONF_NO_PIXELS = 0.1  # nothing to show as a volume, but offered so that the user sees why; never selected
CONF_REPEATS_STACKED = 0.35  # repeated positions stacked as one volume: offered, never preferred to its repeats
CONF_DOUBTFUL_PART = 0.38  # one volume of a 4D reading with warnings, offered alone: the 4D reading (0.4) is
#                            preferred, not loaded beside it (both have warnings, so CONF_DOUBTFUL would tie)
CONF_DOUBTFUL = 0.4  # it has warnings: below every clean reading, so a clean one wins when there is one
CONF_IMAGES = 0.42  # images one by one (frames_view: sizes differ, or projections without a place): above any
#                     stack with warnings, below every clean volume (a clean size of a mixed series wins)
CONF_SUB = 0.45  # part of a clean series (one acquisition, one orientation): the whole series is preferred
CONF_ALL = 0.5  # the whole series, clean: the plain reading
CONF_PREFERRED = 0.55  # a clean part of a doubtful series (without its localizer, one acquisition): chosen
#                        instead of the doubtful whole (0.4), and above CONF_ALL so it is not tied with a clean
#                        whole-file reading of another plugin in the same series
CONF_SEQUENCE = 0.6  # a clean 4D reading (time points, echoes, b-values): above the scalar reading, whose
#                      whole-series loadable warns about repeated positions, and above its clean parts (0.55)

Progress = Callable[[int, int], None]
"""``progress(done, total)``: slices (or frames) read so far out of all of the loadable's."""


@dataclass(frozen=True)
class ExamineOptions:
    """How to examine: ``split_by_time`` also offers one loadable per ContentTime / TriggerTime value."""

    split_by_time: bool = False


ReferencedGrid = Callable[[str], "Volume | None"]
"""``referenced_grid(series_uid)``: the image Volume of a series of the database by SeriesInstanceUID (its default
loadable, loaded; cached per load), or None when the database does not hold it or it has nothing to load."""


@dataclass(frozen=True)
class LoadOptions:
    """How to load: ``regularize`` resamples an unevenly spaced, gapped or tilted stack onto a regular grid
    (off by default: a resampled volume is not the acquired data, and says so). ``referenced_grid`` serves the
    plugins of derived objects (SEG, RTSTRUCT, RT Dose) the image series they refer to, so that no plugin imports
    another; ``examine.load`` supplies one when it is None."""

    regularize: bool = False
    referenced_grid: ReferencedGrid | None = None


@dataclass(frozen=True)
class StackPayload:
    """What a stack load needs beyond the rows: their checked geometry (None: stacked 1 mm apart, unplaced)."""

    geometry: StackGeometry | None


@dataclass(frozen=True)
class FrameRef:
    """Where a frame row's pixels are: frame ``index`` (0-based) of its file, which holds ``count`` frames."""

    index: int
    count: int


@dataclass(frozen=True)
class FramesPayload(StackPayload):
    """A stack of frames of multi-frame files: one ``FrameRef`` per row of the loadable, in the same order."""

    frames: tuple[FrameRef, ...] = ()


@dataclass(frozen=True)
class SequencePart:
    """One volume of a sequence: its rows in stacking order, their geometry, and the value that sets it apart
    (of the sequence's ``key``; None when no attribute does); frames of a multi-frame file: one ``FrameRef`` per
    row, in the same order (empty for single-frame rows)."""

    instances: list[Row]
    geometry: StackGeometry | None
    value: Any
    frames: tuple[FrameRef, ...] = ()


@dataclass(frozen=True)
class SequencePayload:
    """A 4D loadable: the attribute the volumes differ by (None: repeats with nothing to tell them apart), its
    unit, and the volumes in order."""

    key: str | None
    unit: str
    parts: tuple[SequencePart, ...]


EXAMINE_DEFAULTS = ExamineOptions()
LOAD_DEFAULTS = LoadOptions()

Payload = StackPayload | FramesPayload | SequencePayload


@dataclass
class Loadable:
    """One interpretation of (part of) a series: its instance rows (sorted as they will be stacked), the plugin
    that proposed it, how confident it is (0-1, see the CONF_ constants), the warnings a user should read first,
    whether it is selected by default, and what the plugin needs at load time (``payload``)."""

    name: str
    instances: list[Row]
    plugin: str
    confidence: float
    warnings: list[str] = field(default_factory=list)
    selected: bool = False
    series_uid: str = ""
    payload: Payload | None = None
    notes: list[str] = field(default_factory=list)  # facts to show beside it, not doubts (a PET's SUV factors)

    @property
    def files(self) -> frozenset[str]:
        """The SOPInstanceUIDs (``uid#frame`` for frames) it reads: two loadables with the same are one choice."""
        return frozenset(i["SOPInstanceUID"] for i in self.instances)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "confidence": round(self.confidence, 3),
                "selected": self.selected, "warnings": list(self.warnings), "instances": len(self.instances),
                "series_uid": self.series_uid, "notes": list(self.notes)}


def image_kind(row: Row) -> str:
    """"512x512 MONOCHROME2": what must be equal for images to share one array (size; grey, colour or palette)."""
    return f"{row.get('Columns')}x{row.get('Rows')} {row.get('PhotometricInterpretation') or 'MONOCHROME2'}"


RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"  # PS3.4 B.5


def is_rt_dose(row: Row) -> bool:
    """An RT Dose instance: read by the rtdose plugin only (its frames lie at GridFrameOffsetVector, its values
    need DoseGridScaling), never as plain images."""
    return row.get("SOPClassUID") == RT_DOSE_STORAGE


def is_mosaic(row: Row) -> bool:
    """A Siemens mosaic: ImageType holds MOSAIC (the tiles of one volume side by side in one picture)."""
    return "MOSAIC" in str(row.get("ImageType") or "").upper().split("\\")


def unpackable_mosaic(row: Row) -> bool:
    """A mosaic whose tiles frames.py located at import (from the CSA header): the mosaic plugin reads it."""
    return is_mosaic(row) and '"mt"' in str(row.get("frames") or "")


def series_name(row: Row) -> str:
    """"SeriesNumber: SeriesDescription" of an instance row ("?" and "series" when absent): a loadable's name."""
    number = row.get("SeriesNumber")
    return f"{number if number is not None else '?'}: {row.get('SeriesDescription') or 'series'}"


class Plugin(Protocol):
    """One way of reading series as volumes. A module with these three names is a plugin (scalar, multiframe,
    sequence); ``dicomtui.core.examine.PLUGINS`` lists them by name."""

    name: str

    def examine(self, rows: list[Row], options: ExamineOptions = ...) -> list[Loadable]:
        """The loadables of one series, from its stored instance rows (no file is opened); [] when none."""
        ...

    def load(self, db: Any, loadable: Loadable, progress: Progress | None = ...,
             cancel: threading.Event | None = ..., options: LoadOptions = ...) -> list[Volume]:
        """The volumes of a loadable this plugin proposed, in order. Raises ``LoadError`` (pixels unreadable,
        sizes differ, or ``cancel`` set: checked between slices, nothing partial is returned)."""
        ...


def check_cancel(cancel: threading.Event | None, name: str, done: int, total: int) -> None:
    """Raise ``LoadError`` when ``cancel`` is set: a cancelled load returns nothing (half a volume is no use);
    the face that set the event knows why and need not show the sentence."""
    if cancel is not None and cancel.is_set():
        raise LoadError(f"{name}: loading cancelled after {done} of {total} slices")


def ticker(progress: Progress | None, cancel: threading.Event | None, name: str, total: int,
           offset: int = 0) -> Progress | None:
    """The ``progress`` to hand to a reader of one part (starting at slice ``offset`` of the loadable's
    ``total``): it reports ``progress(offset + done, total)`` and, first, raises ``LoadError`` when ``cancel`` is
    set — so a cancel is noticed between slices. None when there is neither to serve."""
    if progress is None and cancel is None:
        return None

    def tick(done: int, _part_total: int) -> None:
        check_cancel(cancel, name, offset + done, total)
        if progress is not None:
            progress(offset + done, total)

    return tick
