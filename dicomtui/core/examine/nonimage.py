"""Objects without pixels (structured reports, RT plans, RT structure sets until they are rasterised, waveforms,
presentation states, encapsulated documents, images whose Pixel Data is absent): listed, each kind with what it is,
so that the user sees why a series gives no volume — and never selected, so that a default load never fails on
one. Loading one says what it is ("a structured report: no image to load").

What an object is comes from its SOP Class UID (PS3.4 Annex B.5 names), else its Modality (PS3.3 C.7.3.1.1.1).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..errors import LoadError
from .plugin import (
    CONF_NO_PIXELS,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    Row,
    series_name,
)

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "nonimage"
_STORAGE = "1.2.840.10008.5.1.4.1.1."
# SOP Class UID prefixes (after 1.2.840.10008.5.1.4.1.1.), most specific first → what such an object is
_BY_CLASS = [("88.59", "a key object selection"), ("88.", "a structured report"), ("481.3", "an RT structure set "
             "(not rasterised)"), ("481.5", "an RT plan"), ("481.8", "an RT ion plan"), ("481.4", "an RT treatment "
             "record"), ("481.6", "an RT treatment record"), ("481.7", "an RT treatment record"),
             ("481.9", "an RT treatment record"), ("9.", "a waveform"), ("11.", "a presentation state"),
             ("104.", "an encapsulated document"), ("66.1", "a spatial registration"), ("66.3", "a spatial "
             "registration"), ("66.2", "a spatial fiducials object"), ("66.4", "a segmentation without pixel data"),
             ("66", "a raw data object"), ("481.2", "an RT dose without a dose grid")]
_BY_MODALITY = {"SR": "a structured report", "KO": "a key object selection", "PR": "a presentation state",
                "RTPLAN": "an RT plan", "RTSTRUCT": "an RT structure set (not rasterised)",
                "RTRECORD": "an RT treatment record", "ECG": "a waveform", "HD": "a waveform", "AU": "a waveform",
                "DOC": "an encapsulated document", "REG": "a spatial registration", "FID": "a spatial fiducials object"}
_LOADED_ELSEWHERE = {_STORAGE + "481.3"}  # RT Structure Sets: the rtstruct plugin rasterises them


def what_it_is(row: Row) -> str:
    """What an instance without pixels is, as a noun phrase ("a structured report", "an RT plan", "an image
    without Pixel Data"…), from its SOPClassUID, else its Modality, else whether it describes an image."""
    sop_class = row.get("SOPClassUID") or ""
    if sop_class.startswith(_STORAGE):
        rest = sop_class[len(_STORAGE):]
        for prefix, what in _BY_CLASS:
            if rest == prefix or rest.startswith(prefix if prefix.endswith(".") else prefix + "."):
                return what
    if (row.get("Modality") or "") in _BY_MODALITY:
        return _BY_MODALITY[row["Modality"]]
    if row.get("Rows"):
        return "an image without Pixel Data"
    return "an object without pixel data"


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per kind of object without pixels in the series (never selected: CONF_NO_PIXELS); its
    warning says what it is and that it holds no image."""
    kinds: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("has_pixels") and row.get("SOPClassUID") not in _LOADED_ELSEWHERE:
            kinds[what_it_is(row)].append(row)
    out = []
    for what, members in kinds.items():
        count = f"{len(members)} instances: " if len(members) > 1 else ""
        out.append(Loadable(f"{series_name(members[0])} ({what.split(' ', 1)[1]})", members, NAME, CONF_NO_PIXELS,
                            [f"{count}{what}: no image to load"], series_uid=members[0].get("SeriesInstanceUID", "")))
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """Never a volume: raises ``LoadError`` saying what the objects are ("…: a structured report: no image to
    load")."""
    raise LoadError(f"{loadable.name}: {what_it_is(loadable.instances[0])}: no image to load")
