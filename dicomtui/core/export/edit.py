"""The tag editor's one core function, shared by ``dicomtui edit`` and the TUI's forms: items and settings
(``{keyword or tag path: new value}``) → an :class:`EditPlan` (per level: the value each file has now, "3 values"
when they differ, the new value, the problems, the patients merged or split) → :func:`apply_edit`.

What is written (as DCMTK's ``dcmodify`` and Orthanc's ``/modify`` change stored data, with a dry run first):
- a copied file is written again beside itself (:mod:`.edit_write`), in batches of ``BATCH``: each new file
  into ``incoming/`` by ``WRITERS`` threads (the kernel copies one file's pixel data while Python prepares the
  next; its writeback started at once, ``rewrite.start_writeback``), one ``syncfs`` for the batch (every new
  file's bytes on disk), the renames into storage under new names, one ``fsync`` of each folder renamed into
  (the names on disk), then the rows; the writers fill the next batch meanwhile. The old file is removed only
  once the commit of the row that points at the new one is durable (after the next batch's ``syncfs``; the
  database's write path removes a stored copy superseded by another file, under the write lock). The
  guarantee: after a crash at any point, every row names a complete file on disk, the old one or the new one,
  never a row without its file (at worst a new file no row names yet, which ``db check`` lists, or a temp file
  in ``incoming/``);
- a linked file is never written: the edited file is stored as a copy in the database storage, its row points
  there, the original stays where it is (the report lists them);
- the rows come from the new files (their headers read back by ``records.read_checked``) through ``add_files``,
  as an import or the listener writes them, so a PatientID edit moves the studies to another patient row
  (merged with one that has that ID, or split off as a new patient; the plan counts both);
- UIDs change only with ``as_new_series``: the edited files become a new series (new Series and SOP Instance
  UIDs under one root; a reference inside the edited files to one of them follows), the originals stay; or with
  ``as_new_study``: a new study as well (a new StudyInstanceUID per source study, Orthanc's study split), which
  may go to another patient (how part of a study is moved: :mod:`.edit_identity`), the originals stay.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..database import DicomDatabase
from ..levels import HIERARCHY, Item, Level
from ..plural import counted as plural
from .edit_identity import Placement, plan_patients, plan_references, uid_changer
from .edit_write import write_files
from .rewrite import (
    Head,
    Setting,
    head_text,
    head_uid,
    head_vr,
    last_tag,
    place_private,
    read_head,
)
from .tagpath import EditError, TagPath, get_value, parse_path
from .vr import UTF8_CHARSET, check_value

__all__ = ["Change", "EditError", "EditPlan", "EditReport", "apply_edit", "plan_edit"]

_LAST_UID = 0x0020000E  # SeriesInstanceUID: the heads read go at least this far (the study, series, SOP UIDs)
DELETED = "(deleted)"
ABSENT = "(absent)"  # a deletion's count of the files that do not hold the attribute
# not deletable: the index's patient identity, and the character set every text value is decoded with
_NOT_DELETABLE = {0x00100020: "PatientID identifies the patient in the index (set it to a value instead)",
                  0x00080005: "SpecificCharacterSet decodes every text value of the file (use --utf8 to change it)"}
_UNIT_UID = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID", Level.SERIES: "SeriesInstanceUID",
             Level.INSTANCE: "SOPInstanceUID"}


@dataclass
class Change:
    """One attribute set: where (``path``), its VR, the ``new`` text, the values the files have now (``current``:
    value → number of files, "" for absent), and per unit of its level (the patient, study or series UID) the
    same count; ``problems`` are the validation sentences (nothing is written while one remains)."""

    path: TagPath
    vr: str
    new: str
    series: str = ""  # the SeriesInstanceUID it is limited to ("" for every file of the plan)
    current: Counter[str] = field(default_factory=Counter)
    units: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    needs_utf8: bool = False
    delete: bool = False  # the attribute removed from every file that holds it (``new`` is "")

    @property
    def level(self) -> Level:
        return self.path.level

    def current_text(self, values: Counter[str] | None = None) -> str:
        """The value shown beside the edit: the one value, or "3 values" when the files differ."""
        values = self.current if values is None else values
        return next(iter(values)) if len(values) == 1 else f"{len(values)} values"

    @property
    def changes_anything(self) -> bool:
        return not self.unchanged(self.current)

    @property
    def new_text(self) -> str:
        """The new value as the diff shows it ("(deleted)" for a deletion)."""
        return DELETED if self.delete else repr(self.new)

    def unchanged(self, values: Counter[str]) -> bool:
        """Whether the files counted in ``values`` stay as they are (a deletion: none of them holds it)."""
        return set(values) == ({ABSENT} if self.delete else {self.new})


@dataclass
class FileToEdit:
    """One instance row to rewrite: its file and the identifiers its plan needs."""

    row_id: int
    path: Path
    stored: bool
    row_path: str
    uids: dict[Level, str]
    source: tuple[str, int, int]
    head: tuple[Head, int, int] | None = None  # the plan's read: (head, size, mtime_ns)


@dataclass
class EditPlan:
    """What :func:`apply_edit` would do; nothing is written while making it. ``reparent``: sentences on the
    patients merged or split by a patient-level edit; ``warnings``: what the user should know but may accept."""

    changes: list[Change]
    files: list[FileToEdit]
    as_new_series: bool = False
    set_utf8: bool = False
    reparent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # problems of the selection as a whole (not of one value)
    as_new_study: bool = False  # new Study, Series and SOP Instance UIDs (implies a new series)
    placement: list[Placement] = field(default_factory=list)  # as a new study: per source study, where it goes

    @property
    def new_uids(self) -> bool:
        """Whether the files are written with new UIDs (as a new series or a new study), the originals kept."""
        return self.as_new_series or self.as_new_study

    @property
    def problems(self) -> list[str]:
        out = [p for c in self.changes for p in c.problems] + self.refusals
        if any(c.needs_utf8 for c in self.changes) and not self.set_utf8:
            names = ", ".join(c.path.text for c in self.changes if c.needs_utf8)
            out.append(f"{names}: the Specific Character Set of the files cannot encode the new value; "
                       f"allow its change to {UTF8_CHARSET} (UTF-8) to write it (edit --utf8; the form's check box)")
        return out

    @property
    def linked(self) -> int:
        return sum(not f.stored for f in self.files)

    def diff(self) -> list[str]:
        """The dry run's lines: per level, per unit, each attribute's value now → the new one."""
        lines = [f"{plural(len(self.files), 'file')} to write"
                 + (f" ({self.linked} linked: written as copies into the database storage)" if self.linked else "")
                 + (", as a new study (new Study, Series and SOP Instance UIDs; the originals stay)"
                    if self.as_new_study else
                    ", as a new series (new Series and SOP Instance UIDs; the originals stay)" if self.as_new_series
                    else "")]
        for level in HIERARCHY:
            changes = [c for c in self.changes if c.level is level]
            if not changes:
                continue
            lines.append(f"{level}:")
            for c in changes:
                for unit, values in c.units.items():
                    now = c.current_text(values)
                    mark = "  (unchanged)" if c.unchanged(values) else ""
                    lines.append(f"  {level} {unit}: {c.path.text}: {now!r} -> {c.new_text} "
                                 f"({plural(sum(values.values()), 'file')}){mark}")
        lines += [f"patients: {s}" for s in self.reparent]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"problem: {p}" for p in self.problems]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "files": len(self.files), "linked": self.linked, "as_new_series": self.as_new_series,
            "as_new_study": self.as_new_study, "placement": [p.to_json() for p in self.placement],
            "set_specific_character_set": UTF8_CHARSET if self.set_utf8 else None,
            "changes": [{"path": c.path.text, "keyword": c.path.keyword, "vr": c.vr, "level": str(c.level),
                         "series": c.series or None,
                         "new": None if c.delete else c.new, "delete": c.delete, "current": dict(c.current),
                         "units": {u: dict(v) for u, v in c.units.items()}} for c in self.changes],
            "reparent": self.reparent, "warnings": self.warnings, "problems": self.problems,
        }


@dataclass
class EditReport:
    """What :func:`apply_edit` did: files written, linked originals left where they were (their copies now in
    storage), errors per file (sentences), whether it was cancelled."""

    written: int = 0
    spliced: int = 0  # of them, written by the fast path (the untouched bytes copied, see rewrite.py)
    copied_from_links: list[str] = field(default_factory=list)
    new_series: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False
    new_studies: list[str] = field(default_factory=list)
    originals: list[str] = field(default_factory=list)  # new UIDs: the source series, kept as they were

    def summary(self) -> str:
        text = f"Edited {plural(self.written, 'file')}."
        if self.copied_from_links:
            text += (f" {plural(len(self.copied_from_links), 'linked file')} left unchanged where "
                     f"{'it is' if len(self.copied_from_links) == 1 else 'they are'}: the edited "
                     f"{'copy is' if len(self.copied_from_links) == 1 else 'copies are'} in the database storage.")
        if self.new_studies:
            text += f" New {'study' if len(self.new_studies) == 1 else 'studies'}: {', '.join(self.new_studies)}."
        elif self.new_series:
            text += f" New series: {', '.join(self.new_series)}."
        if self.originals and self.written:
            text += (f" The originals stay ({plural(len(self.originals), 'series')}); `dicomtui rm "
                     f"{' '.join(self.originals)}` (or d in the browser) removes them from the database.")
        if self.errors:
            text += f" {plural(len(self.errors), 'file')} not edited."
        if self.cancelled:
            text += " Cancelled."
        return text


def plan_edit(db: DicomDatabase, items: Iterable[Item], settings: Mapping[str, str], *,
              per_series: Mapping[str, Mapping[str, str | None]] | None = None,
              as_new_series: bool = False, as_new_study: bool = False, set_utf8: bool = False,
              delete: Iterable[str] = ()) -> EditPlan:
    """The plan of setting ``settings`` (keyword or tag path → new text, ``\\`` between values) in every file
    of ``items``, and ``per_series[SeriesInstanceUID]`` in the files of that series only (the tag editor's one
    table per series; None as the text: the attribute deleted in that series); ``delete``: keywords or tag paths
    removed from every file that holds them. ``as_new_series``: the files written with new Series and SOP
    Instance UIDs; ``as_new_study``: a new StudyInstanceUID too (the way a PatientID or PatientName edit takes
    part of a study to another patient: :mod:`.edit_identity`); the originals stay in both. Reads each
    file's head (up to the last attribute edited). Raises EditError for a path that cannot be edited or deleted
    (PatientID, SpecificCharacterSet, one both set and deleted), and for an empty selection."""
    paths: list[tuple[TagPath, str | None]] = [(parse_path(k), v) for k, v in settings.items()]
    for text in delete:
        p = parse_path(text)
        if p.tag in _NOT_DELETABLE and not p.nested:
            raise EditError(f"{p.text} cannot be deleted: {_NOT_DELETABLE[p.tag]}")
        if any(q.steps == p.steps for q, _ in paths):
            raise EditError(f"{p.text} is both set and deleted: choose one")
        paths.append((p, None))
    scoped = {uid: [(parse_path(k), v) for k, v in more.items()] for uid, more in (per_series or {}).items()}
    for p, v in [pv for more in scoped.values() for pv in more]:
        if v is None and p.tag in _NOT_DELETABLE and not p.nested:
            raise EditError(f"{p.text} cannot be deleted: {_NOT_DELETABLE[p.tag]}")
    rows = db.instance_rows(list(items), "path, stored, SOPInstanceUID, source_path, source_size, source_mtime_ns")
    if not rows:
        raise EditError("nothing to edit: the selection holds no instance")
    if not paths and not any(scoped.values()) and not (as_new_series or as_new_study):
        raise EditError("nothing to change: give at least one KEYWORD=VALUE (or an attribute to delete)")
    last = max(last_tag([p for p, _ in paths] + [p for more in scoped.values() for p, _ in more]), _LAST_UID)
    files: list[FileToEdit] = []
    changes: dict[tuple[str, str], Change] = {}
    charset_seen: set[tuple[str, ...]] = set()
    for row in rows:
        path = db.abspath(row["path"], bool(row["stored"]))
        try:
            st = os.stat(path)
            head = read_head(path, last)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
            raise EditError(f"cannot read {path}: {exc}") from exc
        uids = {lv: head_uid(head, kw) for lv, kw in _UNIT_UID.items()}
        files.append(FileToEdit(row["id"], path, bool(row["stored"]), row["path"], uids,
                                (row["source_path"], row["source_size"], row["source_mtime_ns"]),
                                (head, st.st_size, st.st_mtime_ns)))
        charsets = head.charsets
        series = uids[Level.SERIES]
        asked = [("", p, v) for p, v in paths] + [(series, p, v) for p, v in scoped.get(series, [])]
        placed = place_private(head, [(p, "", v) for _, p, v in asked])  # private blocks where this file has them
        for (scope, p, new), (q, _, _) in zip(asked, placed, strict=True):
            vr = p.vr or head_vr(head, q) or ("" if new is None else None)  # a deletion needs no VR
            if vr is None:
                raise EditError(f"{p.text}: a private attribute that {path.name} does not hold; its VR is unknown: "
                                f"give it after the tag, as {p.text}LO=VALUE")
            c = changes.setdefault((p.text, scope), Change(p, vr, new or "", scope, delete=new is None))
            now = get_value(head.ds, q) if q.nested else head_text(head, q.top, p.vr)
            now = (ABSENT if new is None else "") if now is None else now
            c.current[now] += 1
            c.units.setdefault(uids[p.level], Counter())[now] += 1
            if new is not None and (charsets not in charset_seen or vr != c.vr):
                check = check_value(p.text, vr, new, charsets)
                c.problems += [q for q in check.problems if q not in c.problems]
                c.needs_utf8 |= check.needs_utf8
        charset_seen.add(charsets)
    plan = EditPlan(list(changes.values()), files, as_new_series, set_utf8, as_new_study=as_new_study)
    plan_patients(db, plan)
    plan_references(db, plan)
    return plan


def apply_edit(db: DicomDatabase, plan: EditPlan, *, uid_root: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancel: threading.Event | None = None, min_free: int = 0) -> EditReport:
    """Write the plan (see the module's docstring). Raises EditError when the plan has problems. Files that fail
    (unreadable, disk full) are report errors; the files written before a cancel stay written and indexed.
    ``uid_root``: the root of new UIDs (pydicom's by default). ``min_free``: the edit stops before a file would
    leave less than that many bytes free on the database's disk (the listener's floor): one error sentence
    naming the floor; the files edited before stay edited and indexed, the rest unchanged."""
    if plan.problems:
        raise EditError("not written: " + " ".join(plan.problems))
    settings: dict[str, list[Setting]] = {}  # by series: the changes of every file, then those of its series
    for f in plan.files:
        uid = f.uids[Level.SERIES]
        if uid not in settings:
            settings[uid] = [(c.path, c.vr, None if c.delete else c.new) for c in plan.changes
                             if c.series in ("", uid)]
    last = max(last_tag(c.path for c in plan.changes), _LAST_UID)
    change = uid_changer(plan.files, new_study=plan.as_new_study, uid_root=uid_root) if plan.new_uids else None
    report = EditReport()
    if change is not None:
        report.new_series = sorted(set(change.series.values()))  # type: ignore[attr-defined]
        report.new_studies = sorted(set(change.studies.values()))  # type: ignore[attr-defined]
        report.originals = sorted(change.series)  # type: ignore[attr-defined]
    write_files(db, plan.files, settings, last, plan.set_utf8, change, report, progress, cancel, min_free)
    return report
