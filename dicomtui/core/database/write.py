"""Writing batches of files: one IMMEDIATE transaction per batch; parents created or updated from the newest
file; the counts kept in the parent rows (studies per patient, instances per series, modalities in a study)
refreshed for the rows a batch touched, so that listing 10,000 studies never counts a million instances."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import storage
from ..header import present
from .records import INSTANCE_COLUMNS, FileRecord, Prepared, prepare
from .schema import DB_FILE
from .schema import chunks as _chunks
from .schema import write as _write

# (rows, {SOPInstanceUID: (source_path, source_size, source_mtime_ns, TransferSyntaxUID, imported_at)}) -> rows
Settle = Callable[[Sequence[Prepared], dict[str, tuple]], Sequence[Prepared]]
SQLITE_FULL = 13  # "database or disk is full" (sqlite3.SQLITE_FULL since Python 3.11)

# Every column is set on a conflict: a column the insert leaves out is NULL in ``excluded`` (no instance column
# but has_pixels has a default, and has_pixels is always given), as when the row bound it as None.
_ON_CONFLICT = " ON CONFLICT (SOPInstanceUID) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in INSTANCE_COLUMNS if c != "SOPInstanceUID")


@functools.lru_cache(maxsize=64)
def _upsert_sql(mask: bytes) -> str:
    """The upsert of an instance row naming only the columns ``mask`` (from :func:`header.present`) marks.
    Raises sqlite3.ProgrammingError for a row that has not one value per column (as binding it would)."""
    if len(mask) != len(INSTANCE_COLUMNS):
        raise sqlite3.ProgrammingError(f"an instance row has {len(mask)} values; the upsert needs "
                                       f"{len(INSTANCE_COLUMNS)}")
    columns = list(itertools.compress(INSTANCE_COLUMNS, mask))
    return f"INSERT INTO instances ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})" + _ON_CONFLICT


def _upsert_instances(conn: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Insert or update instance rows (in INSTANCE_COLUMNS order), in their order: each run of rows with the
    same columns present is one executemany naming only those columns. The sqlite3 module binds str, int and
    float directly but looks a None up in its adapters first (~0.3 µs each): a typical row has ~10 Nones of 45
    values, which made a third of the insert's cost (measured: 9.6 → 6.4 µs a row, bench/import_bench.py)."""
    runs: list[tuple[bytes, list[tuple]]] = []
    last = None
    for row in rows:
        mask, values = present(row)
        if mask != last:
            runs.append((mask, []))
            last = mask
        runs[-1][1].append(values)
    for mask, values in runs:
        conn.executemany(_upsert_sql(mask), values)


@dataclass
class BatchResult:
    """What one batch added (rows new to the database) and updated (instances already known by SOP UID)."""

    patients_added: int = 0
    studies_added: int = 0
    series_added: int = 0
    instances_added: int = 0
    instances_updated: int = 0
    vanished: list[str] = field(default_factory=list)  # source paths of stored rows whose file was gone: not written
    # stored copies the batch superseded, left for the caller to remove (add_prepared's ``defer_removal``)
    superseded: list[str] = field(default_factory=list)


@dataclass
class _Touched:
    """Rows whose kept counts a batch must refresh."""

    series: set[int] = field(default_factory=set)
    studies: set[int] = field(default_factory=set)
    patients: set[int] = field(default_factory=set)


class Writing:
    """The writing half of :class:`~dicomtui.core.database.DicomDatabase` (a mixin: ``root`` and ``conn`` are
    the database's)."""

    root: Path
    conn: sqlite3.Connection
    _series_ids: dict[str, int]
    _study_ids: dict[str, int]
    _patient_ids: dict[tuple[str, str], int]

    def bulk_writes(self, on: bool) -> None:
        """Around a large import: checkpoint the WAL every 64 MiB instead of every 4 MiB (each checkpoint
        costs two fsyncs), then checkpoint once at the end so that the WAL does not stay large."""
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {16384 if on else 1000}")
        if not on:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != SQLITE_FULL:
                    raise  # a full disk only delays it: the rows are safe in the WAL, a later checkpoint moves them

    def add_files(self, records: Sequence[FileRecord], *, defer_removal: bool = False) -> BatchResult:
        """Insert or update a batch of parsed files in one transaction; the newer file wins for a known SOP UID."""
        return self.add_prepared([prepare(r) for r in records], defer_removal=defer_removal)

    def add_prepared(self, prepared: Sequence[Prepared], settle: Settle | None = None, *,
                     defer_removal: bool = False) -> BatchResult:
        """:meth:`add_files` for records already turned into rows by :func:`prepare` (in a worker process).

        ``settle``: called in the batch's transaction with the rows and, per SOPInstanceUID of them already in the
        database, its (source_path, source_size, source_mtime_ns, TransferSyntaxUID, imported_at); returns the
        rows to write (the importer's rule for several files of one UID, :mod:`dicomtui.core.duplicates`). One
        lookup of the batch's UIDs serves both it and the writer (was two: ~1 µs a row).

        The stored copies the batch supersedes with files elsewhere are removed after the commit
        (:meth:`remove_superseded`); ``defer_removal``: listed in ``superseded`` for the caller to remove later
        instead (the edit does it after its next batch's ``syncfs``, which makes this commit durable for free)."""
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
                found = self._instances_of([inst[0] for _hier, inst in prepared])
                if settle is not None:
                    prepared = settle(prepared, {uid: row[3:] for uid, row in found.items()})
                existing = {uid: row[:3] for uid, row in found.items()}
                rows = []
                last_hier = None
                series_fk = 0
                for hier, inst in prepared:
                    if hier is not last_hier:  # files come in runs of one series: resolve it once per run
                        last_hier = hier
                        series_fk = ids.get(hier[2][0]) or self._series_id(*hier, result, touched)
                        touched.series.add(series_fk)
                    rows.append((inst[0], series_fk, *inst[1:]))
                rows = self._with_files(rows, result)
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
                _upsert_instances(conn, rows)
                self._refresh(touched.series, touched.studies, touched.patients)
        finally:
            self._forget_ids()
        if defer_removal:
            result.superseded = replaced
        elif replaced:
            self.remove_superseded(replaced)
        return result

    def remove_superseded(self, rels: Sequence[str], *, flushed: bool = False) -> None:
        """Stored copies that committed batches superseded with files elsewhere: ours to remove, once the commit is
        on disk (the journal flushed, unless ``flushed`` says the caller's ``syncfs`` did: with ``synchronous =
        NORMAL`` a WAL commit reaches the disk only at a checkpoint) and under the write lock again, each only when
        no row names it (an import in another process may have stored that path meanwhile; it checks its file
        under the same lock). Removed inside the transaction instead, a process killed before the commit left rows
        naming files already deleted."""
        if not rels:
            return
        if not flushed:
            _flush_journal(self.root / DB_FILE)
        with _write(self.conn):
            for rel in rels:
                if not self.conn.execute("SELECT 1 FROM instances WHERE path = ? AND stored = 1",
                                         (rel,)).fetchone():
                    with contextlib.suppress(OSError, ValueError):  # left behind: `db check` names it unreferenced
                        storage.remove_stored(self.root, rel)

    def _instances_of(self, uids: list[str]) -> dict[str, tuple]:
        """(path, stored, series_fk, source_path, source_size, source_mtime_ns, TransferSyntaxUID, imported_at)
        of the instances of ``uids`` that are in the database."""
        found = {}
        for chunk in _chunks(uids, 500):
            marks = ",".join("?" * len(chunk))
            for uid, *row in self.conn.execute(
                f"SELECT SOPInstanceUID, path, stored, series_fk, source_path, source_size, source_mtime_ns, "
                f"TransferSyntaxUID, imported_at FROM instances WHERE SOPInstanceUID IN ({marks})", chunk,
            ):
                found[uid] = tuple(row)
        return found

    def _with_files(self, rows: list[tuple], result: BatchResult) -> list[tuple]:
        """The rows whose file is there, checked under the write lock: a committed row always has its file.

        A stored copy is renamed into ``dicom/`` before its row is written; ``rm`` of its study in another process
        (which deletes files under the write lock too) may remove it meanwhile. Such rows are left out and their
        source paths listed in ``result.vanished`` (the importer rejects them). Linked files are not ours: not
        checked. Costs one stat per stored row (~2 µs)."""
        root = self.root
        kept = [r for r in rows if not r[4] or os.path.exists(root / r[3])]
        if len(kept) < len(rows):
            present = {id(r) for r in kept}
            result.vanished += [r[7] or r[3] for r in rows if id(r) not in present]
        return kept

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
            patient_ids.update(
                r[0] for r in conn.execute(f"SELECT patient_fk FROM studies WHERE id IN ({marks})", chunk))
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


def _flush_journal(db_file: Path) -> None:
    """The commits made so far durable: ``fsync`` of the WAL (or, in rollback-journal mode, of the database file,
    which then holds them)."""
    wal = Path(f"{db_file}-wal")
    target = wal if wal.exists() else db_file
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
