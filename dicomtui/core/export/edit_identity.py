"""Who the edited files are, for :mod:`.edit`: their patient (a PatientID or PatientName edit merges or splits
patients in the index; a new study is placed under the patient the edit names) and their UIDs (new ones only as
a new series or a new study, then from one map for all the edited files).

A new study is what Orthanc's ``POST /studies/{id}/split`` makes of some series of a study (its SplitStudyJob): the
files copied with a new StudyInstanceUID (one per source study) and new Series and SOP Instance UIDs, patient and
study attributes replaced as asked, the originals kept. It is how part of a study goes to another patient: the
index keeps a study under one patient, so the part must become a study of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, MutableSequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..database import DicomDatabase
from ..header import normalise_name
from ..levels import Level
from ..plural import counted as plural
from .tagpath import EditError

if TYPE_CHECKING:
    from .edit import Change, EditPlan, FileToEdit

_STUDY_UID = 0x0020000D  # StudyInstanceUID
SWITCHES = "edit --as-new-study; the form's \"As a new study\" switch"  # the way the refusal names


@dataclass
class Placement:
    """Where one source study's edited files go as a new study: ``instances`` of its ``total`` (in ``series``),
    to the patient ``patient_id``, ``patient_name`` (the edit's, else the source patient's); ``existing``: that
    patient is already indexed (the new study merged into it), else a new patient row is made."""

    source_study: str
    source_patient: str
    instances: int
    total: int
    series: int
    patient_id: str
    patient_name: str
    existing: bool

    def to_json(self) -> dict[str, Any]:
        return {"source_study": self.source_study, "source_patient": self.source_patient,
                "instances": self.instances, "of": self.total, "series": self.series,
                "patient_id": self.patient_id, "patient_name": self.patient_name, "existing_patient": self.existing}


def plan_patients(db: DicomDatabase, plan: EditPlan) -> None:
    """The patients a PatientID or PatientName edit merges or splits, in sentences (``plan.reparent``), or, as a
    new study, where each new study goes (``plan.placement`` too); a refusal when such an edit covers part of a
    study only (or makes a new series of it) without a new study; warnings for other patient or study attributes
    edited on part of a study (the study row follows the last file written) and for what a new study shares
    with its source."""
    by_kw = {c.path.keyword: c for c in plan.changes if not c.path.nested}
    identity = [kw for kw in ("PatientID", "PatientName") if kw in by_kw and by_kw[kw].changes_anything]
    edited = Counter(f.uids[Level.STUDY] for f in plan.files)
    rows = {study: db.find(Level.STUDY, study) or {} for study in edited}  # each study looked up once
    refused: set[str] = set()
    for study, count in edited.items():
        total = rows[study].get("num_instances") or count
        if plan.as_new_study:
            continue  # its own study: nothing of the source study changes
        if identity and (count < total or plan.as_new_series):
            # the index keeps a study under one patient (PatientID and name): a part of a study moved to another
            # patient would take the whole study row with it, and its other files would say otherwise
            part = "a new series of it" if plan.as_new_series else f"{count} of its {plural(total, 'instance')}"
            refused.add(study)
            plan.refusals.append(f"{' and '.join(identity)} would move study {study} to another patient, but only "
                                 f"{part} would change: a study belongs to one patient (select the whole study, "
                                 f"or make the part a new study under the other patient: {SWITCHES})")
        elif count < total and any(c.level in (Level.PATIENT, Level.STUDY) for c in plan.changes):
            plan.warnings.append(f"study {study}: {count} of {plural(total, 'instance')} edited; the other files "
                                 f"keep their patient and study attributes")
    id_change, name_change = by_kw.get("PatientID"), by_kw.get("PatientName")
    if plan.as_new_study:
        _place_new_studies(db, plan, edited, rows, id_change, name_change)
        return
    if plan.as_new_series:
        if any(c.level in (Level.PATIENT, Level.STUDY) for c in plan.changes):
            plan.warnings.append("patient and study attributes of a new series differ from the rest of its study")
        return
    if id_change is None and name_change is None:
        return
    studies_of: dict[int, set[str]] = {}
    for study, row in rows.items():
        if study in refused:
            continue  # refused above: nothing of it moves
        studies_of.setdefault(row.get("patient_fk", -1), set()).add(study)
    for patient_fk, studies in studies_of.items():
        patient = db.get(Level.PATIENT, patient_fk) or {}
        pid, key = patient.get("PatientID") or "", patient.get("name_key") or ""
        new_id, new_key = _new_identity(pid, key, id_change, name_change)
        if (new_id, new_key) == (pid, key):
            continue
        old_total = patient.get("num_studies") or len(studies)
        emptied = old_total <= len(studies)
        # a patient all of whose studies are edited is renamed (or re-identified), not split: its own row is no
        # other patient of that ID to warn about
        target = _target(db, plan, new_id, new_key, leaving=patient_fk if emptied else None)
        moved = plural(len(studies), "study")
        old_name = patient.get("PatientName") or ""
        new_name = name_change.new if name_change else old_name
        named = name_change is not None and new_name != old_name  # names shown only when they change
        was, now = (f" ({old_name!r})", f" ({new_name!r})") if named else ("", "")
        if emptied and target is None:
            plan.reparent.append(f"patient {pid}{was} becomes patient {new_id}{now}, its {moved} with it")
            continue
        into = (f"to patient {new_id}{now} (merged: {plural(target['num_studies'], 'study')} there now)"
                if target else f"to a new patient {new_id}{now}")
        left = (f"; patient {pid}{was} keeps {plural(old_total - len(studies), 'study')} (split)"
                if not emptied else f"; patient {pid}{was} is left empty and removed")
        verb = "moves" if len(studies) == 1 else "move"
        plan.reparent.append(f"{moved} of patient {pid} {verb} {into}{left}")


def plan_references(db: DicomDatabase, plan: EditPlan) -> None:
    """Warnings for references the new UIDs of a new series or study leave behind (what import recorded of SEG,
    RT and derived objects, ``instances.refs``; no file opened): objects outside the selection that refer to an
    edited series keep referring to the original, and, for a new study, a moved object that refers to a series
    left in the source study then refers across studies."""
    from ..examine.references import referenced_by, referenced_by_line, references_of

    if not (plan.as_new_series or plan.as_new_study):
        return
    edited = sorted({f.uids[Level.SERIES] for f in plan.files})
    chosen = set(edited)
    for series in edited:
        outside = [r for r in referenced_by(db, series) if r.series_uid not in chosen]
        if outside:
            plan.warnings.append(f"series {series} is {referenced_by_line(outside)} outside the selection: they "
                                 f"keep referring to the original series, which stays (select them too to move "
                                 f"them with it)")
        if plan.as_new_study:
            behind = [uid for uid in references_of(db, series) if uid not in chosen]
            if behind:
                plan.warnings.append(f"series {series} refers to {plural(len(behind), 'series')} left in the "
                                     f"source study ({', '.join(behind)}): the new study's copy refers across "
                                     f"studies")


def _place_new_studies(db: DicomDatabase, plan: EditPlan, edited: Counter[str], rows: dict[str, dict[str, Any]],
                       id_change: Change | None, name_change: Change | None) -> None:
    """Per source study, the sentence and the :class:`Placement` of the new study its edited files become."""
    series_of: dict[str, set[str]] = {}
    for f in plan.files:
        series_of.setdefault(f.uids[Level.STUDY], set()).add(f.uids[Level.SERIES])
    edited_kw = {c.path.keyword for c in plan.changes if not c.path.nested and c.changes_anything}
    targets: dict[tuple[str, str], dict[str, Any] | None] = {}  # each patient looked up once
    made: set[tuple[str, str]] = set()  # new patients an earlier study of this plan makes
    for study, count in edited.items():
        row = rows[study]
        total = row.get("num_instances") or count
        patient = db.get(Level.PATIENT, row.get("patient_fk", -1)) or {}
        pid, key = patient.get("PatientID") or "", patient.get("name_key") or ""
        new_id, new_key = _new_identity(pid, key, id_change, name_change)
        if (new_id, new_key) == (pid, key):
            target: dict[str, Any] | None = patient
        elif (new_id, new_key) not in targets:
            target = targets[new_id, new_key] = _target(db, plan, new_id, new_key)
        else:
            target = targets[new_id, new_key]
        part = (f"all {plural(total, 'instance')}" if count >= total
                else f"{count} of its {plural(total, 'instance')} ({plural(len(series_of[study]), 'series')} of "
                     f"{row.get('num_series') or len(series_of[study])})")
        if target is patient:
            where = f"beside it, under patient {pid}"
        elif target:
            where = f"under patient {new_id} (merged: {plural(target['num_studies'], 'study')} there now)"
        elif (new_id, new_key) in made:
            where = f"under the new patient {new_id} too"
        else:
            where = f"under a new patient {new_id}"
            made.add((new_id, new_key))
        plan.reparent.append(f"study {study} of patient {pid}: {part} become a new study {where}; the originals "
                             f"stay")
        name = name_change.new if name_change else patient.get("PatientName") or ""
        plan.placement.append(Placement(study, pid, count, total, len(series_of[study]), new_id, name,
                                        bool(target)))
        if row.get("AccessionNumber") and "AccessionNumber" not in edited_kw:
            plan.warnings.append(f"the new study from study {study} shares its AccessionNumber "
                                 f"{row['AccessionNumber']!r}: a PACS may merge studies by it (set AccessionNumber "
                                 f"to tell them apart)")


def _new_identity(pid: str, key: str, id_change: Change | None, name_change: Change | None) -> tuple[str, str]:
    """(PatientID, PatientName's key) of a patient once the edit is written."""
    return (id_change.new if id_change else pid, normalise_name(name_change.new) if name_change else key)


def _target(db: DicomDatabase, plan: EditPlan, new_id: str, new_key: str,
            leaving: int | None = None) -> dict[str, Any] | None:
    """The indexed patient (PatientID, name key) the edited studies join, None for a new one; a warning when
    a patient has that PatientID under another name (the index keeps them apart: set PatientName as well).
    ``leaving``: the id of a patient row the edit empties (renamed: not another patient to warn about)."""
    same_id = [row for p in db.patients() if p["PatientID"] == new_id and p["id"] != leaving
               if (row := db.get(Level.PATIENT, p["id"]) or {})]
    target = next((row for row in same_id if row.get("name_key") == new_key), None)
    if target is None and same_id:
        names = ", ".join(repr(row.get("PatientName") or "") for row in same_id)
        warning = (f"patient {new_id} is indexed with another name ({names}): the edited files go to a new patient "
                   f"row {new_id} beside it; set PatientName to that name as well to merge them")
        if warning not in plan.warnings:
            plan.warnings.append(warning)
    return target


def uid_changer(files: Iterable[FileToEdit], *, new_study: bool, uid_root: str | None) -> Callable[[Any], None]:
    """The change :mod:`.rewrite` applies to each edited data set: new Series and SOP Instance UIDs (and, with
    ``new_study``, a new StudyInstanceUID per source study), one map for all ``files``, so that a reference from
    one edited file to another, anywhere in its data set, follows; a reference to a file outside them keeps its
    UID. A StudyInstanceUID inside a sequence item (a reference to a study: Current Requested Procedure Evidence,
    Studies Containing Other Referenced Instances) follows only when the item refers to a moved series or
    instance. FrameOfReferenceUID stays: the copies keep their source's patient frame. The maps are the
    function's ``series`` and ``studies`` attributes (old UID → new). Raises EditError for a UID root that
    cannot start new UIDs (PS3.5 9.1)."""
    from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

    prefix = uid_root or PYDICOM_ROOT_UID
    if not prefix.endswith("."):
        prefix += "."
    try:
        generate_uid(prefix)
    except ValueError as exc:
        raise EditError(f"the UID root {uid_root!r} cannot start new UIDs: {exc} (PS3.5 9.1: digits and dots, "
                        f"room left for a suffix)") from exc
    mapping: dict[str, str] = {}
    series: dict[str, str] = {}
    studies: dict[str, str] = {}
    for f in files:
        old = f.uids[Level.SERIES]
        series.setdefault(old, generate_uid(prefix))
        mapping[old] = series[old]
        mapping[f.uids[Level.INSTANCE]] = generate_uid(prefix)
        if new_study:
            studies.setdefault(f.uids[Level.STUDY], generate_uid(prefix))

    def mapped(value: Any) -> tuple[Any, bool]:
        if isinstance(value, str):
            return (mapping[value], True) if value in mapping else (value, False)
        if not isinstance(value, MutableSequence):  # pydicom's MultiValue: a UI of several values
            return value, False
        new = [mapping.get(v, v) for v in value]
        return new, new != list(value)

    def walk(node: Any, top: bool) -> bool:
        """Map the UIDs of ``node``; whether one of them followed the map."""
        followed = False
        study = None
        for elem in node:
            if elem.VR == "UI":
                if elem.tag == _STUDY_UID and isinstance(elem.value, str) and elem.value in studies:
                    study = elem
                    continue
                elem.value, hit = mapped(elem.value)
                followed |= hit
            elif elem.VR == "SQ":
                for item in elem.value:
                    followed |= walk(item, False)
        if study is not None and (top or followed):
            study.value = studies[study.value]
        return followed

    def change(ds: Any) -> None:
        walk(ds, True)

    change.series = series  # type: ignore[attr-defined]
    change.studies = studies  # type: ignore[attr-defined]
    return change
