"""The de-identification mapping: original PatientID → pseudonym, date offset and original PatientName; original
UID → new UID.

Kept in the database folder (``deidentification-map.sqlite``, mode 0600, never exported) so that the same patient
gets the same pseudonym, the same UID the same new UID and the same date offset in every job, and so that a user
can re-identify their own data (PS3.15 E.1: the mapping is the "key" a site keeps). A job looks entries up one by
one (primary keys, and an index on the new values for re-identification) and appends its new ones in one
transaction at :meth:`DeidMapping.save`: a job of 100,000 UIDs costs the same beside a mapping of millions (the JSON
file of the first version was read and rewritten whole by every job; ``bench/deid_mapping_bench.py``). An existing
``deidentification-map.json`` is migrated once, then renamed ``….json.migrated``.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DicomtuiError

__all__ = ["JSON_MAPPING_NAME", "MAPPING_NAME", "DeidMapping", "MappingError", "PatientPseudonym",
           "database_mapping"]

MAPPING_NAME = "deidentification-map.sqlite"
JSON_MAPPING_NAME = "deidentification-map.json"  # the first version's file, migrated once
OFFSET_DAYS = (-3650, -365)  # the random date shift per patient: between one and ten years back (whole days)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (original TEXT PRIMARY KEY, pseudonym TEXT NOT NULL UNIQUE,
                                     offset_days INTEGER NOT NULL, name TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS uids (original TEXT PRIMARY KEY, new TEXT NOT NULL UNIQUE) WITHOUT ROWID;
"""


class MappingError(DicomtuiError):
    """The de-identification mapping file cannot be read or written; the message names the file."""


@dataclass
class PatientPseudonym:
    """A patient's pseudonym (PatientID and PatientName of the output), date offset in whole days, and original
    PatientName (empty when it was not recorded)."""

    pseudonym: str
    offset_days: int
    name: str = ""


@dataclass
class DeidMapping:
    """Original → de-identified values. ``path`` None keeps them in memory only (one job); else the SQLite file
    ``path`` holds them, and the entries this job made wait in ``patients`` / ``uids`` until :meth:`save`.
    ``read_only``: :meth:`save` writes nothing (a preview)."""

    path: Path | None = None
    patients: dict[str, PatientPseudonym] = field(default_factory=dict)  # this job's (all, without a path)
    uids: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    _conn: sqlite3.Connection | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> DeidMapping:
        """The mapping in the SQLite file ``path`` (made on the first save). Raises MappingError when it cannot
        be read."""
        if path is None:
            return cls()
        mapping = cls(Path(path))
        if mapping.path is not None and mapping.path.exists():
            mapping._db()  # a file that is not a mapping is said now, not in the middle of a job
        return mapping

    def scratch(self) -> DeidMapping:
        """A mapping that sees this one's entries and adds its own in memory only (never saved)."""
        return DeidMapping(self.path, dict(self.patients), dict(self.uids), read_only=True)

    # ---- lookups ---------------------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path is not None and self.path.exists():
            self._conn = _connect(self.path)
        return self._conn

    def _one(self, sql: str, key: str) -> Any:
        conn = self._db()
        if conn is None:
            return None
        try:
            return conn.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise MappingError(f"cannot read the de-identification mapping {self.path}: {exc}") from exc

    def known_patient(self, key: str) -> PatientPseudonym | None:
        """The pseudonym of the patient ``key`` (original PatientID), None when there is none yet."""
        found = self.patients.get(key)
        if found is None:
            row = self._one("SELECT pseudonym, offset_days, name FROM patients WHERE original = ?", key)
            if row is not None:
                found = self.patients[key] = PatientPseudonym(row[0], int(row[1]), row[2])
        return found

    def known_uid(self, original: str) -> str | None:
        """The new UID of ``original``, None when there is none yet."""
        found = self.uids.get(original)
        if found is None:
            row = self._one("SELECT new FROM uids WHERE original = ?", original)
            if row is not None:
                found = self.uids[original] = row[0]
        return found

    def original_patient(self, pseudonym: str) -> tuple[str, PatientPseudonym] | None:
        """(original PatientID, its entry) of a ``pseudonym``, None when the mapping has none (re-identify)."""
        for key, entry in self.patients.items():
            if entry.pseudonym == pseudonym:
                return key, entry
        row = self._one("SELECT original, offset_days, name FROM patients WHERE pseudonym = ?", pseudonym)
        return None if row is None else (row[0], PatientPseudonym(pseudonym, int(row[1]), row[2]))

    def original_uid(self, new: str) -> str | None:
        """The original UID a ``new`` one replaced, None when the mapping has none (re-identify)."""
        for original, value in self.uids.items():
            if value == new:
                return original
        row = self._one("SELECT original FROM uids WHERE new = ?", new)
        return None if row is None else row[0]

    # ---- entries made on first use ---------------------------------------------------------------------------

    def patient(self, key: str, name: str = "") -> PatientPseudonym:
        """The pseudonym of the patient ``key`` (original PatientID; ``name`` its PatientName, kept for
        re-identification), made on first use."""
        found = self.known_patient(key)
        if found is None:
            pseudonym = f"DEID-{secrets.token_hex(4).upper()}"
            while self._pseudonym_taken(pseudonym):
                pseudonym = f"DEID-{secrets.token_hex(4).upper()}"
            offset = -secrets.choice(range(-OFFSET_DAYS[1], -OFFSET_DAYS[0] + 1))
            found = self.patients[key] = PatientPseudonym(pseudonym, offset, name)
        return found

    def _pseudonym_taken(self, pseudonym: str) -> bool:
        return any(p.pseudonym == pseudonym for p in self.patients.values()) or \
            self._one("SELECT 1 FROM patients WHERE pseudonym = ?", pseudonym) is not None

    def uid(self, original: str) -> str:
        """The new UID of ``original`` (a 2.25 UUID-derived UID, PS3.5 B.2: what pydicom's ``generate_uid(None)``
        makes, without its validation, which took half of a job's time), made on first use."""
        new = self.known_uid(original)
        if new is None:
            new = self.uids[original] = f"2.25.{uuid.uuid4().int}"
        return new

    # ---- saving ----------------------------------------------------------------------------------------------

    def save(self) -> None:
        """Append this job's entries to ``path`` in one transaction (nothing without a path, or read-only);
        entries already there are kept as they are. Raises MappingError, also when another job saved other
        values for the same originals meanwhile (two jobs on one database at once): this job's files then
        disagree with the mapping, and the sentence says to run the job again."""
        if self.path is None or self.read_only:
            return
        try:
            conn = self._db() or _connect(self.path)
            self._conn = conn
            with conn:
                differ = _append(conn, "patients", [(k, v.pseudonym, v.offset_days, v.name)
                                                    for k, v in self.patients.items()], "pseudonym")
                differ += _append(conn, "uids", list(self.uids.items()), "new")
        except (OSError, sqlite3.Error) as exc:
            raise MappingError(f"cannot write the de-identification mapping {self.path}: {exc}") from exc
        self.patients.clear()  # now in the file, looked up from there
        self.uids.clear()
        if differ:
            raise MappingError(f"another job de-identified the same data at the same time: {differ} pseudonyms or "
                               f"UIDs of this job differ from those kept in {self.path}; run this job again so that "
                               f"its files use the kept ones")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _append(conn: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]], value: str) -> int:
    """Insert ``rows`` into ``table`` where their original is new (in the caller's transaction); how many of
    them the table holds with another ``value`` (or not at all: a pseudonym another job took)."""
    if not rows:
        return 0
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS job_{table} AS SELECT * FROM {table} WHERE 0")
    conn.execute(f"DELETE FROM job_{table}")
    conn.executemany(f"INSERT INTO job_{table} VALUES ({', '.join('?' * len(columns))})", rows)
    conn.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM job_{table}")
    return int(conn.execute(f"SELECT count(*) FROM job_{table} AS j LEFT JOIN {table} AS t USING (original) "
                            f"WHERE t.{value} IS NOT j.{value}").fetchone()[0])


def _connect(path: Path) -> sqlite3.Connection:
    """The mapping file, created (mode 0600) with its tables when new, an older JSON mapping beside it migrated
    once. Raises MappingError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        if new:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)  # a job's worker thread saves
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: the two UID b-trees of a million-UID mapping stay warm
        conn.executescript(_SCHEMA)
        _migrate_json(conn, path.with_name(JSON_MAPPING_NAME))
        return conn
    except (OSError, sqlite3.Error) as exc:
        raise MappingError(f"cannot open the de-identification mapping {path}: {exc}") from exc


def _migrate_json(conn: sqlite3.Connection, old: Path) -> None:
    """Copy the first version's JSON mapping (``{"patients": {id: {pseudonym, offset_days}}, "uids": {..}}``)
    into ``conn`` and rename it ``….migrated``; nothing when there is none. Raises MappingError."""
    if not old.exists():
        return
    try:
        data: dict[str, Any] = json.loads(old.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MappingError(f"cannot read the de-identification mapping {old} to migrate it: {exc}") from exc
    with conn:
        conn.executemany("INSERT OR IGNORE INTO patients VALUES (?, ?, ?, '')",
                         [(k, v["pseudonym"], int(v["offset_days"])) for k, v in data.get("patients", {}).items()])
        conn.executemany("INSERT OR IGNORE INTO uids VALUES (?, ?)", dict(data.get("uids", {})).items())
    old.rename(old.with_name(old.name + ".migrated"))


def database_mapping(db_folder: str | os.PathLike[str]) -> DeidMapping:
    """The mapping kept in the database folder ``db_folder`` (every job of that database uses it); an older JSON
    mapping there is migrated on first use. Raises MappingError."""
    folder = Path(db_folder)
    mapping = DeidMapping.load(folder / MAPPING_NAME)
    if mapping._conn is None and (folder / JSON_MAPPING_NAME).exists():
        mapping._conn = _connect(folder / MAPPING_NAME)  # migrated now: its entries are this job's too
    return mapping
