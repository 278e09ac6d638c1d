"""Selections: UIDs, PatientIDs and marked rows become items with a description, instance files and a delete plan
(what `rm` and the browser's delete dialog show)."""

from __future__ import annotations

from pathlib import Path

from dicomtui.core import selection
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode, Level
from dicomtui.core.selection import Item
from dicomtui.core.synth import SeriesSpec, write_series


def _data(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^John", patient_id="P1", series_number=3,
                                                   series_description="T1 axial", slices=4, seed=1))
    write_series(tmp_path / "in2" / "b", SeriesSpec(patient_name="Doe^Jane", patient_id="P1", slices=2, seed=2))
    import_paths(db, [tmp_path / "in"], ImportMode.COPY)
    import_paths(db, [tmp_path / "in2"], ImportMode.LINK)


def test_uids_and_patient_ids_become_items(tmp_path: Path, db: DicomDatabase) -> None:
    _data(tmp_path, db)
    series_uid = db.series()[0]["SeriesInstanceUID"]
    found = selection.resolve(db, ["P1", series_uid, "1.2.nothing"])
    assert [i.level for i in found.items] == [Level.PATIENT, Level.PATIENT, Level.SERIES]
    assert found.missing == ["1.2.nothing"]
    assert selection.missing_sentence("1.2.nothing") == (
        "no patient, study, series or instance 1.2.nothing in the database")
    # a PatientID shared by two patients: the name says which
    named = sorted(selection.describe_named(db, text, item) for text, item in found.names)
    assert named == ["patient P1 (Doe^Jane)", "patient P1 (Doe^John)", f"series {series_uid}"]
    assert selection.describe_resolved(db, found) == ", ".join(
        selection.describe_named(db, text, item) for text, item in found.names)
    assert selection.describe_resolved(db, found).endswith(f", series {series_uid}")


def test_marked_rows_are_described_as_the_browser_does(tmp_path: Path, db: DicomDatabase) -> None:
    _data(tmp_path, db)
    john = next(p for p in db.patients() if p["PatientName"] == "Doe^John")
    study = db.studies([john["id"]])[0]
    series = db.series([study["id"]])[0]
    assert selection.describe(db, selection.marked("patient", [john["id"]])) == "patient Doe^John (P1)"
    date = study["StudyDate"]
    expected = f"study {date[:4]}-{date[4:6]}-{date[6:]} {study['StudyDescription'] or ''}".rstrip()
    assert selection.describe(db, [Item(Level.STUDY, study["id"])]) == expected
    assert selection.describe(db, [Item(Level.SERIES, series["id"])]) == "series 3 T1 axial"
    assert selection.describe(db, selection.marked(Level.STUDY, [1, 2])) == "2 studies"
    assert selection.describe(db, []) == ""


def test_instance_files_and_delete_plan(tmp_path: Path, db: DicomDatabase) -> None:
    _data(tmp_path, db)
    items = selection.resolve(db, ["P1"]).items
    files = selection.instance_files(db, items)
    assert len(files) == 6 and all(Path(f["path"]).is_file() for f in files)
    plan = selection.delete_plan(db, items + items)  # each instance once
    assert plan.instances == 6 and len(plan.deleted) == 4 and len(plan.kept) == 2
    assert all(db.root in p.parents for p in plan.deleted)
    assert all(p.is_relative_to(tmp_path / "in2") for p in plan.kept)
    assert plan.details() == "6 instances. 4 copied files will be deleted. 2 linked files stay where they are."
    report = db.delete(items)
    assert (report.instances, report.files_deleted, report.files_kept) == (6, 4, 2)
    assert not any(p.exists() for p in plan.deleted) and all(p.exists() for p in plan.kept)


def test_a_plan_with_only_linked_files(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=2))
    import_paths(db, [tmp_path / "in"], ImportMode.LINK)
    plan = selection.delete_plan(db, [Item(Level.SERIES, db.series()[0]["id"])])
    assert plan.details() == "2 instances. 2 linked files stay where they are."
