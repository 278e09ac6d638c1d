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
from .maintenance import CheckReport, DeleteReport, Maintenance
from .queries import Reading
from .records import FileRecord, Prepared, fill_patient_id, prepare, read_checked
from .schema import BUSY_TIMEOUT_S, DB_FILE, SCHEMA_VERSION, connect, migrate, ours, sentence
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

    @classmethod
    def open(cls, root: str | os.PathLike[str], create: bool = True) -> DicomDatabase:
        """Open the database in folder ``root``; create it when the folder is new or empty and ``create``.

        A folder that holds other files, or a SQLite file that is not ours or is newer than this program, is an
        error (DatabaseError): nothing is overwritten.
        """
        root = Path(root).expanduser().absolute()
        db_file = root / DB_FILE
        if root.exists() and not root.is_dir():
            raise DatabaseError(f"{root} is a file, not a database folder")
        new = not db_file.exists() or db_file.stat().st_size == 0  # empty: another process is creating it
        if new:
            foreign = sorted(p.name for p in root.iterdir() if not ours(p.name)) if root.is_dir() else []
            if foreign:
                raise DatabaseError(
                    f"{root} is not a dicomtui database (no {DB_FILE}) and holds other files "
                    f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty or new folder"
                )
            if not create:
                raise DatabaseError(f"no dicomtui database at {root}")
            root.mkdir(parents=True, exist_ok=True)
        conn = connect(db_file)
        try:
            migrate(conn, db_file)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _as_database_error(db_file, exc) from None
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

    def __exit__(self, *exc: object) -> None:
        self.close()


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
