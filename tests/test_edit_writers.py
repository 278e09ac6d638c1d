"""The edit's writers (core/export/edit.py: two threads write a batch while the last one is indexed): an edit
stopped by a failure, by Ctrl+C or by a cancel leaves no temp file, no open descriptor and a database whose every
row names a complete file, the old one or the new one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export import edit_write
from dicomtui.core.export.edit import apply_edit, plan_edit
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series

SLICES = 14


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(edit_write, "BATCH", 4)  # 14 files: batches of 1, 4, 4, 4, 1; two in flight
    write_series(tmp_path / "in", SeriesSpec(slices=SLICES, rows=32, cols=32))
    with DicomDatabase.open(tmp_path / "db") as opened:
        import_paths(opened, [tmp_path / "in"], "copy", workers=0)
        yield opened


def _series(db: DicomDatabase) -> Item:
    return Item(Level.SERIES, db.series()[0]["id"])


def _descriptions(db: DicomDatabase) -> list[str]:
    return sorted(str(pydicom.dcmread(f["path"]).SeriesDescription) for f in db.instance_files([_series(db)]))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _consistent(db: DicomDatabase) -> None:
    check = db.check()
    assert check.ok, check.summary()
    assert not list((db.root / "incoming").iterdir())  # no temp file left behind
    assert len(list((db.root / "dicom").rglob("*.dcm"))) == SLICES  # each instance once: old or new, not both


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_an_edit_that_fails_while_indexing_leaves_old_or_new_files_only(db: DicomDatabase, failure: BaseException,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_edit(db, [_series(db)], {"SeriesDescription": "edited"})
    fds = _open_fds()
    calls = []
    add_files = DicomDatabase.add_files

    def failing(self: DicomDatabase, records: list, **options: object) -> object:
        calls.append(len(records))
        if len(calls) == 2:  # the second batch: the third is being written meanwhile
            raise failure
        return add_files(self, records, **options)

    monkeypatch.setattr(DicomDatabase, "add_files", failing)
    with pytest.raises(type(failure)):
        apply_edit(db, plan)
    monkeypatch.setattr(DicomDatabase, "add_files", add_files)
    assert _open_fds() == fds  # the old files held for the releaser are closed too
    # the first batch is edited and indexed; the second was renamed but not indexed: its rows still name the old
    # files, and its new files are gone again; the third (written meanwhile) never left incoming/
    assert _descriptions(db).count("edited") == 1  # the first batch (a quarter of BATCH: indexing starts sooner)
    _consistent(db)


def test_a_cancelled_edit_indexes_the_batches_written_and_leaves_nothing_else(db: DicomDatabase) -> None:
    plan = plan_edit(db, [_series(db)], {"SeriesDescription": "edited"})
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()  # after the first batch: the one already handed to the writers is still finished

    report = apply_edit(db, plan, progress=progress, cancel=cancel)
    assert report.cancelled and not report.errors
    assert seen == [(1, SLICES), (5, SLICES)] and report.written == 5
    assert _descriptions(db).count("edited") == 5
    _consistent(db)


def test_all_batches_are_written_in_order_and_counted(db: DicomDatabase) -> None:
    plan = plan_edit(db, [_series(db)], {"SeriesDescription": "edited"})
    seen: list[int] = []
    report = apply_edit(db, plan, progress=lambda done, total: seen.append(done))
    assert seen == [1, 5, 9, 13, SLICES] and report.written == SLICES == report.spliced
    assert _descriptions(db) == ["edited"] * SLICES
    _consistent(db)


def test_an_old_copy_is_removed_only_once_the_rows_naming_the_new_one_are_committed(
        db: DicomDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Removed inside the transaction, a process killed before its commit left rows naming deleted files: the
    removal must come after the commit, as another process sees it."""
    import sqlite3

    from dicomtui.core import storage

    other = sqlite3.connect(db.root / "dicomtui.sqlite")  # another process's view of the database
    still_named: list[int] = []
    remove = storage.remove_stored

    def watched(root: Path, rel: str) -> None:
        still_named.append(other.execute("SELECT COUNT(*) FROM instances WHERE path = ?", (rel,)).fetchone()[0])
        remove(root, rel)

    monkeypatch.setattr(storage, "remove_stored", watched)
    report = apply_edit(db, plan_edit(db, [_series(db)], {"SeriesDescription": "edited"}))
    other.close()
    assert report.written == SLICES and still_named == [0] * SLICES
    _consistent(db)


def test_old_copies_left_by_an_edit_killed_before_removing_them_are_removed_by_repair_not_indexed(
        db: DicomDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between the commit and the removal, the edit leaves the old copies unreferenced. `db check --repair`
    must not index them over the edited files (that would undo part of the edit): they are older than the file
    their instance's row names, so they are the copies it superseded."""
    monkeypatch.setattr(DicomDatabase, "remove_superseded", lambda self, rels, flushed=False: None)  # "killed"
    report = apply_edit(db, plan_edit(db, [_series(db)], {"SeriesDescription": "edited"}))
    monkeypatch.undo()
    assert report.written == SLICES
    found = db.check()
    assert len(found.orphans) == SLICES and not found.missing
    repaired = db.check(repair=True)
    assert repaired.superseded_removed == SLICES and repaired.indexed_orphans == 0, repaired.summary()
    assert f"{SLICES} superseded copies removed" in repaired.summary()
    assert _descriptions(db) == ["edited"] * SLICES
    _consistent(db)
