"""Where each exported instance goes: the plan of an export, made from the database rows (no file is opened).

``tree``: ``Patient/Study/Series/NNNN.dcm`` — folder names from the data (``PatientID_PatientName``,
``StudyDate_StudyDescription``, ``SeriesNumber_SeriesDescription``), each made safe by
:func:`dicomtui.core.naming.safe_name`; two studies (or series, patients) whose names come out equal get ``_2``,
``_3`` … in the order of the plan, so two runs on the same data give the same names. ``flat``: one folder,
``PatientID_SeriesNumber_SeriesDescription_NNNN.dcm``. ``NNNN`` counts the instances of one series from 1, in
InstanceNumber order (instances without one last, then in import order), at least 4 digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..database import DicomDatabase
from ..levels import Level
from ..naming import safe_name

__all__ = ["ExportFile", "Layout", "plan_export"]


class Layout(StrEnum):
    """How the exported files are named (see the module docstring)."""

    TREE = "tree"
    FLAT = "flat"


@dataclass(frozen=True)
class ExportFile:
    """One instance to export: ``source`` (absolute: storage for copied files, the user's path for linked ones),
    ``name`` (relative to the export folder, ``/``-separated), its SOP Instance UID, whether ``stored`` (copied
    into the database) and the transfer syntax the database recorded."""

    source: Path
    name: str
    sop_instance_uid: str
    stored: bool
    transfer_syntax: str = ""
    sop_class_uid: str = ""


_COLUMNS = "series_fk, InstanceNumber, SOPInstanceUID, SOPClassUID, TransferSyntaxUID, path, stored"


def plan_export(db: DicomDatabase, items: Iterable[tuple[str, int]], layout: Layout | str = Layout.TREE
                ) -> list[ExportFile]:
    """The files of the instances under ``items`` ((level, row id) pairs: patients, studies, series, instances),
    each once, series by series in the order of the items, and the name each gets in ``layout``."""
    layout = Layout(layout)
    rows = db.instance_rows(list(items), _COLUMNS)
    by_series: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_series.setdefault(row["series_fk"], []).append(row)
    namer = _Namer(db, layout)
    plan: list[ExportFile] = []
    for series_id, instances in by_series.items():
        instances.sort(key=lambda r: (r["InstanceNumber"] is None, r["InstanceNumber"] or 0, r["id"]))
        prefix = namer.series_prefix(series_id)
        width = max(4, len(str(len(instances))))
        for n, row in enumerate(instances, 1):
            stored = bool(row["stored"])
            plan.append(ExportFile(db.abspath(row["path"], stored), f"{prefix}{n:0{width}d}.dcm",
                                   row["SOPInstanceUID"], stored, row["TransferSyntaxUID"] or "",
                                   row["SOPClassUID"] or ""))
    return plan


def _joined(*parts: Any, fallback: str) -> str:
    return "_".join(p for p in (safe_name(part) for part in parts) if p) or fallback


class _Namer:
    """Folder (tree) or file-name prefix (flat) of each series, unique among its siblings."""

    def __init__(self, db: DicomDatabase, layout: Layout) -> None:
        self.db, self.layout = db, layout
        self.taken: dict[tuple[str, str], str] = {}  # (parent, name) → the UID that has it
        self.named: dict[tuple[str, str], str] = {}  # (level, UID) → its unique relative name

    def unique(self, level: str, uid: str, parent: str, name: str) -> str:
        """``parent/name``, or ``parent/name_2`` … when another UID has that name under ``parent``."""
        if (level, uid) in self.named:
            return self.named[(level, uid)]
        candidate, n = name, 1
        while self.taken.get((parent, candidate.lower()), uid) != uid:  # case-folded: macOS and Windows
            n += 1
            candidate = f"{name}_{n}"
        self.taken[(parent, candidate.lower())] = uid
        self.named[(level, uid)] = path = f"{parent}{candidate}"
        return path

    def series_prefix(self, series_id: int) -> str:
        series = self.db.get(Level.SERIES, series_id) or {}
        study = self.db.get(Level.STUDY, series.get("study_fk", -1)) or {}
        patient = self.db.get(Level.PATIENT, study.get("patient_fk", -1)) or {}
        series_name = _joined(series.get("SeriesNumber"), series.get("SeriesDescription"),
                              fallback=safe_name(series.get("Modality"), "series"))
        if self.layout is Layout.FLAT:
            name = _joined(patient.get("PatientID"), series_name, fallback="series")
            return self.unique("series", series.get("SeriesInstanceUID", ""), "", name) + "_"
        p = self.unique("patient", str(patient.get("id")), "",
                        _joined(patient.get("PatientID"), patient.get("PatientName"), fallback="patient"))
        st = self.unique("study", study.get("StudyInstanceUID", ""), p + "/",
                         _joined(study.get("StudyDate"), study.get("StudyDescription"), fallback="study"))
        se = self.unique("series", series.get("SeriesInstanceUID", ""), st + "/", series_name)
        return se + "/"
