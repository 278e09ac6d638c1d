"""Reading: the rows of each level for the browser and `ls` (narrowed by the level above and by a search box),
single rows by UID or id, the instance files under a selection, and counts."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SelectionError
from ..levels import HIERARCHY, Level
from .filters import filter_sql, in_clause
from .schema import DB_FILE
from .schema import chunks as _chunks

_STUDY_ALIASES = {Level.STUDY: "s.", Level.PATIENT: "p."}
_SERIES_ALIASES = {Level.SERIES: "se.", Level.STUDY: "st."}
_SERIES_FIELDS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality")
# The order in which resolve() tries a text: UIDs first, a PatientID last.
_RESOLVE_ORDER = (Level.STUDY, Level.SERIES, Level.INSTANCE, Level.PATIENT)
_QUALIFIED = re.compile(r"(patient|study|series|instance):(.*)", re.S)  # "series:1.2.3", "series:42"
AMBIGUOUS_SHOWN = 10  # matches named in the sentence for an ambiguous prefix
INSTANCES_OF: dict[str, str] = {  # instance ids of a row, in the order a viewer or a send wants them
    Level.INSTANCE: "SELECT id FROM instances WHERE id = ?",
    Level.SERIES: "SELECT id FROM instances WHERE series_fk = ? ORDER BY InstanceNumber, id",
    Level.STUDY: "SELECT i.id FROM instances i JOIN series s ON s.id = i.series_fk WHERE s.study_fk = ? "
                 "ORDER BY s.SeriesNumber, s.id, i.InstanceNumber, i.id",
    Level.PATIENT: "SELECT i.id FROM instances i JOIN series s ON s.id = i.series_fk "
                   "JOIN studies st ON st.id = s.study_fk WHERE st.patient_fk = ? "
                   "ORDER BY st.id, s.SeriesNumber, s.id, i.InstanceNumber, i.id",
}

# A selection item: (level, row id), levels.Item or a plain tuple. Level is a StrEnum, so ("series", 3) and
# (Level.SERIES, 3) are the same item.
Item = tuple[str, int]


class Reading:
    """The reading half of :class:`~dicomtui.core.database.DicomDatabase` (a mixin)."""

    root: Path
    conn: sqlite3.Connection

    def abspath(self, row_path: str, stored: bool) -> Path:
        """The file of an instance row (stored paths are relative to the database folder)."""
        return self.root / row_path if stored else Path(row_path)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def patients(self, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = filter_sql(Level.PATIENT, filter)
        return self._rows(
            f"SELECT id, PatientID, PatientName, PatientBirthDate, PatientSex, num_studies, last_study_date, "
            f"generated_id FROM patients {where} ORDER BY PatientName COLLATE NOCASE, PatientID",
            args,
        )

    def studies(self, patient_ids: Sequence[int] | None = None, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = in_clause(*filter_sql(Level.STUDY, filter, _STUDY_ALIASES), "s.patient_fk", patient_ids)
        return self._rows(
            f"SELECT s.id, s.StudyInstanceUID, s.patient_fk, p.PatientID, p.PatientName, s.StudyDate, s.StudyTime, "
            f"s.StudyDescription, s.AccessionNumber, s.modalities, s.ReferringPhysicianName, s.StudyID, "
            f"s.num_series, s.num_instances FROM studies s JOIN patients p ON p.id = s.patient_fk {where} "
            f"ORDER BY s.StudyDate DESC, s.StudyTime DESC, s.id",
            args,
        )

    def series(self, study_ids: Sequence[int] | None = None, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = in_clause(*filter_sql(Level.SERIES, filter, _SERIES_ALIASES), "se.study_fk", study_ids)
        return self._rows(
            f"SELECT se.id, se.SeriesInstanceUID, se.study_fk, st.StudyInstanceUID, se.SeriesNumber, se.Modality, "
            f"se.SeriesDescription, se.BodyPartExamined, se.num_instances, se.image_size, se.SeriesDate, "
            f"se.SeriesTime FROM series se JOIN studies st ON st.id = se.study_fk {where} "
            f"ORDER BY st.StudyDate DESC, se.study_fk, se.SeriesNumber IS NULL, se.SeriesNumber, se.id",
            args,
        )

    def instances(self, series_ids: Sequence[int] | None = None, filter: str | None = None,
                  columns: str = "*") -> list[dict[str, Any]]:
        where, args = in_clause(*filter_sql(Level.INSTANCE, filter), "series_fk", series_ids)
        return self._rows(
            f"SELECT {columns} FROM instances {where} ORDER BY series_fk, InstanceNumber IS NULL, InstanceNumber, id",
            args,
        )

    def series_instances(self, series_id: int) -> list[dict[str, Any]]:
        """The instance rows of a series with its series-level attributes merged in: what examine plugins read
        (stored attributes only, no file is opened)."""
        series = self.conn.execute(
            "SELECT SeriesInstanceUID, SeriesNumber, SeriesDescription, Modality FROM series WHERE id = ?",
            (series_id,)).fetchone()
        rows = self.instances([series_id])
        extra = dict(zip(_SERIES_FIELDS, series, strict=True)) if series else {}
        for row in rows:
            row.update(extra)
        return rows

    def find(self, level: str, uid: str) -> dict[str, Any] | None:
        """The row of a patient (by PatientID), study, series or instance (by UID)."""
        lv = Level(level)
        rows = self._rows(f"SELECT * FROM {lv.table} WHERE {lv.uid_column} = ?", [uid])
        return rows[0] if rows else None

    def get(self, level: str, row_id: int) -> dict[str, Any] | None:
        """The row of a patient, study, series or instance by its id."""
        rows = self._rows(f"SELECT * FROM {Level(level).table} WHERE id = ?", [row_id])
        return rows[0] if rows else None

    def instance_rows(self, items: Iterable[Item], columns: str = "*") -> list[dict[str, Any]]:
        """The instance rows under (level, id) items, each once, in the order of the items and, within one, in
        series and instance order; ``columns`` is a SQL column list (``id`` is always included)."""
        ids: dict[int, None] = {}
        for level, row_id in items:
            ids.update((r[0], None) for r in self.conn.execute(INSTANCES_OF[level], (row_id,)))
        by_id: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(list(ids), 500):
            for row in self._rows(f"SELECT id, {columns} FROM instances WHERE id IN ({','.join('?' * len(chunk))})",
                                  chunk):
                by_id[row["id"]] = row
        return [by_id[i] for i in ids if i in by_id]

    def instance_files(self, items: Iterable[Item]) -> list[dict[str, Any]]:
        """The instances under (level, id) items, each once, in series and instance order, with absolute paths:
        what a send needs (dicts of SOPInstanceUID, SOPClassUID, TransferSyntaxUID, path)."""
        return [{"SOPInstanceUID": r["SOPInstanceUID"], "SOPClassUID": r["SOPClassUID"],
                 "TransferSyntaxUID": r["TransferSyntaxUID"], "path": str(self.abspath(r["path"], bool(r["stored"])))}
                for r in self.instance_rows(items, "SOPInstanceUID, SOPClassUID, TransferSyntaxUID, path, stored")]

    def series_ids(self, items: Iterable[Item]) -> list[int]:
        """The series under patient/study/series items, each once, in browser order."""
        out: dict[int, None] = {}
        for level, row_id in items:
            if level == Level.SERIES:
                out[row_id] = None
            elif level == Level.STUDY:
                out.update((r["id"], None) for r in self.series([row_id]))
            elif level == Level.PATIENT:
                studies = [r["id"] for r in self.studies([row_id])]
                out.update((r["id"], None) for r in self.series(studies))
        return list(out)

    def data_version(self) -> int:
        """Changes whenever another connection commits: how a browser notices data added by the listener or an
        import running in another process (SQLite's ``PRAGMA data_version``)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def resolve(self, uid: str, levels: Iterable[Level] | None = None) -> list[tuple[str, int]]:
        """Which rows ``uid`` names, as (level, id): a study, series or instance UID, or a PatientID (exactly);
        else the row id ``--json`` prints (``42``, or ``series:42``); else a unique UID prefix. ``LEVEL:`` before
        the text (``series:1.2.8``) or ``levels`` narrows the levels tried (in the order of ``_RESOLVE_ORDER``).

        An exact PatientID may name several patients (all are returned). A row id or a prefix that names rows of
        several levels or several UIDs raises SelectionError, which lists the matches. Empty list: nothing."""
        allowed = list(_RESOLVE_ORDER if levels is None else (Level(lv) for lv in levels))
        if qualified := _QUALIFIED.fullmatch(uid):
            wanted = Level(qualified.group(1))
            allowed = [lv for lv in allowed if lv is wanted] if levels is not None else [wanted]
            uid = qualified.group(2)
        allowed = [lv for lv in _RESOLVE_ORDER if lv in allowed]
        found: list[Item] = []
        for level in allowed:
            found += [(level, r[0]) for r in self.conn.execute(
                f"SELECT id FROM {level.table} WHERE {level.uid_column} = ?", (uid,))]
        if found or not uid:
            return found
        if uid.isdigit():  # a row id, as `ls --json` gives it
            found = [(level, int(uid)) for level in allowed if self.conn.execute(
                f"SELECT 1 FROM {level.table} WHERE id = ?", (int(uid),)).fetchone()]
            if len(found) > 1:
                named = [(lv, f"{lv}:{uid} ({self._uid_of(lv, row_id)})") for lv, row_id in found]
                raise SelectionError(self._ambiguous(uid, "is a row id of several levels", named, len(found),
                                                     f"give its level first (e.g. series:{uid})"))
            if found:
                return found
        return self._by_prefix(uid, allowed)

    def _uid_of(self, level: str, row_id: int) -> str:
        lv = Level(level)
        row = self.conn.execute(f"SELECT {lv.uid_column} FROM {lv.table} WHERE id = ?", (row_id,)).fetchone()
        return str(row[0]) if row else ""

    def _by_prefix(self, prefix: str, levels: list[Level]) -> list[tuple[str, int]]:
        """The one study, series or instance whose UID starts with ``prefix`` (an index range scan per level);
        SelectionError when several do."""
        matches: list[tuple[Level, int, str]] = []
        for level in (lv for lv in levels if lv is not Level.PATIENT):
            col = level.uid_column
            matches += [(level, r[0], r[1]) for r in self.conn.execute(
                f"SELECT id, {col} FROM {level.table} WHERE {col} >= ? AND {col} < ? ORDER BY {col} LIMIT ?",
                (prefix, prefix + "\U0010ffff", AMBIGUOUS_SHOWN + 1))]
        if len(matches) > 1:
            counts = sum(self.conn.execute(
                f"SELECT COUNT(*) FROM {lv.table} WHERE {lv.uid_column} >= ? AND {lv.uid_column} < ?",
                (prefix, prefix + "\U0010ffff")).fetchone()[0]
                for lv in {m[0] for m in matches})
            raise SelectionError(self._ambiguous(prefix, "is the beginning of several UIDs",
                                                 [(lv, text) for lv, _id, text in matches], counts,
                                                 f"give more of the UID, or its level first (e.g. series:{prefix})"))
        return [(lv, row_id) for lv, row_id, _text in matches]

    @staticmethod
    def _ambiguous(text: str, what: str, matches: list[tuple[str, str]], total: int, hint: str) -> str:
        """The sentence for a text that names several rows, one match per line (at most AMBIGUOUS_SHOWN)."""
        lines = [f"  {name}" if name.startswith(f"{level}:") else f"  {level} {name}"
                 for level, name in matches[:AMBIGUOUS_SHOWN]]
        if total > len(lines):
            lines.append(f"  … and {total - len(lines)} more")
        return (f"{text} is ambiguous: it {what}; {hint}:\n"
                + "\n".join(lines))

    def stats(self) -> dict[str, Any]:
        c = self.conn.execute
        counts = {lv.table: c(f"SELECT COUNT(*) FROM {lv.table}").fetchone()[0] for lv in HIERARCHY}
        sizes = "SELECT COUNT(*), COALESCE(SUM(file_size), 0) FROM instances WHERE stored = ?"
        stored, stored_bytes = c(sizes, (1,)).fetchone()
        linked, linked_bytes = c(sizes, (0,)).fetchone()
        db_bytes = sum(p.stat().st_size for p in self.root.glob(DB_FILE + "*") if p.is_file())
        return {
            "path": str(self.root), "schema_version": self.schema_version, **counts,
            "stored_instances": stored, "stored_bytes": stored_bytes,
            "linked_instances": linked, "linked_bytes": linked_bytes, "index_bytes": db_bytes,
        }

    def totals(self) -> dict[str, int]:
        """Patients, studies, series and instances from the counts kept in the parent rows: what a status line
        shows, in a few ms where :meth:`stats` scans the instances table (0.4 s for a million)."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM patients), (SELECT COUNT(*) FROM studies), (SELECT COUNT(*) FROM series), "
            "(SELECT COALESCE(SUM(num_instances), 0) FROM studies)").fetchone()
        return dict(zip(("patients", "studies", "series", "instances"), row, strict=True))

    def known_sources(self, prefix: str) -> dict[str, tuple[int, int, int]]:
        """(size, mtime_ns, stored) of every imported source file under folder ``prefix``: lets re-import skip
        files that have not changed since and were imported the same way."""
        prefix = prefix.rstrip(os.sep)
        return {
            path: (size, mtime, stored)
            for path, size, mtime, stored in self.conn.execute(
                "SELECT source_path, source_size, source_mtime_ns, stored FROM instances "
                "WHERE source_path = ? OR (source_path >= ? AND source_path < ?)",
                (prefix, prefix + os.sep, prefix + chr(ord(os.sep) + 1)),
            )
        }

    def _rows(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, list(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

