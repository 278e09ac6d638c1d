"""Regressions for defects a review found: each test is the reproduction, made to pass."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from dicomtui.core import header
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import COPY, LINK, import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series


def _counts(db: DicomDatabase) -> tuple[int, int, int, int]:
    s = db.stats()
    return s["patients"], s["studies"], s["series"], s["instances"]


def test_cached_ids_survive_another_process_deleting_rows(tmp_path: Path) -> None:
    """A long-lived writer (a listener) must not file instances under rows another process deleted/reused."""
    a = write_series(tmp_path / "a", SeriesSpec(patient_id="P1", patient_name="One^Patient", slices=4, seed=1))
    write_series(tmp_path / "b", SeriesSpec(patient_id="P2", patient_name="Other^Patient", slices=2, seed=2))
    listener = DicomDatabase.open(tmp_path / "db")
    import_paths(listener, [str(p) for p in a[:2]])
    with DicomDatabase.open(tmp_path / "db") as cli:
        cli.delete([("patient", p["id"]) for p in cli.patients()])
        import_paths(cli, [tmp_path / "b"])
    import_paths(listener, [str(p) for p in a[2:]])
    by_patient = {s["PatientID"]: s["num_instances"] for s in listener.studies()}
    assert by_patient == {"P1": 2, "P2": 2}
    assert listener.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    listener.close()


def test_a_failed_batch_does_not_poison_the_cache(tmp_path: Path, db: DicomDatabase) -> None:
    from dicomtui.core.database import prepare
    from dicomtui.core.indexer import parse_chunk

    a = write_series(tmp_path / "a", SeriesSpec(patient_id="P1", slices=2, seed=1))
    b = write_series(tmp_path / "b", SeriesSpec(patient_id="P2", slices=2, seed=2))
    rows_a = [(r[1], r[2]) for r in parse_chunk(str(db.root), LINK, [(str(p), -1, -1) for p in a])]
    rows_a = [(rows_a[0][0], inst) for _, inst in rows_a]
    broken = [(rows_a[0][0], rows_a[0][1][:-1])]  # one column short: the insert fails, the batch rolls back
    with pytest.raises(sqlite3.ProgrammingError):
        db.add_prepared(broken)
    import_paths(db, [tmp_path / "b"])
    db.add_prepared(rows_a)
    assert {s["PatientID"]: s["num_instances"] for s in db.studies()} == {"P1": 2, "P2": 2}
    assert prepare  # (imported for the row layout it documents)


def test_linking_the_database_storage_deletes_nothing(tmp_path: Path, series_folder: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [series_folder], COPY)
        report = import_paths(db, [db.root / "dicom"], LINK)
        assert [p.reason for p in report.rejected] == [
            "inside the database folder: not imported (its files are already ours)"]
        report = import_paths(db, [tmp_path], LINK)  # a folder that contains the database
        assert report.instances_added == 0 and report.skipped_unchanged == 0
        assert not any("dicomtui.sqlite" in p.path for p in report.rejected)
        assert db.check().ok and _counts(db) == (1, 1, 2, 15)


def test_a_corrected_patient_name_moves_the_study(tmp_path: Path, db: DicomDatabase) -> None:
    files = write_series(tmp_path / "in", SeriesSpec(patient_name="Typo^Nmae", patient_id="P1", slices=3))
    import_paths(db, [tmp_path / "in"])
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PatientName = "Typo^Name"
        ds.SeriesDescription = "Renamed"
        ds.save_as(path)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    report = import_paths(db, [tmp_path / "in"])
    assert report.updated == 3 and report.patients_added == 1
    assert [p["PatientName"] for p in db.patients()] == ["Typo^Name"]  # no ghost left behind
    assert db.series()[0]["SeriesDescription"] == "Renamed"
    assert _counts(db) == (1, 1, 1, 3)


def test_python_walk_rejects_absurd_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header, "_scan", None)
    good = write_series(tmp_path / "in", SeriesSpec(slices=2))[0].read_bytes()
    meta_end = 144 + int.from_bytes(good[140:144], "little")
    nest = b"".join(b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff" for _ in range(3000))
    (tmp_path / "in" / "deep.dcm").write_bytes(good[:meta_end] + nest)
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
    assert report.instances_added == 2
    assert [Path(p.path).name for p in report.rejected] == ["deep.dcm"]


def test_repair_settles_after_a_stored_file_changes_its_uid(tmp_path: Path, series_folder: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [series_folder / "b"], COPY)
        row = db.instances()[0]
        stored = db.abspath(row["path"], True)
        ds = pydicom.dcmread(stored)
        ds.SOPInstanceUID = "1.2.3.4.5.6.7"
        ds.save_as(stored)
        first = db.check(repair=True)
        assert first.reindexed == 1
        again = db.check()
        assert again.ok, again
        assert db.find("instance", "1.2.3.4.5.6.7")["source_path"] == row["source_path"]
        assert _counts(db)[3] == 5


def test_several_processes_create_one_database_at_once(tmp_path: Path) -> None:
    code = ("import sys; from dicomtui.core.database import DicomDatabase as D; "
            "D.open(sys.argv[1]).close(); print('ok')")
    for round_ in range(5):
        target = tmp_path / f"db{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [r[1][-300:] for r in results]


def test_a_zero_byte_sqlite_file_does_not_open_a_foreign_folder(tmp_path: Path) -> None:
    from dicomtui.core.database import DatabaseError

    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    (folder / "dicomtui.sqlite").write_bytes(b"")
    with pytest.raises(DatabaseError, match="holds other files"):
        DicomDatabase.open(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["dicomtui.sqlite", "thesis.txt"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_dicomdir_references_outside_its_folder_are_ignored(tmp_path: Path, db: DicomDatabase) -> None:
    from pydicom.fileset import FileSet

    media = tmp_path / "media"
    outside = write_series(tmp_path / "secret", SeriesSpec(slices=1, seed=4))
    inside = write_series(media / "A", SeriesSpec(slices=2, seed=5), name="IM{index:05d}")
    fs = FileSet()
    for path in inside:
        fs.add(pydicom.dcmread(path))
    fs.write(media / "out")
    dicomdir = pydicom.dcmread(media / "out" / "DICOMDIR")
    for rec in dicomdir.DirectoryRecordSequence:
        if "ReferencedFileID" in rec:
            rec.ReferencedFileID = ["..", "..", "secret", outside[0].name]
            break
    dicomdir.save_as(media / "out" / "DICOMDIR")
    report = import_paths(db, [media / "out"])
    assert any(p.reason == "DICOMDIR reference outside its folder: ignored" for p in report.rejected)
    assert not any("secret" in r["path"] for r in db.instances())


def test_an_unreadable_dicomdir_falls_back_to_the_folder(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "cd", SeriesSpec(slices=3))
    (tmp_path / "cd" / "DICOMDIR").write_bytes(b"")
    report = import_paths(db, [tmp_path / "cd"])
    assert report.instances_added == 3
    assert any("importing every file of its folder instead" in p.reason for p in report.rejected)


def test_a_fifo_in_a_folder_is_reported(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=1))
    os.mkfifo(tmp_path / "in" / "pipe")
    report = import_paths(db, [tmp_path / "in"])
    assert [(Path(p.path).name, p.reason) for p in report.rejected] == [
        ("pipe", "not a regular file (device, pipe or socket)")]


