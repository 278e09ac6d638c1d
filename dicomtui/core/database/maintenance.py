"""Maintenance: deleting rows (and the copied files they own), checking rows against files (with repair), and
rebuilding a damaged or lost index from storage."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import storage
from ..errors import HeaderError
from ..forward import drop_forwards
from ..levels import HIERARCHY, Level
from ..plural import counted
from .queries import INSTANCES_OF, Item
from .records import FileRecord
from .schema import DAMAGED_HINT, DB_FILE, integrity_problems
from .schema import chunks as _chunks
from .schema import write as _write

if TYPE_CHECKING:
    from . import DicomDatabase
    from .write import BatchResult


@dataclass
class DeleteReport:
    """What a delete removed: rows per level, copied files deleted, linked files kept (never touched)."""

    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    files_deleted: int = 0
    files_kept: int = 0  # linked files, never touched
    forwards_dropped: int = 0  # pending or failed forwards of the deleted instances (issue 20), dropped
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The sentence ``dicomtui rm`` prints (errors are printed apart, one per line)."""
        return (f"Deleted {counted(self.patients, 'patient')}, {counted(self.studies, 'study')}, "
                f"{counted(self.series, 'series')}, {counted(self.instances, 'instance')}; "
                f"{counted(self.files_deleted, 'copied file')} deleted, {counted(self.files_kept, 'linked file')} "
                f"kept" + (
                    f"; {self.forwards_dropped} forwards not sent, dropped." if self.forwards_dropped else "."))

    def headline(self) -> str:
        """The shorter sentence the TUI notifies (instances and files only, and how many errors)."""
        return (f"Deleted {counted(self.instances, 'instance')} ({counted(self.files_deleted, 'copied file')} "
                f"deleted, {counted(self.files_kept, 'linked file')} kept)" + (
                    f"; {self.forwards_dropped} forwards not sent, dropped" if self.forwards_dropped else "") + (
                    f"; {len(self.errors)} errors" if self.errors else ""))


@dataclass
class CheckReport:
    """Rows compared with files (``db check``): each list holds paths; the counts say what a repair did.

    ``damage``: what SQLite's own check (``quick_check``, ``integrity_check`` with ``--full``) found wrong in the
    index file; rows are then not compared (the index cannot be trusted) and a repair rebuilds it from storage:
    ``kept_aside`` is the damaged file's new name, ``relinked`` the linked files re-read from their recorded
    paths, ``lost_linked`` those that could not be (missing, unreadable, or their rows unreadable).
    """

    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    changed: list[str] = field(default_factory=list)  # rows whose file's size or mtime differ
    orphans: list[str] = field(default_factory=list)  # files in storage no row references
    stale_temp: list[str] = field(default_factory=list)  # leftovers in incoming/ of processes no longer running
    repaired: bool = False
    dropped: int = 0
    reindexed: int = 0
    indexed_orphans: int = 0
    superseded_removed: int = 0  # unreferenced copies older than the file their instance's row names
    errors: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)  # SQLite's check of the index file
    index: str = ""  # the index file checked
    rebuilt: bool = False
    kept_aside: str | None = None  # where the damaged index was moved (None: there was none to keep)
    salvaged_rows: int = 0  # rows read from the damaged index (their linked paths and copy sources)
    relinked: int = 0
    lost_linked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing found: no damage, no missing, changed or unreferenced file and no stale temp file (`db check`
        exits 1 otherwise)."""
        return not (self.missing or self.changed or self.orphans or self.stale_temp or self.damage)

    def summary(self) -> str:
        """The lines ``dicomtui db check`` prints: one per problem, then OK or what the repair did (errors are
        printed apart, one per line)."""
        lines = [f"damaged index: {item}" for item in self.damage]
        if self.damage and not self.rebuilt:
            lines.append(f"the index {self.index} is damaged: {DAMAGED_HINT}")
        lines += [f"{label}: {item}" for label, items in (
            ("missing file", self.missing), ("changed file", self.changed),
            ("unreferenced file in storage", self.orphans), ("stale temporary file", self.stale_temp),
        ) for item in items]
        if self.ok:
            lines.append("OK: every row has its file, unchanged, and storage holds nothing unreferenced.")
        if self.rebuilt:
            lines += [f"linked file not recovered: {path}" for path in self.lost_linked]
            aside = f"the old index was kept as {self.kept_aside}" if self.kept_aside else "there was no old index"
            lines.append(f"Rebuilt the index from storage: {self.indexed_orphans} stored files indexed, "
                         f"{self.relinked} linked files re-read from their recorded paths, {len(self.lost_linked)} "
                         f"not recovered ({self.salvaged_rows} rows could be read from the old index; {aside}).")
        elif self.repaired:
            superseded = (f", {self.superseded_removed} superseded copies removed (older than the file their "
                          f"instance's row names)" if self.superseded_removed else "")
            lines.append(f"Repaired: {self.dropped} rows dropped, {self.reindexed} re-indexed, "
                         f"{self.indexed_orphans} stored files indexed{superseded}.")
        return "\n".join(lines)


class Maintenance:
    """Delete and check/repair, a mixin of :class:`~dicomtui.core.database.DicomDatabase`."""

    root: Path
    conn: sqlite3.Connection

    if TYPE_CHECKING:  # the other mixins' methods this one calls
        def abspath(self, row_path: str, stored: bool) -> Path: ...
        def _refresh(self, series_ids: Iterable[int] = (), study_ids: Iterable[int] = (),
                     patient_ids: Iterable[int] = ()) -> None: ...
        def _forget_ids(self) -> None: ...
        def add_files(self, records: Sequence[FileRecord], *, defer_removal: bool = False) -> BatchResult: ...

    def delete(self, items: Iterable[Item], keep_files: bool = False) -> DeleteReport:
        """Delete patients/studies/series/instances given as (level, id): rows go, copied files go (unless
        ``keep_files``), linked files always stay. Unless ``keep_files`` (a repair re-indexing a changed file),
        their pending and failed forwards are dropped (:func:`..forward.drop_forwards`, ``forwards_dropped``)."""
        report = DeleteReport()
        conn = self.conn
        to_remove: list[str] = []
        sop_uids: list[str] = []
        with _write(conn):
            instance_ids: set[int] = set()
            for level, row_id in items:
                instance_ids.update(r[0] for r in conn.execute(INSTANCES_OF[level], (row_id,)))
            ids = sorted(instance_ids)
            series_ids: set[int] = set()
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for path, stored, series_fk, sop_uid in conn.execute(
                    f"SELECT path, stored, series_fk, SOPInstanceUID FROM instances WHERE id IN ({marks})", chunk
                ):
                    series_ids.add(series_fk)
                    if not keep_files:
                        sop_uids.append(sop_uid)
                    if stored and not keep_files:
                        to_remove.append(path)
                    else:
                        report.files_kept += 1
                conn.execute(f"DELETE FROM instances WHERE id IN ({marks})", chunk)
            report.instances = len(ids)
            before = _counts(conn)
            self._refresh(series_ids=series_ids)
            after = _counts(conn)
            report.patients = before["patients"] - after["patients"]
            report.studies = before["studies"] - after["studies"]
            report.series = before["series"] - after["series"]
            self._remove_files(to_remove, report)
        self._forget_ids()
        try:  # after the commit: a forward dropped for rows still there would be lost
            report.forwards_dropped = drop_forwards(self.root, sop_uids)
        except sqlite3.Error as exc:
            report.errors.append(f"the forward queue: {exc} (the forwarder fails them: file deleted before it was "
                                 f"sent)")
        return report

    def _remove_files(self, paths: list[str], report: DeleteReport) -> None:
        """Delete the copied files of rows just deleted, still under the write lock: an import in another process
        renames its copy into place before writing its row and checks, under the same lock, that the file is
        still there (:meth:`Writing._with_files`), so a committed row always has its file. A file another row
        uses (re-imported meanwhile) stays. Should the commit then fail, rows are left without files:
        ``db check --repair`` drops them."""
        for rel in paths:
            try:
                if self.conn.execute("SELECT 1 FROM instances WHERE path = ? AND stored = 1", (rel,)).fetchone():
                    continue
                storage.remove_stored(self.root, rel)
                report.files_deleted += 1
            except (OSError, ValueError) as exc:
                report.errors.append(f"{rel}: {exc}")

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

    def check(self, repair: bool = False, full: bool = False) -> CheckReport:
        """SQLite's check of the index (``quick_check``; ``integrity_check`` with ``full``), then rows compared
        with files: missing or changed files, unreferenced files in storage, stale temp files.

        With ``repair``: rows of missing files are dropped, changed files re-indexed, orphans in storage indexed
        (they are complete: only finished files are renamed into storage) unless the row of their instance names
        a file at least as new (then the orphan is the copy that file superseded, and is removed), temp leftovers
        removed. A damaged index
        is only reported (``damage``): :meth:`DicomDatabase.repair` rebuilds it, which needs it closed.
        """
        report = CheckReport(repaired=repair, index=str(self.root / DB_FILE))
        if damage := integrity_problems(self.conn, full):
            report.damage = damage
            report.repaired = False
            return report
        referenced: set[str] = set()
        missing_ids: list[int] = []
        changed: list[tuple[int, str, bool]] = []
        for row_id, path, stored, size, mtime in self.conn.execute(
            "SELECT id, path, stored, file_size, file_mtime_ns FROM instances"
        ):
            file = self.abspath(path, bool(stored))
            if stored:
                referenced.add(path)
            try:
                st = file.stat()
            except OSError:
                report.missing.append(str(file))
                missing_ids.append(row_id)
                continue
            if st.st_size != size or st.st_mtime_ns != mtime:
                report.changed.append(str(file))
                changed.append((row_id, path, bool(stored)))
        report.orphans = self.storage_orphans(referenced)
        report.stale_temp = [str(p) for p in storage.stale_temp_files(self.root)]
        if not repair:
            return report
        if missing_ids:
            self.delete((Level.INSTANCE, i) for i in missing_ids)
            report.dropped = len(missing_ids)
        batch: list[FileRecord] = []
        for row_id, path, stored in changed:
            file = self.abspath(path, stored)
            source = self.conn.execute("SELECT source_path, source_size, source_mtime_ns FROM instances "
                                       "WHERE id = ?", (row_id,)).fetchone()
            # the old row goes whatever the file now says (its SOPInstanceUID may have changed); the file stays
            self.delete([(Level.INSTANCE, row_id)], keep_files=True)
            try:
                batch.append(FileRecord.from_file(file, root=self.root if stored else None,
                                                  source=tuple(source) if stored else None))
                report.reindexed += 1
            except (HeaderError, OSError) as exc:
                report.errors.append(f"{file}: {exc}; its row was dropped, the file left in place")
                report.dropped += 1
        for rel in report.orphans:
            file = self.root / rel
            try:
                record = FileRecord.from_file(file, root=self.root)
            except (HeaderError, OSError) as exc:
                report.errors.append(f"{file}: cannot index ({exc}); left in place")
                continue
            row = self.conn.execute("SELECT file_mtime_ns FROM instances WHERE SOPInstanceUID = ?",
                                    (record.header["SOPInstanceUID"],)).fetchone()
            if row is not None and (row[0] or 0) >= record.file_mtime_ns:
                # the instance's row names a file at least as new (its own file is there: rows of missing files
                # were dropped above): this is the copy it superseded, which an edit or import killed between
                # its commit and the removal left behind; ours to remove, not to index over the newer one
                try:
                    storage.remove_stored(self.root, rel)
                    report.superseded_removed += 1
                except (OSError, ValueError) as exc:
                    report.errors.append(f"{file}: {exc}")
                continue
            batch.append(record)
            report.indexed_orphans += 1
        for chunk in _chunks(batch, 1000):
            self.add_files(chunk)
        storage.clean_incoming(self.root)
        return report


def stored_files(root: Path) -> bool:
    """Whether the storage folder of ``root`` holds at least one file (stops at the first)."""
    return any(files for _dirpath, _dirs, files in os.walk(root / storage.STORAGE_DIR))


def damaged(db_file: Path, full: bool = False) -> list[str]:
    """What SQLite's check finds wrong in ``db_file`` (see :func:`.schema.integrity_problems`); ``["file is not a
    database"]`` when it cannot even be opened as SQLite. Locked or busy is not damage: sqlite3.OperationalError."""
    try:
        conn = sqlite3.connect(f"{db_file.as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    try:
        return integrity_problems(conn, full)
    finally:
        conn.close()


# The columns a rebuild takes from a damaged index: linked files are found only there (their paths), and a
# copied file's source is not in the file itself.
_SALVAGED = "SELECT path, stored, source_path, source_size, source_mtime_ns FROM instances ORDER BY id"


def _salvage(db_file: Path) -> list[tuple]:
    """The instance rows that can still be read from a damaged index: forward until the first bad page, then
    backward from the end until it (a damaged page loses its own rows, not the ones after it)."""
    rows: dict[str, tuple] = {}
    try:
        conn = sqlite3.connect(f"{db_file.as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.DatabaseError:
        return []
    try:
        for order in ("", " DESC"):
            try:
                for row in conn.execute(_SALVAGED + order):
                    rows.setdefault(row[0], tuple(row))
            except sqlite3.DatabaseError:
                continue
    finally:
        conn.close()
    return list(rows.values())


def rebuild(root: Path, open_fresh: Callable[[Path], DicomDatabase], damage: Sequence[str] = ()) -> CheckReport:
    """A new index for ``root`` built from the files: every file in storage (copied files are the source of
    truth), and the linked files whose paths can still be read from the old index and whose files are readable.

    The old index (with its ``-wal`` and ``-shm``) is kept as ``dicomtui.sqlite.damaged-<YYYYmmddTHHMMSS>``, never
    deleted. ``open_fresh(root)`` opens a new empty index whatever storage holds.
    """
    report = CheckReport(repaired=True, rebuilt=True, damage=list(damage), index=str(root / DB_FILE))
    rows: list[tuple] = []
    if (root / DB_FILE).exists() and (root / DB_FILE).stat().st_size > 0:
        aside = root / f"{DB_FILE}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
        for suffix in ("", "-wal", "-shm"):  # the WAL goes with its file: SQLite finds it as <aside>-wal
            if (root / (DB_FILE + suffix)).exists():
                (root / (DB_FILE + suffix)).rename(Path(f"{aside}{suffix}"))
        report.kept_aside = str(aside)
        rows = _salvage(aside)
    report.salvaged_rows = len(rows)
    sources = {path: (src, size, mtime) for path, stored, src, size, mtime in rows if stored and src}
    with open_fresh(root) as db:
        batch: list[FileRecord] = []
        for rel in db.storage_orphans(set()):
            try:
                batch.append(FileRecord.from_file(root / rel, root=root, source=sources.get(rel)))
                report.indexed_orphans += 1
            except (HeaderError, OSError) as exc:
                report.errors.append(f"{root / rel}: cannot index ({exc}); left in place")
        for path, stored, *_source in rows:
            if stored:
                continue
            try:
                batch.append(FileRecord.from_file(Path(path)))
                report.relinked += 1
            except (HeaderError, OSError):
                report.lost_linked.append(path)
        for chunk in _chunks(batch, 1000):
            db.add_files(chunk)
        storage.clean_incoming(root)
    return report


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows of the patient, study and series tables."""
    return {lv.table: conn.execute(f"SELECT COUNT(*) FROM {lv.table}").fetchone()[0] for lv in HIERARCHY[:3]}
