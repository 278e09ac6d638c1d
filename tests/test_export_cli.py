"""`dicomtui export` as a user runs it: UIDs and PatientIDs to a folder, --json, refusing to overwrite, a ZIP."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.test_cli import run


def _database(tmp_path: Path) -> tuple[str, str]:
    write_series(tmp_path / "in", SeriesSpec(patient_name="Doe^John", patient_id="P1", series_number=3,
                                             series_description="T1 axial", slices=3))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"], ImportMode.COPY)
        return str(tmp_path / "db"), db.series()[0]["SeriesInstanceUID"]


def test_export_a_series_then_refuse_to_overwrite_it(tmp_path: Path) -> None:
    db, series_uid = _database(tmp_path)
    out = tmp_path / "out"
    done = run("--db", db, "export", series_uid, "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["written"] == 3 and report["layout"] == "tree" and report["problems"] == []
    assert report["files"] == [f"P1_Doe_John/20240115_Synthetic_study/3_T1_axial/{n:04d}.dcm" for n in (1, 2, 3)]
    assert all((out / name).is_file() for name in report["files"])

    again = run("--db", db, "export", "P1", "-o", str(out))
    assert again.returncode == 2 and again.stdout == ""
    assert "0001.dcm and 2 other files already exist; nothing was exported" in again.stderr

    forced = run("--db", db, "export", "P1", "-o", str(out), "--overwrite", "--layout", "flat")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"exported 3 files (0.0 MB) of 3 to {out} in ")
    assert sorted(p.name for p in out.glob("*.dcm")) == [f"P1_3_T1_axial_{n:04d}.dcm" for n in (1, 2, 3)]


def test_export_to_a_zip_and_unknown_uids(tmp_path: Path) -> None:
    db, series_uid = _database(tmp_path)
    done = run("--db", db, "export", series_uid, "-o", str(tmp_path / "a"), "--zip")
    assert done.returncode == 0, done.stderr
    assert "(layout tree, ZIP)" in done.stdout
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert len(zf.namelist()) == 3
    missing = run("--db", db, "export", "1.2.3.nothing", "-o", str(tmp_path / "b"))
    assert missing.returncode == 2 and "no patient, study, series or instance 1.2.3.nothing" in missing.stderr
    assert not (tmp_path / "b").exists()


def test_export_with_a_dicomdir(tmp_path: Path) -> None:
    db, series_uid = _database(tmp_path)
    done = run("--db", db, "export", series_uid, "-o", str(tmp_path / "cd"), "--dicomdir", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dicomdir"] == str(tmp_path / "cd" / "DICOMDIR") and report["layout"] == "dicomdir"
    assert report["files"] == [f"PT000000/ST000000/SE000000/IM00000{n}" for n in range(3)]
    assert all((tmp_path / "cd" / name).is_file() for name in report["files"])
