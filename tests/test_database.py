"""The database folder: opening safely, identity rules, queries and filters, delete semantics, check/repair."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from dicomtui.core import selection, storage
from dicomtui.core.database import SCHEMA_VERSION, DatabaseError, DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series


def test_new_folder_becomes_a_database(tmp_path: Path) -> None:
    with DicomDatabase.open(tmp_path / "new") as db:
        assert db.schema_version == SCHEMA_VERSION
        assert (tmp_path / "new" / "dicomtui.sqlite").is_file()
        assert (tmp_path / "new" / "dicom").is_dir() and (tmp_path / "new" / "incoming").is_dir()
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_folder_with_other_files_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(DatabaseError, match="not a dicomtui database"):
        DicomDatabase.open(tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["cat.jpg"]


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    conn = sqlite3.connect(folder / "dicomtui.sqlite")
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="not a dicomtui database"):
        DicomDatabase.open(folder)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        db.conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(DatabaseError, match="newer dicomtui"):
        DicomDatabase.open(tmp_path / "db")


def test_open_without_create_needs_a_database(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no dicomtui database"):
        DicomDatabase.open(tmp_path / "nothing", create=False)


def test_patient_identity_ignores_trailing_carets(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^John", patient_id="P1", seed=1))
    write_series(tmp_path / "in" / "b", SeriesSpec(patient_name="Doe^John^^", patient_id="P1", seed=2))
    write_series(tmp_path / "in" / "c", SeriesSpec(patient_name="Doe^Jane", patient_id="P1", seed=3))
    report = import_paths(db, [tmp_path / "in"])
    assert report.patients_added == 2 and report.studies_added == 3
    by_name = {p["PatientName"].rstrip("^"): p["num_studies"] for p in db.patients()}
    assert by_name == {"Doe^John": 2, "Doe^Jane": 1}


def test_counts_and_sorting(tmp_path: Path, db: DicomDatabase) -> None:
    for i, (name, date) in enumerate([("Zed^A", "20200101"), ("alpha^B", "20230505"), ("Mid^C", "20210101")]):
        write_series(tmp_path / "in" / str(i), SeriesSpec(patient_name=name, patient_id=f"P{i}", study_date=date,
                                                           series_number=3 - i, slices=2 + i, seed=i))
    write_series(tmp_path / "in" / "x", SeriesSpec(patient_name="Mid^C", patient_id="P2", study_date="20210101",
                                                   series_number=5, modality="MR", seed=2, slices=1))
    import_paths(db, [tmp_path / "in"])
    assert [p["PatientName"] for p in db.patients()] == ["alpha^B", "Mid^C", "Zed^A"]
    assert [s["StudyDate"] for s in db.studies()] == ["20230505", "20210101", "20200101"]
    mid = [s for s in db.studies() if s["PatientName"] == "Mid^C"][0]
    assert mid["num_series"] == 2 and mid["num_instances"] == 5 and mid["modalities"] == "CT\\MR"
    numbers = [s["SeriesNumber"] for s in db.series([mid["id"]])]
    assert numbers == sorted(numbers)
    assert all(s["image_size"] == "64x64" for s in db.series())
    patient = [p for p in db.patients() if p["PatientName"] == "Mid^C"][0]
    assert patient["num_studies"] == 1 and patient["last_study_date"] == "20210101"


def test_filters_are_case_insensitive_with_wildcards(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^John", patient_id="A1", seed=1))
    write_series(tmp_path / "in" / "b", SeriesSpec(patient_name="Smith^Anna", patient_id="B2", seed=2))
    write_series(tmp_path / "in" / "c", SeriesSpec(patient_name="O_Brien%", patient_id="C3", seed=3))
    import_paths(db, [tmp_path / "in"])
    names = lambda f: [p["PatientName"] for p in db.patients(f)]  # noqa: E731
    assert names("doe") == ["Doe^John"]
    assert names("DOE*") == ["Doe^John"]
    assert names("*anna") == ["Smith^Anna"]
    assert names("do?^j*") == ["Doe^John"]
    assert names("oe") == ["Doe^John"]  # substring without wildcards
    # issue 14 item 18: wildcards stay inside a substring search (oe* finds what oe finds); =word is whole-value
    assert names("oe*") == ["Doe^John"] and names("=oe*") == [] and names("=doe*") == ["Doe^John"]
    assert names("b2") == ["Smith^Anna"]  # any shown column
    assert names("_") == ["O_Brien%"] and names("%") == ["O_Brien%"]  # SQL wildcards are literal
    assert names("smith b2") == ["Smith^Anna"] and names("smith a1") == []  # every word must match


def test_filters_fold_case_beyond_ascii(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Müller^Jörg", patient_id="M1", seed=1))
    write_series(tmp_path / "in" / "b", SeriesSpec(patient_name="Muller^Jorg", patient_id="M2", seed=2))
    import_paths(db, [tmp_path / "in"])
    names = lambda f: [p["PatientName"] for p in db.patients(f)]  # noqa: E731
    assert names("MÜLLER") == ["Müller^Jörg"]
    assert names("müller^j*") == ["Müller^Jörg"]
    assert names("muller") == ["Muller^Jorg"]


def _counts(db: DicomDatabase) -> tuple[int, int, int, int]:
    s = db.stats()
    return s["patients"], s["studies"], s["series"], s["instances"]


def test_delete_copied_removes_files_and_empty_folders(series_folder: Path, db: DicomDatabase) -> None:
    import_paths(db, [series_folder], ImportMode.COPY)
    series = db.series()
    stored = db.root / "dicom"
    first_files = [db.abspath(i["path"], True) for i in db.instances([series[0]["id"]])]
    report = db.delete([("series", series[0]["id"])])
    assert report.instances == len(first_files) and report.files_deleted == len(first_files) and report.series == 1
    assert not any(p.exists() for p in first_files)
    assert not first_files[0].parent.exists()  # the emptied series folder is gone
    assert _counts(db) == (1, 1, 1, 5)
    report = db.delete([("patient", db.patients()[0]["id"])])
    assert (report.patients, report.studies, report.series, report.instances) == (1, 1, 1, 5)
    assert _counts(db) == (0, 0, 0, 0)
    assert stored.is_dir() and list(stored.iterdir()) == []
    assert all(p.exists() for p in series_folder.rglob("*.dcm"))  # the user's originals were never touched


def test_delete_linked_never_touches_files(series_folder: Path, db: DicomDatabase) -> None:
    before = {p: p.read_bytes() for p in series_folder.rglob("*.dcm")}
    import_paths(db, [series_folder], ImportMode.LINK)
    report = db.delete([("study", db.studies()[0]["id"])])
    assert report.instances == 15 and report.files_deleted == 0 and report.files_kept == 15
    assert {p: p.read_bytes() for p in series_folder.rglob("*.dcm")} == before
    assert _counts(db) == (0, 0, 0, 0)


def test_delete_one_instance_keeps_the_rest(series_folder: Path, db: DicomDatabase) -> None:
    import_paths(db, [series_folder], ImportMode.LINK)
    inst = db.instances()[0]
    db.delete([("instance", inst["id"])])
    assert _counts(db) == (1, 1, 2, 14)
    assert db.find("instance", inst["SOPInstanceUID"]) is None


def test_check_reports_and_repairs(series_folder: Path, tmp_path: Path, db: DicomDatabase) -> None:
    import_paths(db, [series_folder / "a"], ImportMode.LINK)
    import_paths(db, [series_folder / "b"], ImportMode.COPY)
    assert db.check().ok
    linked = sorted((series_folder / "a").glob("*.dcm"))
    linked[0].unlink()  # missing
    data = linked[1].read_bytes()
    linked[1].write_bytes(data + b"\x00\x00")  # changed (trailing padding: still readable)
    stored = db.abspath(db.instances([db.series()[1]["id"]])[0]["path"], True)
    orphan = stored.parent / "orphan.dcm"
    orphan.write_bytes(stored.read_bytes())  # unreferenced in storage (same SOP: indexes as an update)
    (db.root / storage.INCOMING_DIR / "999999999-dead-x.part").write_bytes(b"partial")
    report = db.check()
    assert report.missing == [str(linked[0])]
    assert report.changed == [str(linked[1])]
    assert report.orphans == [orphan.relative_to(db.root).as_posix()]
    assert len(report.stale_temp) == 1 and not report.ok
    fixed = db.check(repair=True)
    assert (fixed.dropped, fixed.reindexed, fixed.indexed_orphans) == (1, 1, 1)
    after = db.check()
    assert after.ok and not after.stale_temp, after
    assert db.stats()["instances"] == 14


def test_what_the_browser_asks(tmp_path: Path, db: DicomDatabase) -> None:
    """series_ids expands patients and studies; the delete plan counts instances and the copied files that would
    go; data_version moves when another connection commits."""
    write_series(tmp_path / "a", SeriesSpec(patient_id="P1", series_number=1, slices=3, seed=1))
    write_series(tmp_path / "b", SeriesSpec(patient_id="P1", series_number=2, slices=2, seed=2))
    import_paths(db, [tmp_path / "a"], mode=ImportMode.COPY)
    import_paths(db, [tmp_path / "b"], mode=ImportMode.LINK)
    patient = db.patients()[0]["id"]
    series = [r["id"] for r in db.series()]
    assert sorted(db.series_ids([("patient", patient)])) == sorted(series)
    assert db.series_ids([("series", series[0]), ("series", series[0])]) == [series[0]]
    plan = selection.delete_plan(db, [("patient", patient)])
    assert (plan.instances, len(plan.deleted)) == (5, 3)
    before = db.data_version()
    with DicomDatabase.open(db.root) as other:
        other.delete([("series", series[0])])
    assert db.data_version() != before


# ---- SQLite failures as DatabaseError, one record builder, report summaries ---------------------------------

def test_a_locked_database_is_a_database_error_with_a_sentence(tmp_path: Path, series_folder: Path) -> None:
    from dicomtui.core.database import FileRecord

    with DicomDatabase.open(tmp_path / "db") as db:
        record = FileRecord.from_file(next(series_folder.rglob("*.dcm")))
        other = sqlite3.connect(tmp_path / "db" / "dicomtui.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        try:
            db.conn.execute("PRAGMA busy_timeout = 50")
            with pytest.raises(DatabaseError, match=r"is busy: another process has been writing") as info:
                db.add_files([record])
            assert str(tmp_path / "db" / "dicomtui.sqlite") in str(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
        db.add_files([record])  # free again: it works
        assert db.totals()["instances"] == 1


def test_a_damaged_database_file_is_a_database_error(tmp_path: Path) -> None:
    with DicomDatabase.open(tmp_path / "db"):
        pass
    (tmp_path / "db" / "dicomtui.sqlite").write_bytes(b"this is not SQLite at all" * 200)
    for name in ("dicomtui.sqlite-wal", "dicomtui.sqlite-shm"):
        (tmp_path / "db" / name).unlink(missing_ok=True)
    with pytest.raises(DatabaseError):
        DicomDatabase.open(tmp_path / "db")


def test_a_bug_stays_a_bug(db: DicomDatabase) -> None:
    with pytest.raises(sqlite3.ProgrammingError):
        db._rows("SELECT ?", [1, 2])  # wrong number of arguments: not the user's problem
    with pytest.raises(sqlite3.ProgrammingError):
        db.instances(columns="id, ?")


def _instance_row(db: DicomDatabase) -> dict:
    rows = db.instances()
    assert len(rows) == 1
    row = rows[0]
    for volatile in ("id", "series_fk", "imported_at", "file_mtime_ns", "source_mtime_ns"):
        row.pop(volatile)
    return row


def test_the_importer_the_listener_and_db_check_make_the_same_record(tmp_path: Path) -> None:
    """FileRecord.from_file is the one place a file becomes a record: the same file gives the same row whether it
    is imported (copy), received by the listener, or found in storage by `db check --repair`."""
    import shutil

    from dicomtui.core.net.listener import store_written

    source = tmp_path / "in"
    write_series(source, SeriesSpec(slices=1, patient_id=""))  # no PatientID: generated the same way by all three
    file = next(source.rglob("*.dcm"))

    with DicomDatabase.open(tmp_path / "imported") as db:
        import_paths(db, [source], ImportMode.COPY)
        imported = _instance_row(db)

    with DicomDatabase.open(tmp_path / "received") as db:
        tmp = storage.temp_file(db.root, "received")
        shutil.copyfile(file, tmp)
        record, status, problem = store_written(db.root, tmp, tmp.stat().st_size)
        assert status == 0 and record is not None, problem
        db.add_files([record])
        received = _instance_row(db)

    with DicomDatabase.open(tmp_path / "checked") as db:
        stored = db.root / imported["path"]
        stored.parent.mkdir(parents=True)
        shutil.copyfile(file, stored)
        report = db.check(repair=True)
        assert report.indexed_orphans == 1
        checked = _instance_row(db)

    assert received == checked  # both: a file that was never anywhere else; its source is itself
    assert received["source_path"] == received["path"] and received["stored"] == 1
    assert imported["source_path"] == str(file)  # an import remembers where the copy came from
    for row in (imported, received, checked):
        row.pop("source_path")
    assert imported == received == checked


def test_from_file_rejects_a_file_without_uids(tmp_path: Path) -> None:
    from dicomtui.core.database import FileRecord
    from dicomtui.core.errors import HeaderError

    write_series(tmp_path / "in", SeriesSpec(slices=1))
    file = next((tmp_path / "in").rglob("*.dcm"))
    import pydicom

    ds = pydicom.dcmread(file)
    del ds.SeriesInstanceUID
    ds.save_as(file)
    with pytest.raises(HeaderError, match="not importable: no SeriesInstanceUID"):
        FileRecord.from_file(file)


def test_delete_and_check_summaries() -> None:
    from dicomtui.core.database import CheckReport, DeleteReport

    report = DeleteReport(patients=1, studies=2, series=3, instances=40, files_deleted=30, files_kept=10)
    assert report.summary() == ("Deleted 1 patient, 2 studies, 3 series, 40 instances; 30 copied files deleted, "
                                "10 linked files kept.")
    assert report.headline() == "Deleted 40 instances (30 copied files deleted, 10 linked files kept)"
    report.errors.append("x: gone")
    assert report.headline().endswith("linked files kept); 1 errors")

    assert CheckReport().summary() == (
        "OK: every row has its file, unchanged, and storage holds nothing unreferenced.")
    check = CheckReport(missing=["/a"], changed=["/b"], orphans=["dicom/c"], stale_temp=["/d"])
    assert check.summary().splitlines() == [
        "missing file: /a", "changed file: /b", "unreferenced file in storage: dicom/c", "stale temporary file: /d"]
    repaired = CheckReport(stale_temp=["/d"], repaired=True, dropped=1, reindexed=2, indexed_orphans=3)
    assert repaired.summary().splitlines() == [
        "stale temporary file: /d", "Repaired: 1 rows dropped, 2 re-indexed, 3 stored files indexed."]


# ---- regressions a review found: each test is the reproduction, made to pass ----


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
    write_series(tmp_path / "b", SeriesSpec(patient_id="P2", slices=2, seed=2))
    rows_a = [(r[1], r[2]) for r in parse_chunk(str(db.root), ImportMode.LINK, [(str(p), -1, -1) for p in a])]
    rows_a = [(rows_a[0][0], inst) for _, inst in rows_a]
    broken = [(rows_a[0][0], rows_a[0][1][:-1])]  # one column short: the insert fails, the batch rolls back
    with pytest.raises(sqlite3.ProgrammingError):
        db.add_prepared(broken)
    import_paths(db, [tmp_path / "b"])
    db.add_prepared(rows_a)
    assert {s["PatientID"]: s["num_instances"] for s in db.studies()} == {"P1": 2, "P2": 2}
    assert prepare  # (imported for the row layout it documents)



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



def test_repair_settles_after_a_stored_file_changes_its_uid(tmp_path: Path, series_folder: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [series_folder / "b"], ImportMode.COPY)
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
