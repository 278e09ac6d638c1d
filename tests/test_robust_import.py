"""Imports under attack: `rm` racing a copy-import of the same study, a full disk, temp files left by a kill.

Each race is made deterministic with a hook (the delete runs at the worst moment), then tried for real with two
processes a few times."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.core import storage
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import VANISHED, import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series

STUDY = "1.2.826.0.1.3680043.8.498.13.6"


def _study(folder: Path, slices: int = 20) -> Path:
    write_series(folder, SeriesSpec(study_uid=STUDY, slices=slices))
    return folder


def _rows_have_files(db: DicomDatabase) -> None:
    """Every committed row of a copied file has its file (`db check` finds nothing missing)."""
    report = db.check()
    assert not report.missing, report.missing


def _rm_study(root: Path) -> None:
    """`dicomtui rm STUDY --yes`, from another connection (as another process would)."""
    with DicomDatabase.open(root, create=False) as other:
        found = other.find("study", STUDY)
        if found is not None:
            other.delete([("study", found["id"])])


# ---- item 6: rm racing a copy-import ---------------------------------------------------------------------------

def test_rm_between_copy_and_stat_is_a_rejection_not_a_traceback(tmp_path: Path, db: DicomDatabase,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The copies are renamed into storage, then `rm` of the study deletes them before the importer reads
    their size: each is rejected with the reason (today: FileNotFoundError out of the import)."""
    import_paths(db, [_study(tmp_path / "a")], ImportMode.COPY)
    copy_batch = storage.copy_batch

    def copy_then_rm(root: Path, pairs: list, heads: object = None) -> list:
        errors = copy_batch(root, pairs, heads)  # type: ignore[arg-type]
        _rm_study(root)
        return errors

    monkeypatch.setattr(storage, "copy_batch", copy_then_rm)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = import_paths(db, [tmp_path / "b"], ImportMode.COPY, workers=0)
    assert report.instances_added == 0 and len(report.rejected) == 20
    assert all(p.reason.startswith(VANISHED) for p in report.rejected), report.rejected[0]
    _rows_have_files(db)


def test_rm_between_copy_and_commit_leaves_no_row_without_its_file(tmp_path: Path, db: DicomDatabase,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`rm` runs after the copies are in storage and stat'ed, just before the batch is written: the rows whose
    file is gone are not written, and are rejected (today: "20 added" and all 20 files gone)."""
    import_paths(db, [_study(tmp_path / "a")], ImportMode.COPY)
    add_prepared = DicomDatabase.add_prepared

    def rm_then_add(self: DicomDatabase, rows: list) -> object:
        _rm_study(self.root)
        return add_prepared(self, rows)

    monkeypatch.setattr(DicomDatabase, "add_prepared", rm_then_add)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = import_paths(db, [tmp_path / "b"], ImportMode.COPY, workers=0)
    assert report.instances_added == 0 and len(report.rejected) == 20
    assert {p.reason for p in report.rejected} == {VANISHED}
    assert db.stats()["instances"] == 0
    _rows_have_files(db)


def _cli(db_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dicomtui", "--db", str(db_path), *args]


def test_rm_racing_a_copy_import_for_real(tmp_path: Path) -> None:
    """Two processes, three times: whatever the order, no traceback and every committed row has its file."""
    source = _study(tmp_path / "src", slices=150)
    db_path = tmp_path / "db"
    for attempt in range(3):
        subprocess.run(_cli(db_path, "import", "--copy", str(source)), check=True, capture_output=True)
        copy = tmp_path / f"copy{attempt}"
        shutil.copytree(source, copy)  # the same study from another folder: copied again, not skipped
        imp = subprocess.Popen(_cli(db_path, "import", "--copy", str(copy)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        rm = subprocess.run(_cli(db_path, "rm", STUDY, "--yes"), capture_output=True, text=True)
        out, errors = imp.communicate(timeout=60)
        assert "Traceback" not in errors + rm.stderr, errors + rm.stderr
        assert imp.returncode in (0, 1), errors
        with DicomDatabase.open(db_path, create=False) as db:
            _rows_have_files(db)
