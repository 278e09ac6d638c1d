"""The SQLite file of a database: connect (WAL, busy timeout), create or migrate the schema, write transactions.

WAL mode and a busy timeout let an importer, a listener and a browser share one database across processes; one
writer transaction per batch (``BEGIN IMMEDIATE``) keeps a committed row always with its file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TypeVar

from .. import storage
from ..errors import DatabaseError

DB_FILE = "dicomtui.sqlite"
SCHEMA_VERSION = 5
# "which stored row names this file?" (a copied file is deleted only when none does): the copies only, so that
# linking imports pay nothing for it
STORED_PATH_INDEX = "CREATE INDEX IF NOT EXISTS instances_stored_path ON instances (path) WHERE stored = 1"
APP_ID = "dicomtui"
BUSY_TIMEOUT_S = 60.0

T = TypeVar("T")


def ours(name: str) -> bool:
    """Whether a name in a database folder is one of ours (the SQLite file and its WAL, storage, incoming/)."""
    return name.startswith(DB_FILE) or name in (storage.STORAGE_DIR, storage.INCOMING_DIR)


class Journal(StrEnum):
    """SQLite journal modes we use: WAL on local disks (readers never wait for the writer), DELETE on network file
    systems, where WAL's shared memory is not safe (sqlite.org/wal.html)."""

    WAL = "WAL"
    DELETE = "DELETE"


def connect(db_file: Path, journal: Journal = Journal.WAL) -> sqlite3.Connection:
    """Open ``db_file`` for writing in ``journal`` mode with a 60 s busy timeout; DatabaseError when it is locked or
    not SQLite."""
    try:
        conn = sqlite3.connect(db_file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        retry_locked(lambda: conn.execute(f"PRAGMA journal_mode = {journal.value}"))
    except sqlite3.OperationalError as exc:
        raise DatabaseError(sentence(db_file, exc)) from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(sentence(db_file, exc)) from None
    conn.execute("PRAGMA synchronous = NORMAL")
    return _functions(conn)


def connect_read_only(db_file: Path) -> sqlite3.Connection:
    """Open ``db_file`` for reading only (``ls``, ``show``, ``db info``, ``db check``): nothing is ever written,
    so a folder the user may not write to (a read-only mount, a colleague's archive) can still be read.

    ``mode=ro`` alone is not enough there: a reader of a WAL database must map the ``-shm`` file, and SQLite
    creates it when missing, which fails in a read-only folder (SQLITE_CANTOPEN, "unable to open database file";
    sqlite.org/wal.html section 8, "Read-Only Databases"). When the folder is not writable we add ``immutable=1``:
    SQLite then reads the main file without locks or ``-shm``. Nobody can write there either, so nothing changes
    under the reader; a ``-wal`` left by a crash is not read (its last transactions are not shown).
    """
    writable = os.access(db_file.parent, os.W_OK)
    try:
        if writable and _disk_full(db_file.parent):
            # No byte free: a WAL reader cannot create the -shm file it maps (and a failed try leaves a cut -shm
            # behind that locks out the next reader), and `mode=ro` cannot open a WAL database without it. With
            # EXCLUSIVE locking the WAL index lives in the heap instead (sqlite.org/wal.html section 9), so the
            # file is opened read-write but `query_only`: `db check` and `ls` still read a full disk. The shared
            # lock it keeps until close only blocks writers, who cannot write there anyway.
            conn = _open_read_only(f"{db_file.as_uri()}", ("PRAGMA locking_mode = EXCLUSIVE", "PRAGMA query_only = ON"))
        else:
            query = "mode=ro" if writable else "mode=ro&immutable=1"
            conn = _open_read_only(f"{db_file.as_uri()}?{query}", ())
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(sentence(db_file, exc)) from None
    return _functions(conn)


def _open_read_only(uri: str, pragmas: tuple[str, ...]) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        for pragma in pragmas:
            conn.execute(pragma)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file: errors surface here
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def _disk_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has no block left for us (statvfs; False when unknown)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _functions(conn: sqlite3.Connection) -> sqlite3.Connection:
    # SQLite's LIKE folds only ASCII case: filters with other letters (Müller, Ørsted) compare casefolded text
    conn.create_function("casefold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True)
    # Foreign keys are declared but not enforced: the code keeps them (inserts parents first, deletes
    # children first) and tests assert `PRAGMA foreign_key_check`; enforcing costs ~15% of an import.
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def integrity_problems(conn: sqlite3.Connection, full: bool = False) -> list[str]:
    """SQLite's own check of the file: ``PRAGMA quick_check`` (B-tree pages, records; O(N), ~1 s per GB), or
    ``integrity_check`` with ``full`` (also every index against its table, several times slower). An empty list
    when the file is sound; the first 20 problems otherwise (a damaged page that cannot even be read is one)."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(20)")]
    except sqlite3.OperationalError:
        raise  # locked, busy, I/O: not damage
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database"
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def retry_locked(action: Callable[[], T], seconds: float = BUSY_TIMEOUT_S) -> T:
    """``action()``, retried for up to ``seconds`` while SQLite says the file is locked. Switching to WAL needs a
    moment alone with the file and does not wait for the busy timeout (SQLite returns SQLITE_BUSY at once when
    another process holds the file: two processes opening a new file together)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(conn: sqlite3.Connection, db_file: Path, read_only: bool = False) -> None:
    """Create the schema in a new file, or bring an older one up to SCHEMA_VERSION; refuse anything else.

    A database already at SCHEMA_VERSION is only read (no write lock: readers never wait for writers). With
    ``read_only`` nothing is written: a database that needs creating or migrating is a DatabaseError."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if meta.get("app") == APP_ID and meta.get("schema_version") == str(SCHEMA_VERSION):
            return
    except sqlite3.OperationalError:
        pass  # no meta table (yet): decide under the write lock
    if read_only:
        raise DatabaseError(f"{db_file} is not a dicomtui database at schema version {SCHEMA_VERSION}; it can "
                            f"only be created or upgraded by a command that writes (import, or the TUI)")
    with write(conn):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            script = resources.files("dicomtui.core.database").joinpath("schema.sql").read_text()
            for statement in statements(script):
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
            _MIGRATIONS[target](conn, db_file.parent)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(target),))


def _migrate_to_2(conn: sqlite3.Connection, _root: Path) -> None:
    """Version 2: per-frame geometry of multi-frame files (examined without reading them); filled in by 3."""
    conn.execute("ALTER TABLE instances ADD COLUMN frames TEXT")


def _migrate_to_3(conn: sqlite3.Connection, root: Path) -> None:
    """Version 3: the frame geometry import now keeps (Siemens mosaic tiles, the functional groups of one-frame
    objects, ImagerPixelSpacing of images without position, every dimension a multi-frame file declares) read
    again from the files that need it (:func:`frames.needs_frame_geometry`: a few per series). A re-import would
    skip these unchanged files, so the upgrade does it once; a file that cannot be read keeps what it had."""
    from ..frames import frame_geometry, needs_frame_geometry

    rows = conn.execute("SELECT id, path, stored, has_pixels, NumberOfFrames, ImageType, ImagePositionPatient, "
                        "PixelSpacing, SOPClassUID FROM instances WHERE has_pixels = 1").fetchall()
    keys = ("has_pixels", "NumberOfFrames", "ImageType", "ImagePositionPatient", "PixelSpacing", "SOPClassUID")
    updates = []
    for row_id, path, stored, *values in rows:
        if not needs_frame_geometry(dict(zip(keys, values, strict=True))):
            continue
        try:
            updates.append((frame_geometry(str(root / path if stored else Path(path))), row_id))
        except Exception:  # noqa: BLE001 - missing or damaged: `db check` reports the file; its row stays as it was
            continue
    conn.executemany("UPDATE instances SET frames = ? WHERE id = ?", updates)


def _migrate_to_4(conn: sqlite3.Connection, root: Path) -> None:
    """Version 4: what derived objects (SEG, RT structure sets, doses, plans, DERIVED images) refer to, read once
    from the files that need it (:func:`object_refs.needs_references`; one image per DERIVED series, as import
    does), so that examine need not open them. A file that cannot be read keeps no references (`db check` reports
    it)."""
    from ..object_refs import REFERRING_CLASSES, needs_references, read_references

    if "refs" not in {r[1] for r in conn.execute("PRAGMA table_info(instances)")}:
        conn.execute("ALTER TABLE instances ADD COLUMN refs TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS instances_refs ON instances (series_fk) WHERE refs IS NOT NULL")
    rows = conn.execute("SELECT id, path, stored, SOPClassUID, ImageType, series_fk FROM instances").fetchall()
    updates = []
    derived: dict[int, str | None] = {}  # series → its first DERIVED image's references (as import keeps them)
    for row_id, path, stored, sop_class, image_type, series_fk in rows:
        if not needs_references({"SOPClassUID": sop_class, "ImageType": image_type}):
            continue
        if sop_class not in REFERRING_CLASSES and series_fk in derived:
            refs = derived[series_fk]
        else:
            try:
                refs = read_references(str(root / path if stored else Path(path)))
            except Exception:  # noqa: BLE001 - missing or damaged: `db check` reports the file
                continue
            if sop_class not in REFERRING_CLASSES:
                derived[series_fk] = refs
        if refs:
            updates.append((refs, row_id))
    conn.executemany("UPDATE instances SET refs = ? WHERE id = ?", updates)


# Code migrations: version -> function bringing a database (in folder root) from version-1 to version.
def _migrate_to_5(conn: sqlite3.Connection, _root: Path) -> None:
    """Version 5: stored rows indexed by path. Deleting or superseding a copied file first asks whether another
    row still names it; without the index each question scanned the table (a 300-file edit or ``rm`` in a
    database of a million instances: 300 scans)."""
    conn.execute(STORED_PATH_INDEX)


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Path], None]] = {2: _migrate_to_2, 3: _migrate_to_3,
                                                                      4: _migrate_to_4, 5: _migrate_to_5}


def statements(script: str) -> list[str]:
    """Split a SQL script into statements (comments may hold semicolons: let SQLite judge completeness)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


class write:
    """``with write(conn):`` one IMMEDIATE transaction, rolled back on error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size`` (SQLite takes at most 999 ``?`` per statement in old builds: we use 500)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


DAMAGED_HINT = "run `dicomtui db check --repair` to rebuild it from storage"


def sentence(db_file: Path, exc: sqlite3.DatabaseError) -> str:
    """What a failed SQLite operation means for the user, in one sentence naming the file."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return (f"the database {db_file} is busy: another process has been writing to it for over "
                f"{BUSY_TIMEOUT_S:.0f} s ({text}); try again when it has finished")
    if "readonly" in low or "read-only" in low:
        return read_only_sentence(db_file.parent, text)
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return f"the index {db_file} is damaged ({text}): {DAMAGED_HINT}"
    if "disk" in low or "full" in low or "i/o" in low:
        return f"the database {db_file} cannot be written ({text}); check the disk's free space and health"
    if "unable to open" in low and not os.access(db_file.parent, os.W_OK):
        return read_only_sentence(db_file.parent, text)
    return f"the database {db_file} failed: {text}"


def read_only_sentence(root: Path, detail: str) -> str:
    """A write command on a folder the user may not write to (a read-only mount, another user's folder)."""
    return (f"the database folder {root} is read-only ({detail}): commands that write (import, rm, listen, retrieve, "
            f"db check --repair) need a folder you may write to; ls, show, db info and db check still work")
