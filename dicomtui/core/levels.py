"""The levels of the DICOM information model (PS3.3 A.1.2, PS3.4 C.6.1.1) and the columns the faces show for each.

One column model per level: each column is a PS3.3 keyword (or a count we keep, such as ``num_instances``), a
heading for the browser, a label for ``ls``, whether the search box matches it, and how its value is written.
The search-box SQL (``database.filters``), ``dicomtui ls`` and the browser all read it. Principle: what a face
shows, the search box finds (a test checks every shown column is searchable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple


class Level(StrEnum):
    """Patient, study, series or instance; the value is the singular word the database methods take."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"

    @property
    def plural(self) -> str:
        """``patients``, ``studies``, ``series``, ``instances``: how ``ls`` and the browser titles say it."""
        return _PLURAL[self]

    @property
    def table(self) -> str:
        """The database table holding the rows of this level."""
        return _TABLE[self]

    @property
    def uid_column(self) -> str:
        """The attribute that names a row of this level: PatientID for a patient (PS3.3 C.7.1.1), else its UID."""
        return _UID_COLUMN[self]

    @property
    def qr_level(self) -> str:
        """The Query/Retrieve Level (0008,0052) value of this level: PATIENT, STUDY, SERIES, IMAGE (PS3.4 C.6.1.1)."""
        return "IMAGE" if self is Level.INSTANCE else self.value.upper()

    @classmethod
    def parse(cls, text: str) -> Level:
        """A level from its singular or plural spelling (``"studies"`` → STUDY; ``"image"``, the Q/R name, is an
        instance); ValueError for anything else."""
        for level in cls:
            if text in (level.value, _PLURAL[level]) or (level is Level.INSTANCE and text == "image"):
                return level
        raise ValueError(f"level must be one of {', '.join(lv.plural for lv in cls)}, not {text!r}")


_PLURAL = {Level.PATIENT: "patients", Level.STUDY: "studies", Level.SERIES: "series", Level.INSTANCE: "instances"}
_TABLE = dict(_PLURAL)
_UID_COLUMN = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID", Level.SERIES: "SeriesInstanceUID",
               Level.INSTANCE: "SOPInstanceUID"}

class Item(NamedTuple):
    """One selected row: its level and its id in that level's table. A plain ``(level, id)`` tuple is the same to
    every database method that takes items."""

    level: Level
    id: int


# Levels from the top down (the order of the browser panes and of a C-FIND hierarchy, PS3.4 C.4.1.3).
HIERARCHY = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE)


class ImportMode(StrEnum):
    """How an import keeps files: a copy in storage (ours to delete) or a link to where they are (never touched)."""

    COPY = "copy"
    LINK = "link"


class Format(StrEnum):
    """How a column's value is written in a cell."""

    TEXT = "text"  # str(value)
    DATE = "date"  # DA (PS3.5 6.2) YYYYMMDD; the browser writes YYYY-MM-DD
    STORED = "stored"  # the instance's `stored` flag: "copy" (in storage) or "link" (elsewhere)


@dataclass(frozen=True)
class Column:
    """One column of a level.

    ``keyword``: a PS3.3 keyword or one of our kept columns (``num_*``, ``modalities``, ``image_size``,
    ``path``, ``stored``, ``file_size``, ``last_study_date``); the key of the row dicts the database returns.
    ``owner``: the level whose table holds it (a study row shows its patient's PatientName).
    ``heading``: the browser's heading; ``label``: the heading of ``ls`` (the keyword unless shorter words help).
    """

    keyword: str
    owner: Level
    heading: str
    label: str = ""
    searchable: bool = True
    format: Format = Format.TEXT

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.keyword)


def _c(keyword: str, owner: Level, heading: str, label: str = "", fmt: Format = Format.TEXT) -> Column:
    return Column(keyword, owner, heading, label, True, fmt)


_P, _ST, _SE, _I = Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE
_PATIENT_NAME = _c("PatientName", _P, "Patient name")
_PATIENT_ID = _c("PatientID", _P, "Patient ID")

# Every column of each level, in the order of the search (the union of what the faces show, plus
# ReferringPhysicianName, searched since the first release though no face shows it).
COLUMNS: dict[Level, tuple[Column, ...]] = {
    Level.PATIENT: (
        _PATIENT_NAME, _PATIENT_ID, _c("PatientBirthDate", _P, "Birth date", fmt=Format.DATE),
        _c("PatientSex", _P, "Sex"), _c("num_studies", _P, "Studies", "studies"),
        _c("last_study_date", _P, "Last study", "last study", Format.DATE),
    ),
    Level.STUDY: (
        _c("StudyDate", _ST, "Date", fmt=Format.DATE), _c("StudyTime", _ST, "Time"),
        _c("StudyDescription", _ST, "Description"), _c("AccessionNumber", _ST, "Accession"),
        _c("modalities", _ST, "Modalities"), _c("ReferringPhysicianName", _ST, "Referring physician"),
        _c("num_series", _ST, "Series", "series"), _c("num_instances", _ST, "Images", "instances"),
        Column("PatientName", _P, "Patient"), _PATIENT_ID, _c("StudyInstanceUID", _ST, "Study UID"),
    ),
    Level.SERIES: (
        _c("SeriesNumber", _SE, "#"), _c("Modality", _SE, "Modality"), _c("SeriesDescription", _SE, "Description"),
        _c("BodyPartExamined", _SE, "Body part"), _c("num_instances", _SE, "Images", "instances"),
        _c("image_size", _SE, "Size", "size"), _c("SeriesDate", _SE, "Date", fmt=Format.DATE),
        _c("SeriesInstanceUID", _SE, "Series UID"),
    ),
    Level.INSTANCE: (
        _c("InstanceNumber", _I, "#"), _c("SOPClassUID", _I, "SOP class"), _c("SOPInstanceUID", _I, "SOP UID"),
        _c("path", _I, "File"), _c("stored", _I, "Copied", "copied", Format.STORED),
        _c("file_size", _I, "Bytes"), _c("TransferSyntaxUID", _I, "Transfer syntax"),
    ),
}

# What each face shows, in its order (keywords of COLUMNS). `ls` adds the UID a user pipes to the next command
# and, for studies, the patient; the browser shows the patient's name beside a study.
LS_COLUMNS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"),
    Level.STUDY: ("PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
                  "modalities", "num_series", "num_instances", "StudyInstanceUID"),
    Level.SERIES: ("SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances",
                   "image_size", "SeriesDate", "SeriesInstanceUID"),
    Level.INSTANCE: ("InstanceNumber", "SOPInstanceUID", "SOPClassUID", "stored", "file_size", "TransferSyntaxUID",
                     "path"),
}
BROWSER_COLUMNS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"),
    Level.STUDY: ("StudyDate", "StudyDescription", "modalities", "AccessionNumber", "PatientName", "num_series",
                  "num_instances"),
    Level.SERIES: ("SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances",
                   "image_size", "SeriesDate"),
}

_BY_KEYWORD = {level: {c.keyword: c for c in columns} for level, columns in COLUMNS.items()}


def column(level: Level | str, keyword: str) -> Column:
    """The column ``keyword`` of ``level``; KeyError when the level has no such column."""
    return _BY_KEYWORD[Level(level)][keyword]


def searchable(level: Level | str) -> tuple[Column, ...]:
    """The columns the search box of ``level`` matches."""
    return tuple(c for c in COLUMNS[Level(level)] if c.searchable)


def browser_columns(level: Level | str) -> list[tuple[str, str]]:
    """(heading, keyword) pairs of a browser pane, as ``MarkTable`` takes them."""
    return [(column(level, k).heading, k) for k in BROWSER_COLUMNS[Level(level)]]


# Bound once: an enum member looked up on its class costs ~75 ns, and a browser pane formats every cell of up
# to 2,000 rows per keystroke (4.9 ms with the lookups, 2.5 ms without; bench/tui_bench.py).
_STORED, _DATE = Format.STORED, Format.DATE


def format_value(col: Column, value: Any, iso_dates: bool = True) -> str:
    """The text of a cell: "" for NULL; DA dates as YYYY-MM-DD when ``iso_dates`` (the browser; ``ls`` keeps the
    stored YYYYMMDD so that its output stays what DICOM tools take); the stored flag as copy / link."""
    if value is None:
        return ""
    fmt = col.format
    if fmt is _STORED:
        return "copy" if value else "link"
    text = str(value)
    if iso_dates and fmt is _DATE and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def series_label(row: Mapping[str, Any]) -> str:
    """"3 T1 axial": SeriesNumber and SeriesDescription of a series row or C-FIND answer, either may be absent
    (then the other alone; "" when both are)."""
    number = row.get("SeriesNumber")
    parts = ["" if number is None else str(number), row.get("SeriesDescription") or ""]
    return " ".join(p for p in parts if p)
