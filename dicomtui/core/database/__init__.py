"""The local DICOM database: a folder with ``dicomtui.sqlite``, managed storage ``dicom/`` and ``incoming/``.

:class:`DicomDatabase` is the one class the faces use; its methods live in one module per concern:
``schema`` (connect: WAL, busy timeout; migrations), ``records`` (``FileRecord.from_file``: a file becomes a
record), ``write`` (batches), ``queries`` (reading), ``filters`` (the search-box SQL over ``levels.COLUMNS``)
and ``maintenance`` (delete, check/repair). One writer transaction per batch (``BEGIN IMMEDIATE``), WAL mode and a
busy timeout, so that an importer, a listener and a browser can share one database across processes. Every
SQLite failure (locked, damaged, read-only, disk full) reaches the caller as a DatabaseError with a sentence.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import storage
from ..errors import DatabaseError
from .filesystem import network_filesystem, warn_once
from .maintenance import CheckReport, DeleteReport, Maintenance, damaged, rebuild, stored_files
from .queries import Reading
from .records import FileRecord, Prepared, fill_patient_id, prepare, read_checked
from .schema import (
    BUSY_TIMEOUT_S,
    DAMAGED_HINT,
    DB_FILE,
    SCHEMA_VERSION,
    Journal,
    connect,
    connect_read_only,
    migrate,
    ours,
    read_only_sentence,
    sentence,
)
from .write import BatchResult, Writing

__all__ = [
    "BUSY_TIMEOUT_S", "DB_FILE", "SCHEMA_VERSION", "BatchResult", "CheckReport", "DatabaseError", "DeleteReport",
    "DicomDatabase", "FileRecord", "Prepared", "fill_patient_id", "prepare", "read_checked",
]

F = TypeVar("F", bound=Callable[..., Any])


class DicomDatabase(Writing, Reading, Maintenance):
    """A dicomtui database folder. Open with :meth:`open`; usable as a context manager."""

    def __init__(self, root: Path, conn: sqlite3.Connection):
        self.root = root
        self.conn = conn
        # row ids by UID (patients by identity), cached within one write transaction
        self._series_ids: dict[str, int] = {}
        self._study_ids: dict[str, int] = {}
        self._patient_ids: dict[tuple[str, str], int] = {}
        self.read_only = False
        self.notices: list[str] = []  # sentences for the user about how it was opened (a network file system)

    @classmethod
    def open(cls, root: str | os.PathLike[str], create: bool = True, read_only: bool = False) -> DicomDatabase:
        """Open the database in folder ``root``; create it when the folder is new or empty and ``create``.

        ``read_only``: for commands that only read (ls, show, db info, db check): nothing is created, migrated or
        written, and a read-only folder opens (see :func:`.schema.connect_read_only`). Otherwise a folder the user
        may not write to is a DatabaseError saying so before SQLite is asked.

        DatabaseError when: the folder holds other files, the SQLite file is not ours or newer than this program
        (nothing is overwritten); the index is missing or empty while storage holds files (``db check --repair``
        rebuilds it: a fresh empty index would hide them); the index is damaged (the sentence says how to rebuild).
        On a network file system the database is opened without WAL and :attr:`notices` says why (once per process
        in the log too).
        """
        root = Path(root).expanduser().absolute()
        db_file = root / DB_FILE
        if root.exists() and not root.is_dir():
            raise DatabaseError(f"{root} is a file, not a database folder")
        new = not db_file.exists() or db_file.stat().st_size == 0  # empty: another process is creating it
        if new:
            _refuse_new(root, create and not read_only)
        elif not read_only and not _writable(root, db_file):
            raise DatabaseError(read_only_sentence(root, "no write permission or a read-only mount"))
        notices: list[str] = []
        journal = Journal.WAL
        if fstype := network_filesystem(root if root.exists() else root.parent):
            notices.append(warn_once(root, fstype))
            journal = Journal.DELETE
        if new:
            root.mkdir(parents=True, exist_ok=True)
        conn = connect_read_only(db_file) if read_only else connect(db_file, journal)
        try:
            migrate(conn, db_file, read_only)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _as_database_error(db_file, exc) from None
        except BaseException:
            conn.close()
            raise
        if not read_only:
            (root / storage.STORAGE_DIR).mkdir(exist_ok=True)
            (root / storage.INCOMING_DIR).mkdir(exist_ok=True)
            storage.clean_incoming(root)  # temp files of processes that died (issue 13, item 9)
        db = cls(root, conn)
        db.read_only = read_only
        db.notices = notices
        return db

    @classmethod
    def repair(cls, root: str | os.PathLike[str], full: bool = False) -> CheckReport:
        """``db check --repair``: rebuild a damaged, missing or empty index from storage (see :func:`.rebuild`),
        else compare rows with files and repair them (:meth:`check`). ``full``: ``integrity_check`` instead of
        ``quick_check``. DatabaseError for what a rebuild cannot fix (a foreign file, a read-only folder)."""
        root = Path(root).expanduser().absolute()
        db_file = root / DB_FILE
        if root.is_dir() and not _writable(root, db_file):
            raise DatabaseError(read_only_sentence(root, "no write permission or a read-only mount"))
        try:
            if (not db_file.exists() or db_file.stat().st_size == 0) and stored_files(root):
                return rebuild(root, cls._open_fresh)
            if db_file.exists() and (damage := damaged(db_file, full)):
                return rebuild(root, cls._open_fresh, damage)
        except sqlite3.DatabaseError as exc:  # locked by another process, disk full while rebuilding
            raise _as_database_error(db_file, exc) from None
        with cls.open(root, create=False) as db:
            return db.check(repair=True, full=full)

    @classmethod
    def _open_fresh(cls, root: Path) -> DicomDatabase:
        """A new, empty index in ``root`` whatever storage holds (for :func:`.rebuild` only)."""
        (root / DB_FILE).unlink(missing_ok=True)  # a 0-byte file: nothing to keep
        root.mkdir(parents=True, exist_ok=True)
        fstype = network_filesystem(root)
        conn = connect(root / DB_FILE, Journal.DELETE if fstype else Journal.WAL)
        migrate(conn, root / DB_FILE)
        (root / storage.INCOMING_DIR).mkdir(exist_ok=True)
        return cls(root, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DicomDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _refuse_new(root: Path, create: bool) -> None:
    """A folder without an index: refuse one that holds other files, or stored files (their index is missing or
    empty: a new empty one would hide them), or any when not ``create``."""
    foreign = sorted(p.name for p in root.iterdir() if not ours(p.name)) if root.is_dir() else []
    if foreign:
        raise DatabaseError(
            f"{root} is not a dicomtui database (no {DB_FILE}) and holds other files "
            f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty or new folder"
        )
    if stored_files(root):
        state = "empty (0 bytes)" if (root / DB_FILE).exists() else "missing"
        raise DatabaseError(f"the index {root / DB_FILE} is {state} but {root / storage.STORAGE_DIR} holds stored "
                            f"files: nothing was changed; {DAMAGED_HINT}")
    if not create:
        raise DatabaseError(f"no dicomtui database at {root}")


def _writable(root: Path, db_file: Path) -> bool:
    """Whether SQLite may write here: the folder (journal, -wal, -shm) and the file itself. ``os.access`` also
    says no on a read-only mount, for root too (EROFS)."""
    return os.access(root, os.W_OK) and (not db_file.exists() or os.access(db_file, os.W_OK))


def _as_database_error(db_file: Path, exc: sqlite3.DatabaseError) -> Exception:
    """A SQLite failure the user can act on (locked, damaged, read-only…) as a DatabaseError; a programming error
    (bad SQL, a constraint the code should have kept) stays what it is: a bug."""
    if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
        return DatabaseError(sentence(db_file, exc))
    return exc


def _translating(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: DicomDatabase, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            error = _as_database_error(self.root / DB_FILE, exc)
            if error is exc:
                raise
            raise error from exc

    return wrapper  # type: ignore[return-value]


# Every public method of the mixins reports SQLite failures as DatabaseError (the faces catch DicomtuiError).
for _name in [n for base in (Writing, Reading, Maintenance) for n, v in vars(base).items()
              if callable(v) and not n.startswith("_")]:
    setattr(DicomDatabase, _name, _translating(getattr(DicomDatabase, _name)))
DicomDatabase.schema_version = property(_translating(vars(Reading)["schema_version"].fget))  # type: ignore[assignment]
