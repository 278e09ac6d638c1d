"""The local DICOM database: a folder with ``dicomtui.sqlite``, managed storage ``dicom/`` and ``incoming/``.

One writer transaction per batch (``BEGIN IMMEDIATE``), WAL mode and a busy timeout, so that an importer, a
listener and a browser can share one database across processes. Counts shown by the browser (studies per
patient, instances per series, modalities in a study) are kept in the parent rows and refreshed for the rows a
batch touched, so that listing 10,000 studies never counts a million instances.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import storage
from .errors import DatabaseError
from .header import FIELDS, normalise_name

DB_FILE = "dicomtui.sqlite"
SCHEMA_VERSION = 2
APP_ID = "dicomtui"
BUSY_TIMEOUT_S = 60.0

LEVELS = ("patient", "study", "series", "instance")

# Instance columns filled from a header record (their names are DICOM keywords).
_INSTANCE_TAGS = [
    kw for kw in FIELDS
    if kw not in {
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
        "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "StudyID", "SeriesInstanceUID",
        "SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "SeriesDate", "SeriesTime",
    }
]
_INSTANCE_COLUMNS = [
    "SOPInstanceUID", "series_fk", "TransferSyntaxUID", "path", "stored", "file_size", "file_mtime_ns",
    "source_path", "source_size", "source_mtime_ns", "imported_at", "has_pixels", "pixel_offset", "frames",
    *[kw for kw in _INSTANCE_TAGS if kw != "SOPInstanceUID"],
]
_UPSERT_INSTANCE = (
    f"INSERT INTO instances ({', '.join(_INSTANCE_COLUMNS)}) VALUES ({', '.join('?' * len(_INSTANCE_COLUMNS))}) "
    f"ON CONFLICT (SOPInstanceUID) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _INSTANCE_COLUMNS if c != "SOPInstanceUID")
)

# Columns the faces show and filter on, per level.
SHOWN_COLUMNS = {
    "patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"],
    "study": ["StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "modalities",
              "ReferringPhysicianName", "num_series", "num_instances"],
    "series": ["SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances",
               "image_size", "SeriesDate"],
    "instance": ["InstanceNumber", "SOPClassUID", "SOPInstanceUID", "path", "stored", "file_size",
                 "TransferSyntaxUID"],
}



@dataclass
class FileRecord:
    """One parsed file ready for the database: its header record and where its bytes are."""

    header: dict[str, Any]
    path: str  # absolute when linked, relative to the database folder when stored
    stored: bool
    file_size: int
    file_mtime_ns: int
    source_path: str
    source_size: int
    source_mtime_ns: int


@dataclass
class BatchResult:
    patients_added: int = 0
    studies_added: int = 0
    series_added: int = 0
    instances_added: int = 0
    instances_updated: int = 0


@dataclass
class _Touched:
    """Rows whose kept counts a batch must refresh."""

    series: set[int] = field(default_factory=set)
    studies: set[int] = field(default_factory=set)
    patients: set[int] = field(default_factory=set)


@dataclass
class DeleteReport:
    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    files_deleted: int = 0
    files_kept: int = 0  # linked files, never touched
    errors: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    changed: list[str] = field(default_factory=list)  # rows whose file's size or mtime differ
    orphans: list[str] = field(default_factory=list)  # files in storage no row references
    stale_temp: list[str] = field(default_factory=list)  # leftovers in incoming/
    repaired: bool = False
    dropped: int = 0
    reindexed: int = 0
    indexed_orphans: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.orphans)


def default_path() -> Path:
    import platformdirs

    return platformdirs.user_data_path("dicomtui") / "db"


class DicomDatabase:
    """A dicomtui database folder. Open with :meth:`open`; usable as a context manager."""

    def __init__(self, root: Path, conn: sqlite3.Connection):
        self.root = root
        self.conn = conn
        # row ids by UID (patients by identity), cached within one write transaction
        self._series_ids: dict[str, int] = {}
        self._study_ids: dict[str, int] = {}
        self._patient_ids: dict[tuple[str, str], int] = {}

    # ---- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = True) -> DicomDatabase:
        """Open the database in folder ``root``; create it when the folder is new or empty and ``create``.

        A folder that holds other files, or a SQLite file that is not ours or is newer than this program, is an
        error: nothing is overwritten.
        """
        root = Path(root).expanduser().absolute()
        db_file = root / DB_FILE
        if root.exists() and not root.is_dir():
            raise DatabaseError(f"{root} is a file, not a database folder")
        new = not db_file.exists() or db_file.stat().st_size == 0  # empty: another process is creating it
        if new:
            foreign = sorted(p.name for p in root.iterdir() if not _ours(p.name)) if root.is_dir() else []
            if foreign:
                raise DatabaseError(
                    f"{root} is not a dicomtui database (no {DB_FILE}) and holds other files "
                    f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty or new folder"
                )
            if not create:
                raise DatabaseError(f"no dicomtui database at {root}")
            root.mkdir(parents=True, exist_ok=True)
        conn = _connect(db_file)
        try:
            _migrate(conn, db_file)
        except BaseException:
            conn.close()
            raise
        (root / storage.STORAGE_DIR).mkdir(exist_ok=True)
        (root / storage.INCOMING_DIR).mkdir(exist_ok=True)
        return cls(root, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DicomDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def abspath(self, row_path: str, stored: bool) -> Path:
        """The file of an instance row (stored paths are relative to the database folder)."""
        return self.root / row_path if stored else Path(row_path)

    # ---- writing ---------------------------------------------------------------------------------------------

    def bulk_writes(self, on: bool) -> None:
        """Around a large import: checkpoint the WAL every 64 MiB instead of every 4 MiB (each checkpoint
        costs two fsyncs), then checkpoint once at the end so that the WAL does not stay large."""
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {16384 if on else 1000}")
        if not on:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def add_files(self, records: Sequence[FileRecord]) -> BatchResult:
        """Insert or update a batch of parsed files in one transaction; the newer file wins for a known SOP UID."""
        return self.add_prepared([prepare(r) for r in records])

    def add_prepared(self, prepared: Sequence[Prepared]) -> BatchResult:
        """:meth:`add_files` for records already turned into rows by :func:`prepare` (in a worker process)."""
        result = BatchResult()
        if not prepared:
            return result
        replaced: list[str] = []
        conn = self.conn
        ids = self._series_ids
        touched = _Touched()
        try:
            with _write(conn):
                # ids are cached for this transaction only: another process may delete rows (and SQLite reuse
                # their ids) between batches, and a file re-indexed later may move its series elsewhere
                self._forget_ids()
                rows = []
                last_hier = None
                series_fk = 0
                for hier, inst in prepared:
                    if hier is not last_hier:  # files come in runs of one series: resolve it once per run
                        last_hier = hier
                        series_fk = ids.get(hier[2][0]) or self._series_id(*hier, result, touched)
                        touched.series.add(series_fk)
                    rows.append((inst[0], series_fk, *inst[1:]))
                existing = {}
                uids = [r[0] for r in rows]
                for chunk in _chunks(uids, 500):
                    marks = ",".join("?" * len(chunk))
                    for uid, path, stored, old_series in conn.execute(
                        f"SELECT SOPInstanceUID, path, stored, series_fk FROM instances "
                        f"WHERE SOPInstanceUID IN ({marks})", chunk,
                    ):
                        existing[uid] = (path, stored, old_series)
                for row in rows:
                    old = existing.get(row[0])
                    if old is None:
                        result.instances_added += 1
                        existing[row[0]] = (row[3], row[4], row[1])  # a duplicate inside this batch is an update
                    else:
                        result.instances_updated += 1
                        touched.series.add(old[2])
                        if old[1] and old[0] != row[3] and not self._same_file(old[0], row[3], row[4]):
                            replaced.append(old[0])
                conn.executemany(_UPSERT_INSTANCE, rows)
                self._refresh(touched.series, touched.studies, touched.patients)
        finally:
            self._forget_ids()
        for rel in replaced:  # a stored copy superseded by a file elsewhere: ours to remove
            if not conn.execute("SELECT 1 FROM instances WHERE path = ? AND stored = 1", (rel,)).fetchone():
                storage.remove_stored(self.root, rel)
        return result

    def _same_file(self, stored_rel: str, new_path: str, new_stored: int) -> bool:
        """Whether a new row's file is the stored file itself (storage imported by link, say)."""
        if new_stored:
            return stored_rel == new_path
        try:
            return os.path.samefile(self.root / stored_rel, new_path)
        except OSError:
            return False

    def _forget_ids(self) -> None:
        self._series_ids.clear()
        self._study_ids.clear()
        self._patient_ids.clear()

    def _series_id(self, patient: tuple, study: tuple, series: tuple, result: BatchResult,
                   touched: _Touched) -> int:
        """The id of a series, created or updated from the newest file (which may move it to another study)."""
        uid = series[0]
        study_fk = self._study_ids.get(study[0]) or self._study_id(patient, study, result, touched)
        row = self.conn.execute("SELECT id, study_fk FROM series WHERE SeriesInstanceUID = ?", (uid,)).fetchone()
        if row is None:
            sid = self.conn.execute(
                "INSERT INTO series (SeriesInstanceUID, study_fk, SeriesNumber, Modality, SeriesDescription, "
                "BodyPartExamined, SeriesDate, SeriesTime) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
                (uid, study_fk, *series[1:]),
            ).fetchone()[0]
            result.series_added += 1
        else:
            sid = row[0]
            self.conn.execute(
                "UPDATE series SET study_fk = ?, SeriesNumber = ?, Modality = ?, SeriesDescription = ?, "
                "BodyPartExamined = ?, SeriesDate = ?, SeriesTime = ? WHERE id = ?", (study_fk, *series[1:], sid))
            if row[1] != study_fk:
                touched.studies.update((row[1], study_fk))
        self._series_ids[uid] = sid
        return sid

    def _study_id(self, patient: tuple, study: tuple, result: BatchResult, touched: _Touched) -> int:
        uid = study[0]
        patient_fk = self._patient_ids.get(patient[:2]) or self._patient_id(patient, result)
        row = self.conn.execute("SELECT id, patient_fk FROM studies WHERE StudyInstanceUID = ?", (uid,)).fetchone()
        if row is None:
            sid = self.conn.execute(
                "INSERT INTO studies (StudyInstanceUID, patient_fk, StudyDate, StudyTime, StudyDescription, "
                "AccessionNumber, ReferringPhysicianName, StudyID) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
                (uid, patient_fk, *study[1:]),
            ).fetchone()[0]
            result.studies_added += 1
        else:
            sid = row[0]
            self.conn.execute(
                "UPDATE studies SET patient_fk = ?, StudyDate = ?, StudyTime = ?, StudyDescription = ?, "
                "AccessionNumber = ?, ReferringPhysicianName = ?, StudyID = ? WHERE id = ?",
                (patient_fk, *study[1:], sid))
            if row[1] != patient_fk:
                touched.patients.update((row[1], patient_fk))
        touched.studies.add(sid)
        self._study_ids[uid] = sid
        return sid

    def _patient_id(self, patient: tuple, result: BatchResult) -> int:
        ident = patient[:2]
        row = self.conn.execute("SELECT id FROM patients WHERE PatientID = ? AND name_key = ?", ident).fetchone()
        if row is None:
            pid = self.conn.execute(
                "INSERT INTO patients (PatientID, name_key, PatientName, PatientBirthDate, PatientSex, generated_id) "
                "VALUES (?,?,?,?,?,?) RETURNING id", patient,
            ).fetchone()[0]
            result.patients_added += 1
        else:
            pid = row[0]
            self.conn.execute("UPDATE patients SET PatientName = ?, PatientBirthDate = ?, PatientSex = ?, "
                              "generated_id = ? WHERE id = ?", (*patient[2:], pid))
        self._patient_ids[ident] = pid
        return pid

    def _refresh(self, series_ids: Iterable[int] = (), study_ids: Iterable[int] = (),
                 patient_ids: Iterable[int] = ()) -> None:
        """Recompute the kept counts of the given rows and of their parents; drop parents left empty."""
        conn = self.conn
        series_ids = list(set(series_ids))
        study_ids = set(study_ids)
        patient_ids = set(patient_ids)
        dropped = 0
        for chunk in _chunks(series_ids, 500):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE series SET num_instances = (SELECT COUNT(*) FROM instances WHERE series_fk = series.id), "
                f"image_size = (SELECT group_concat(s, ', ') FROM (SELECT DISTINCT Columns || 'x' || Rows AS s "
                f"FROM instances WHERE series_fk = series.id AND Rows IS NOT NULL ORDER BY s)) "
                f"WHERE id IN ({marks})",
                chunk,
            )
            study_ids.update(r[0] for r in conn.execute(f"SELECT study_fk FROM series WHERE id IN ({marks})", chunk))
            dropped += conn.execute(f"DELETE FROM series WHERE id IN ({marks}) AND num_instances = 0", chunk).rowcount
        for chunk in _chunks(list(study_ids), 500):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE studies SET num_series = (SELECT COUNT(*) FROM series WHERE study_fk = studies.id), "
                f"num_instances = (SELECT COALESCE(SUM(num_instances), 0) FROM series WHERE study_fk = studies.id), "
                f"modalities = (SELECT group_concat(m, '\\') FROM (SELECT DISTINCT Modality AS m FROM series "
                f"WHERE study_fk = studies.id AND Modality IS NOT NULL ORDER BY m)) WHERE id IN ({marks})",
                chunk,
            )
            patient_ids.update(r[0] for r in conn.execute(f"SELECT patient_fk FROM studies WHERE id IN ({marks})", chunk))
            dropped += conn.execute(f"DELETE FROM studies WHERE id IN ({marks}) AND num_series = 0", chunk).rowcount
        for chunk in _chunks(list(patient_ids), 500):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE patients SET num_studies = (SELECT COUNT(*) FROM studies WHERE patient_fk = patients.id), "
                f"last_study_date = (SELECT MAX(StudyDate) FROM studies WHERE patient_fk = patients.id) "
                f"WHERE id IN ({marks})",
                chunk,
            )
            dropped += conn.execute(f"DELETE FROM patients WHERE id IN ({marks}) AND num_studies = 0", chunk).rowcount
        if dropped:  # cached ids may name rows that are gone
            self._forget_ids()

    # ---- reading ---------------------------------------------------------------------------------------------

    def patients(self, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = _filter_sql("patient", filter)
        return self._rows(
            f"SELECT id, PatientID, PatientName, PatientBirthDate, PatientSex, num_studies, last_study_date, "
            f"generated_id FROM patients {where} ORDER BY PatientName COLLATE NOCASE, PatientID",
            args,
        )

    def studies(self, patient_ids: Sequence[int] | None = None, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = _in(*_filter_sql("study", filter, "s."), "s.patient_fk", patient_ids)
        return self._rows(
            f"SELECT s.id, s.StudyInstanceUID, s.patient_fk, p.PatientID, p.PatientName, s.StudyDate, s.StudyTime, "
            f"s.StudyDescription, s.AccessionNumber, s.modalities, s.ReferringPhysicianName, s.StudyID, "
            f"s.num_series, s.num_instances FROM studies s JOIN patients p ON p.id = s.patient_fk {where} "
            f"ORDER BY s.StudyDate DESC, s.StudyTime DESC, s.id",
            args,
        )

    def series(self, study_ids: Sequence[int] | None = None, filter: str | None = None) -> list[dict[str, Any]]:
        where, args = _in(*_filter_sql("series", filter, "se."), "se.study_fk", study_ids)
        return self._rows(
            f"SELECT se.id, se.SeriesInstanceUID, se.study_fk, st.StudyInstanceUID, se.SeriesNumber, se.Modality, "
            f"se.SeriesDescription, se.BodyPartExamined, se.num_instances, se.image_size, se.SeriesDate, "
            f"se.SeriesTime FROM series se JOIN studies st ON st.id = se.study_fk {where} "
            f"ORDER BY st.StudyDate DESC, se.study_fk, se.SeriesNumber IS NULL, se.SeriesNumber, se.id",
            args,
        )

    def instances(self, series_ids: Sequence[int] | None = None, filter: str | None = None,
                  columns: str = "*") -> list[dict[str, Any]]:
        where, args = _in(*_filter_sql("instance", filter), "series_fk", series_ids)
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
        table, column = _UID_COLUMN[level]
        rows = self._rows(f"SELECT * FROM {table} WHERE {column} = ?", [uid])
        return rows[0] if rows else None

    def get(self, level: str, row_id: int) -> dict[str, Any] | None:
        """The row of a patient, study, series or instance by its id."""
        rows = self._rows(f"SELECT * FROM {_UID_COLUMN[level][0]} WHERE id = ?", [row_id])
        return rows[0] if rows else None

    def instance_files(self, items: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
        """The instances under (level, id) items, each once, in series and instance order, with absolute paths:
        what a send needs."""
        seen: set[int] = set()
        out = []
        for level, row_id in items:
            for (instance_id,) in self.conn.execute(_INSTANCES_OF[level], (row_id,)).fetchall():
                if instance_id in seen:
                    continue
                seen.add(instance_id)
                uid, sop_class, syntax, path, stored = self.conn.execute(
                    "SELECT SOPInstanceUID, SOPClassUID, TransferSyntaxUID, path, stored FROM instances WHERE id = ?",
                    (instance_id,)).fetchone()
                out.append({"SOPInstanceUID": uid, "SOPClassUID": sop_class, "TransferSyntaxUID": syntax,
                            "path": str(self.abspath(path, bool(stored)))})
        return out

    def delete_preview(self, items: Iterable[tuple[str, int]]) -> tuple[int, int]:
        """What :meth:`delete` of ``items`` would touch: (instances, of which copied files that would go)."""
        ids: set[int] = set()
        for level, row_id in items:
            ids.update(r[0] for r in self.conn.execute(_INSTANCES_OF[level], (row_id,)))
        stored = 0
        for chunk in _chunks(sorted(ids), 500):
            stored += self.conn.execute(
                f"SELECT COUNT(*) FROM instances WHERE stored = 1 AND id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchone()[0]
        return len(ids), stored

    def series_ids(self, items: Iterable[tuple[str, int]]) -> list[int]:
        """The series under patient/study/series items, each once, in browser order."""
        out: dict[int, None] = {}
        for level, row_id in items:
            if level == "series":
                out[row_id] = None
            elif level == "study":
                out.update((r["id"], None) for r in self.series([row_id]))
            elif level == "patient":
                studies = [r["id"] for r in self.studies([row_id])]
                out.update((r["id"], None) for r in self.series(studies))
        return list(out)

    def data_version(self) -> int:
        """Changes whenever another connection commits: how a browser notices data added by the listener or an
        import running in another process (SQLite's ``PRAGMA data_version``)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def resolve(self, uid: str) -> list[tuple[str, int]]:
        """Which rows ``uid`` names: (level, id) for a study, series or instance UID, or a PatientID."""
        found = []
        for level in ("study", "series", "instance", "patient"):
            table, column = _UID_COLUMN[level]
            found += [(level, r[0]) for r in self.conn.execute(f"SELECT id FROM {table} WHERE {column} = ?", (uid,))]
        return found

    def stats(self) -> dict[str, Any]:
        c = self.conn.execute
        counts = {t: c(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("patients", "studies", "series", "instances")}
        stored, stored_bytes = c("SELECT COUNT(*), COALESCE(SUM(file_size), 0) FROM instances WHERE stored = 1").fetchone()
        linked, linked_bytes = c("SELECT COUNT(*), COALESCE(SUM(file_size), 0) FROM instances WHERE stored = 0").fetchone()
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
        return dict(zip(("patients", "studies", "series", "instances"), row))

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
        return [dict(zip(names, row)) for row in cur]

    # ---- deleting --------------------------------------------------------------------------------------------

    def delete(self, items: Iterable[tuple[str, int]], keep_files: bool = False) -> DeleteReport:
        """Delete patients/studies/series/instances given as (level, id): rows go, copied files go (unless
        ``keep_files``), linked files always stay."""
        report = DeleteReport()
        conn = self.conn
        to_remove: list[str] = []
        with _write(conn):
            instance_ids: set[int] = set()
            for level, row_id in items:
                instance_ids.update(r[0] for r in conn.execute(_INSTANCES_OF[level], (row_id,)))
            ids = sorted(instance_ids)
            series_ids: set[int] = set()
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for path, stored, series_fk in conn.execute(
                    f"SELECT path, stored, series_fk FROM instances WHERE id IN ({marks})", chunk
                ):
                    series_ids.add(series_fk)
                    if stored and not keep_files:
                        to_remove.append(path)
                    else:
                        report.files_kept += 1
                conn.execute(f"DELETE FROM instances WHERE id IN ({marks})", chunk)
            report.instances = len(ids)
            before = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("patients", "studies", "series")}
            self._refresh(series_ids=series_ids)
            after = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("patients", "studies", "series")}
            report.patients = before["patients"] - after["patients"]
            report.studies = before["studies"] - after["studies"]
            report.series = before["series"] - after["series"]
        self._forget_ids()
        for rel in to_remove:  # only after the rows are gone for good
            try:
                if conn.execute("SELECT 1 FROM instances WHERE path = ? AND stored = 1", (rel,)).fetchone():
                    continue  # another row (re-imported meanwhile) uses it
                storage.remove_stored(self.root, rel)
                report.files_deleted += 1
            except (OSError, ValueError) as exc:
                report.errors.append(f"{rel}: {exc}")
        return report

    # ---- checking --------------------------------------------------------------------------------------------

    def storage_orphans(self, referenced: set[str] | None = None) -> list[str]:
        """Files in storage that no row references (relative paths, sorted)."""
        if referenced is None:
            referenced = {r[0] for r in self.conn.execute("SELECT path FROM instances WHERE stored = 1")}
        orphans = []
        for dirpath, _dirs, files in os.walk(self.root / storage.STORAGE_DIR):
            for name in files:
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel not in referenced:
                    orphans.append(rel)
        return sorted(orphans)

    def check(self, repair: bool = False) -> CheckReport:
        """Compare rows with files: missing or changed files, unreferenced files in storage, stale temp files.

        With ``repair``: rows of missing files are dropped, changed files re-indexed, orphans in storage indexed
        (they are complete: only finished files are renamed into storage), temp leftovers removed.
        """
        from .header import HeaderError, read_header

        report = CheckReport(repaired=repair)
        referenced: set[str] = set()
        missing_ids: list[int] = []
        changed: list[tuple[int, str, bool]] = []
        for row_id, path, stored, size, mtime in self.conn.execute(
            "SELECT id, path, stored, file_size, file_mtime_ns FROM instances"
        ):
            full = self.abspath(path, bool(stored))
            if stored:
                referenced.add(path)
            try:
                st = full.stat()
            except OSError:
                report.missing.append(str(full))
                missing_ids.append(row_id)
                continue
            if st.st_size != size or st.st_mtime_ns != mtime:
                report.changed.append(str(full))
                changed.append((row_id, path, bool(stored)))
        report.orphans = self.storage_orphans(referenced)
        incoming = self.root / storage.INCOMING_DIR
        if incoming.is_dir():
            report.stale_temp = [str(p) for p in incoming.iterdir() if not _owner_alive(p.name)]
        if not repair:
            return report
        if missing_ids:
            self.delete(("instance", i) for i in missing_ids)
            report.dropped = len(missing_ids)
        batch: list[FileRecord] = []
        for row_id, path, stored in changed:
            full = self.abspath(path, stored)
            source = self.conn.execute("SELECT source_path, source_size, source_mtime_ns FROM instances "
                                       "WHERE id = ?", (row_id,)).fetchone()
            # the old row goes whatever the file now says (its SOPInstanceUID may have changed); the file stays
            self.delete([("instance", row_id)], keep_files=True)
            try:
                batch.append(file_record(read_header(str(full)), path, stored, full,
                                         source=tuple(source) if stored else None))
                report.reindexed += 1
            except (HeaderError, OSError) as exc:
                report.errors.append(f"{full}: {exc}; its row was dropped, the file left in place")
                report.dropped += 1
        for rel in report.orphans:
            full = self.root / rel
            try:
                batch.append(file_record(read_header(str(full)), rel, True, full))
                report.indexed_orphans += 1
            except (HeaderError, OSError) as exc:
                report.errors.append(f"{full}: cannot index ({exc}); left in place")
        for chunk in _chunks(batch, 1000):
            self.add_files(chunk)
        storage.clean_incoming(self.root)
        return report


def file_record(header: dict[str, Any], path: str, stored: bool, full: Path,
                source: tuple[str, int, int] | None = None) -> FileRecord:
    """A FileRecord for a file at ``full`` (stat'ed now); ``source`` defaults to the file itself."""
    st = full.stat()
    fill_patient_id(header)
    src = source or (str(full), st.st_size, st.st_mtime_ns)
    return FileRecord(header, path, stored, st.st_size, st.st_mtime_ns, *src)


# ((patient, study, series), instance) rows of one file; the instance row lacks only series_fk.
Prepared = tuple[tuple[tuple, tuple, tuple], tuple]
_TAG_COLUMNS = _INSTANCE_COLUMNS[14:]


def prepare(rec: FileRecord) -> Prepared:
    """Turn a parsed file into database rows: cheap to send between processes, ready for executemany."""
    h = rec.header
    get = h.get
    name = get("PatientName")
    return (
        ((h["PatientID"], normalise_name(name), name, get("PatientBirthDate"), get("PatientSex"),
          int(bool(get("generated_id")))),
         (h["StudyInstanceUID"], get("StudyDate"), get("StudyTime"), get("StudyDescription"),
          get("AccessionNumber"), get("ReferringPhysicianName"), get("StudyID")),
         (h["SeriesInstanceUID"], get("SeriesNumber"), get("Modality"), get("SeriesDescription"),
          get("BodyPartExamined"), get("SeriesDate"), get("SeriesTime"))),
        (h["SOPInstanceUID"], get("TransferSyntaxUID"), rec.path, int(rec.stored), rec.file_size, rec.file_mtime_ns,
         rec.source_path, rec.source_size, rec.source_mtime_ns, time.time(), int(bool(get("has_pixels"))),
         get("pixel_offset"), get("frames"), *[get(kw) for kw in _TAG_COLUMNS]),
    )


def fill_patient_id(header: dict[str, Any]) -> bool:
    """Give a header without PatientID a stable generated one (from the name and birth date, else the study).

    Returns True when an ID was generated, so that the caller can warn."""
    if header.get("PatientID"):
        return False
    name = normalise_name(header.get("PatientName"))
    basis = f"{name}|{header.get('PatientBirthDate') or ''}" if name else f"study|{header.get('StudyInstanceUID')}"
    header["PatientID"] = "DICOMTUI-" + hashlib.sha1(basis.encode("utf-8")).hexdigest()[:12].upper()
    header["generated_id"] = True
    return True


_SERIES_FIELDS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality")

_UID_COLUMN = {
    "patient": ("patients", "PatientID"),
    "study": ("studies", "StudyInstanceUID"),
    "series": ("series", "SeriesInstanceUID"),
    "instance": ("instances", "SOPInstanceUID"),
}
_INSTANCES_OF = {  # instance ids of a row, in the order a viewer or a send wants them
    "instance": "SELECT id FROM instances WHERE id = ?",
    "series": "SELECT id FROM instances WHERE series_fk = ? ORDER BY InstanceNumber, id",
    "study": "SELECT i.id FROM instances i JOIN series s ON s.id = i.series_fk WHERE s.study_fk = ? "
             "ORDER BY s.SeriesNumber, s.id, i.InstanceNumber, i.id",
    "patient": "SELECT i.id FROM instances i JOIN series s ON s.id = i.series_fk "
               "JOIN studies st ON st.id = s.study_fk WHERE st.patient_fk = ? "
               "ORDER BY st.id, s.SeriesNumber, s.id, i.InstanceNumber, i.id",
}


def _ours(name: str) -> bool:
    return name.startswith(DB_FILE) or name in (storage.STORAGE_DIR, storage.INCOMING_DIR)


def _connect(db_file: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(db_file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
    except sqlite3.OperationalError as exc:
        raise DatabaseError(f"{db_file}: {exc} (another process holds it)") from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{db_file} is not a usable SQLite database: {exc}") from None
    conn.execute("PRAGMA synchronous = NORMAL")
    # SQLite's LIKE folds only ASCII case: filters with other letters (Müller, Ørsted) compare casefolded text
    conn.create_function("casefold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True)
    # Foreign keys are declared but not enforced: the code keeps them (inserts parents first, deletes
    # children first) and tests assert `PRAGMA foreign_key_check`; enforcing costs ~15% of an import.
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _retry_locked(action, seconds: float = BUSY_TIMEOUT_S):
    """Switching to WAL needs a moment alone with the file and does not wait for the busy timeout: retry."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection, db_file: Path) -> None:
    """Create the schema in a new file, or bring an older one up to SCHEMA_VERSION; refuse anything else.

    A database already at SCHEMA_VERSION is only read (no write lock: readers never wait for writers)."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if meta.get("app") == APP_ID and meta.get("schema_version") == str(SCHEMA_VERSION):
            return
    except sqlite3.OperationalError:
        pass  # no meta table (yet): decide under the write lock
    with _write(conn):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            for statement in _statements(resources.files("dicomtui.core").joinpath("schema.sql").read_text()):
                conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))])
            return
        if "meta" not in tables:
            raise DatabaseError(f"{db_file} is a SQLite file but not a dicomtui database; nothing was changed")
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if meta.get("app") != APP_ID:
            raise DatabaseError(f"{db_file} is not a dicomtui database; nothing was changed")
        version = int(meta.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{db_file} has schema version {version}, made by a newer dicomtui (this one knows up to "
                f"{SCHEMA_VERSION}); upgrade dicomtui to open it"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[target](conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(target),))


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Version 2: per-frame geometry of multi-frame files (examined without reading them). Files imported
    before have none: re-importing them fills it in."""
    conn.execute("ALTER TABLE instances ADD COLUMN frames TEXT")


# Code migrations: version -> function bringing a database from version-1 to version.
_MIGRATIONS: dict[int, Any] = {2: _migrate_to_2}


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements (comments may hold semicolons: let SQLite judge completeness)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


class _write:
    """``with _write(conn):`` one IMMEDIATE transaction, rolled back on error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _chunks(items: Sequence[Any], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _owner_alive(name: str) -> bool:
    pid = name.split("-", 1)[0]
    return pid.isdigit() and storage._pid_alive(int(pid))


# ---- filters -------------------------------------------------------------------------------------------------

def _filter_sql(level: str, text: str | None, alias: str = "") -> tuple[str, list[Any]]:
    """WHERE clause for a search box: every word must match some shown column, case-insensitively.

    A word without wildcards matches anywhere in a value; with ``*`` or ``?`` it must match a whole value
    (``doe*`` = values starting with "doe").
    """
    if not text or not text.strip():
        return "", []
    columns = SHOWN_COLUMNS[level]
    clauses, args = [], []
    for word in text.split():
        if "*" in word or "?" in word:
            pattern = _like_escape(word).replace("*", "%").replace("?", "_")
        else:
            pattern = f"%{_like_escape(word)}%"
        if word.isascii():
            tests = [f"CAST({alias}{c} AS TEXT) LIKE ? ESCAPE '\\'" for c in columns]
        else:
            tests = [f"casefold(CAST({alias}{c} AS TEXT)) LIKE ? ESCAPE '\\'" for c in columns]
            pattern = pattern.casefold()
        clauses.append("(" + " OR ".join(tests) + ")")
        args += [pattern] * len(columns)
    return "WHERE " + " AND ".join(clauses), args


def _in(where: str, args: list[Any], column: str, ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    """Add ``column IN (ids)`` to a WHERE clause (nothing when ids is None: no restriction)."""
    if ids is None:
        return where, args
    clause = f"{column} IN ({','.join('?' * len(ids))})"
    return (f"{where} AND {clause}" if where else f"WHERE {clause}"), [*args, *ids]


def _like_escape(word: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", word)
