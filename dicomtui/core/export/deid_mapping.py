"""The de-identification mapping: original PatientID → pseudonym, date offset and original PatientName; original
UID → new UID.

Kept in the database folder (``deidentification-map.sqlite``, mode 0600, never exported) so that the same patient
gets the same pseudonym, the same UID the same new UID and the same date offset in every job, and so that a user
can re-identify their own data (PS3.15 E.1: the mapping is the "key" a site keeps). Entries are looked up one by
one (primary keys, and an index on the new values for re-identification): a job of 100,000 UIDs costs the same
beside a mapping of millions (the JSON file of the first version was read and rewritten whole by every job;
``bench/deid_mapping_bench.py``). An existing ``deidentification-map.json`` is migrated once, then renamed
``….json.migrated``.

Jobs at once (a listener forwarding de-identified for days while the user runs ``deidentify``, ``export
--deidentify`` or ``send --deidentify`` on the same database, in threads or processes): a new entry is committed
the moment it is made, BEFORE any file uses it, by ``INSERT OR IGNORE`` and read back in WAL mode with a busy
timeout, so whichever job inserts first wins and every job uses the winner's value. Each commit is one small
WAL append (synchronous=NORMAL: no fsync per entry, about 50 µs); :meth:`DeidMapping.save` makes them durable.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..database.schema import retry_locked
from ..errors import DicomtuiError

__all__ = ["JSON_MAPPING_NAME", "MAPPING_NAME", "DeidMapping", "MappingError", "PatientPseudonym",
           "database_mapping"]

MAPPING_NAME = "deidentification-map.sqlite"
JSON_MAPPING_NAME = "deidentification-map.json"  # the first version's file, migrated once
BUSY_TIMEOUT_S = 30  # how long a job waits for another's commit (each is one small WAL append)
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
    ``path`` holds them: a new entry is committed there as it is made (``patients`` / ``uids`` are then caches of
    the entries this job used). ``read_only``: new entries stay in memory, nothing is written (a preview)."""

    path: Path | None = None
    patients: dict[str, PatientPseudonym] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    _conn: sqlite3.Connection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one connection, several threads

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> DeidMapping:
        """The mapping in the SQLite file ``path`` (made on the first new entry or save). Raises MappingError
        when it cannot be read."""
        if path is None:
            return cls()
        mapping = cls(Path(path))
        if mapping.path is not None and mapping.path.exists():
            mapping._db()  # a file that is not a mapping is said now, not in the middle of a job
        return mapping

    def scratch(self) -> DeidMapping:
        """A mapping that sees this one's entries and adds its own in memory only (never saved)."""
        return DeidMapping(self.path, dict(self.patients), dict(self.uids), read_only=True)

    @property
    def _shared(self) -> bool:
        """New entries go into the file at once (other jobs may be using it)."""
        return self.path is not None and not self.read_only

    # ---- lookups ---------------------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection | None:
        """The connection, the file made when there is none (None without a path). Raises MappingError."""
        if self._conn is None and self.path is not None:
            self._conn = _connect(self.path)
        return self._conn

    def _one(self, sql: str, key: str) -> Any:
        exists = self.path is not None and self.path.exists()
        conn = self._conn or (self._db() if exists else None)  # a lookup does not make the file
        if conn is None:
            return None
        try:
            with self._lock:
                return conn.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise MappingError(f"cannot read the de-identification mapping {self.path}: {exc}") from exc

    def _insert(self, sql: str, row: tuple[Any, ...], read_back: str, key: str) -> Any:
        """``INSERT OR IGNORE`` ``row`` (its own transaction, waiting for another job's with the busy timeout),
        then the row the file holds for ``key``: this job's, or the one another job inserted first (None when
        the row was ignored for another UNIQUE value: the caller draws again). Raises MappingError."""
        conn = self._db()
        assert conn is not None  # a shared mapping has a path
        try:
            with self._lock:
                conn.execute(sql, row)
                return conn.execute(read_back, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise MappingError(f"cannot write the de-identification mapping {self.path}: {exc}") from exc

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
        if not self._shared:  # entries only this object holds (in memory, or a preview's)
            for original, value in self.uids.items():
                if value == new:
                    return original
        row = self._one("SELECT original FROM uids WHERE new = ?", new)
        return None if row is None else row[0]

    # ---- entries made on first use ---------------------------------------------------------------------------

    def patient(self, key: str, name: str = "") -> PatientPseudonym:
        """The pseudonym of the patient ``key`` (original PatientID; ``name`` its PatientName, kept for
        re-identification), made on first use: in a shared mapping committed before it is returned, so two jobs
        at once get the same one. Raises MappingError."""
        found = self.known_patient(key)
        while found is None:
            pseudonym = f"DEID-{secrets.token_hex(4).upper()}"
            offset = -secrets.choice(range(-OFFSET_DAYS[1], -OFFSET_DAYS[0] + 1))
            if not self._shared:
                if not self._pseudonym_taken(pseudonym):
                    found = self.patients[key] = PatientPseudonym(pseudonym, offset, name)
                continue
            row = self._insert("INSERT OR IGNORE INTO patients VALUES (?, ?, ?, ?)", (key, pseudonym, offset, name),
                               "SELECT pseudonym, offset_days, name FROM patients WHERE original = ?", key)
            if row is not None:  # None: the pseudonym is another patient's; draw again
                found = self.patients[key] = PatientPseudonym(row[0], int(row[1]), row[2])
        return found

    def _pseudonym_taken(self, pseudonym: str) -> bool:
        return any(p.pseudonym == pseudonym for p in self.patients.values()) or \
            self._one("SELECT 1 FROM patients WHERE pseudonym = ?", pseudonym) is not None

    def uid(self, original: str) -> str:
        """The new UID of ``original`` (a 2.25 UUID-derived UID, PS3.5 B.2: what pydicom's ``generate_uid(None)``
        makes, without its validation, which took half of a job's time), made on first use: in a shared mapping
        committed before it is returned, so two jobs at once get the same one. Raises MappingError."""
        new = self.known_uid(original)
        while new is None:
            candidate = f"2.25.{uuid.uuid4().int}"
            if not self._shared:
                new = self.uids[original] = candidate
                continue
            row = self._insert("INSERT OR IGNORE INTO uids VALUES (?, ?)", (original, candidate),
                               "SELECT new FROM uids WHERE original = ?", original)
            if row is not None:
                new = self.uids[original] = row[0]
        return new

    # ---- saving ----------------------------------------------------------------------------------------------

    def save(self) -> None:
        """Make this job's entries durable in ``path`` (they were committed as they were made; this syncs the
        write-ahead log, so a power cut after it keeps them); the file is made if the job made no entry.
        Nothing without a path, or read-only. Raises MappingError."""
        if not self._shared:
            return
        conn = self._db()
        assert conn is not None
        try:
            with self._lock:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # synchronous=NORMAL syncs the WAL first
        except sqlite3.Error as exc:
            raise MappingError(f"cannot write the de-identification mapping {self.path}: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _connect(path: Path) -> sqlite3.Connection:
    """The mapping file, created (mode 0600) with its tables when new, an older JSON mapping beside it migrated
    once; autocommit (each new entry its own transaction), WAL, a 30 s busy timeout (another job's entry being
    committed). Safe when several processes open a new file at once. Raises MappingError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # not O_EXCL: another job may make it too
        conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        # two jobs opening a new mapping at once: the switch to WAL does not wait for the busy timeout
        retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"), BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous=NORMAL")  # a commit appends to the WAL without fsync; save() syncs
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: the two UID b-trees of a million-UID mapping stay warm
        conn.executescript(_SCHEMA)
        _migrate_json(conn, path.with_name(JSON_MAPPING_NAME))
        return conn
    except (OSError, sqlite3.Error) as exc:
        raise MappingError(f"cannot open the de-identification mapping {path}: {exc}") from exc


def _migrate_json(conn: sqlite3.Connection, old: Path) -> None:
    """Copy the first version's JSON mapping (``{"patients": {id: {pseudonym, offset_days}}, "uids": {..}}``)
    into ``conn`` and rename it ``….migrated``; nothing when there is none (or another job migrated it just
    now). Raises MappingError."""
    try:
        data: dict[str, Any] = json.loads(old.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise MappingError(f"cannot read the de-identification mapping {old} to migrate it: {exc}") from exc
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT OR IGNORE INTO patients VALUES (?, ?, ?, '')",
                         [(k, v["pseudonym"], int(v["offset_days"])) for k, v in data.get("patients", {}).items()])
        conn.executemany("INSERT OR IGNORE INTO uids VALUES (?, ?)", dict(data.get("uids", {})).items())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    with contextlib.suppress(FileNotFoundError):  # another job migrated it at the same time: same rows
        old.rename(old.with_name(old.name + ".migrated"))


def database_mapping(db_folder: str | os.PathLike[str]) -> DeidMapping:
    """The mapping kept in the database folder ``db_folder`` (every job of that database uses it); an older JSON
    mapping there is migrated on first use. Raises MappingError."""
    folder = Path(db_folder)
    mapping = DeidMapping.load(folder / MAPPING_NAME)
    if mapping._conn is None and (folder / JSON_MAPPING_NAME).exists():
        mapping._conn = _connect(folder / MAPPING_NAME)  # migrated now: its entries are this job's too
    return mapping
