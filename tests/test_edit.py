"""The tag editor's core (issue 16): given stored or linked series, when attributes are set, then the files, the
rows and the patients change as the plan said, nothing the user owns is rewritten, and peers read the result."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.edit import EditError, apply_edit, plan_edit
from dicomtui.core.export.rewrite import read_head, splice_possible, write_full, write_spliced
from dicomtui.core.export.tagpath import parse_assignment, parse_path
from dicomtui.core.export.vr import check_value
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series

from .conftest import require_program


def _db(tmp_path: Path, mode: str = "copy", specs: tuple[SeriesSpec, ...] = ()) -> DicomDatabase:
    specs = specs or (SeriesSpec(series_number=1, slices=4), SeriesSpec(series_number=2, slices=3,
                                                                        series_description="Coronal"))
    for n, spec in enumerate(specs):
        write_series(tmp_path / "in" / str(n), spec)
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"], mode, workers=0)
    return db


def _series(db: DicomDatabase, number: int) -> Item:
    return Item(Level.SERIES, next(s["id"] for s in db.series() if s["SeriesNumber"] == number))


def _files(db: DicomDatabase, item: Item) -> list[Path]:
    return [Path(f["path"]) for f in db.instance_files([item])]


def _storage_files(db: DicomDatabase) -> set[Path]:
    return set((db.root / "dicom").rglob("*.dcm"))


def test_a_stored_series_edit_rewrites_its_files_and_rows_and_nothing_else(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        item = _series(db, 1)
        before = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in _files(db, item)}
        plan = plan_edit(db, [item], {"SeriesDescription": "T1 edited", "ProtocolName": "new protocol"})
        assert [c.current_text() for c in plan.changes] == ["Axial", ""]
        report = apply_edit(db, plan)
        assert report.written == 4 and not report.errors and not report.copied_from_links
        assert report.spliced == 4  # the fast path, though the plan read (and decoded) the values
        after = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in _files(db, item)}
        assert after.keys() == before.keys()
        for uid, ds in after.items():
            assert ds.SeriesDescription == "T1 edited" and ds.ProtocolName == "new protocol"
            old = before[uid]
            del ds.SeriesDescription, ds.ProtocolName, old.SeriesDescription
            assert ds == old  # every other element, pixel data included, as it was
        assert db.get(Level.SERIES, item.id)["SeriesDescription"] == "T1 edited"
        assert len(_storage_files(db)) == 7  # the old copies went once the rows pointed at the new ones
        check = db.check()
        assert check.ok, check.summary()
        assert not list((db.root / "incoming").iterdir())


def test_edited_twice_the_files_go_back_to_their_storage_names_and_nothing_is_left_behind(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        item = _series(db, 2)
        names = sorted(p.name for p in _files(db, item))
        apply_edit(db, plan_edit(db, [item], {"SeriesDescription": "once"}))
        assert all(p.name.endswith(".edited.dcm") for p in _files(db, item))
        apply_edit(db, plan_edit(db, [item], {"SeriesDescription": "twice"}))
        assert sorted(p.name for p in _files(db, item)) == names
        assert len(_storage_files(db)) == 7 and db.check().ok


def test_a_file_gone_since_the_plan_is_a_report_row_the_others_are_written(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        item = _series(db, 1)
        plan = plan_edit(db, [item], {"SeriesDescription": "x"})
        gone = plan.files[1].path
        gone.unlink()
        report = apply_edit(db, plan)
        assert report.written == 3 and len(report.errors) == 1 and str(gone) in report.errors[0]
        assert "1 file not edited." in report.summary()
        assert not list((db.root / "incoming").iterdir())


def test_linked_files_are_never_rewritten_the_edit_is_stored_as_a_copy(tmp_path: Path) -> None:
    with _db(tmp_path, mode="link") as db:
        item = _series(db, 2)
        originals = _files(db, item)
        snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in originals}
        report = apply_edit(db, plan_edit(db, [item], {"SeriesDescription": "Sagittal"}))
        assert sorted(report.copied_from_links) == sorted(map(str, originals))
        assert "3 linked files left unchanged" in report.summary()
        for p, (data, mtime) in snapshot.items():
            assert p.read_bytes() == data and p.stat().st_mtime_ns == mtime
        rows = db.instance_rows([item], "path, stored")
        assert all(r["stored"] == 1 and r["path"].startswith("dicom/") for r in rows)
        assert all(pydicom.dcmread(p).SeriesDescription == "Sagittal" for p in _files(db, item))


def test_a_patient_id_edit_merges_patients_and_the_plan_counts_it_first(tmp_path: Path) -> None:
    specs = (SeriesSpec(patient_id="A1", patient_name="Doe^Jane", study_uid="1.2.3.1", series_number=1, slices=2),
             SeriesSpec(patient_id="B2", patient_name="Doe^Jane", study_uid="1.2.3.2", series_number=2, slices=2))
    with _db(tmp_path, specs=specs) as db:
        b2 = next(p for p in db.patients() if p["PatientID"] == "B2")
        plan = plan_edit(db, [Item(Level.PATIENT, b2["id"])], {"PatientID": "A1"})
        assert plan.reparent == ["1 study of patient B2 moves to patient A1 (merged: 1 study there now); "
                                 "patient B2 is left empty and removed"]
        apply_edit(db, plan)
        assert [(p["PatientID"], p["num_studies"]) for p in db.patients()] == [("A1", 2)]


def test_a_patient_id_edit_of_one_study_splits_the_patient(tmp_path: Path) -> None:
    specs = (SeriesSpec(study_uid="1.2.3.1", series_number=1, slices=2),
             SeriesSpec(study_uid="1.2.3.2", series_number=2, slices=2))
    with _db(tmp_path, specs=specs) as db:
        study = Item(Level.STUDY, db.find(Level.STUDY, "1.2.3.2")["id"])
        plan = plan_edit(db, [study], {"PatientID": "SPLIT1"})
        assert plan.reparent == ["1 study of patient SYN0001 moves to a new patient SPLIT1; patient SYN0001 keeps "
                                 "1 study (split)"]
        apply_edit(db, plan)
        assert sorted((p["PatientID"], p["num_studies"]) for p in db.patients()) == [("SPLIT1", 1), ("SYN0001", 1)]


def test_a_name_fix_of_a_whole_patient_is_a_rename_not_a_split(tmp_path: Path) -> None:
    """Every study of the patient edited: the plan says the patient is renamed, with no warning about "another"
    patient of that ID (it was the patient itself); one study of two: a split, names shown as they change."""
    specs = (SeriesSpec(study_uid="1.2.3.1", series_number=1, slices=2),
             SeriesSpec(study_uid="1.2.3.2", series_number=2, slices=2))
    with _db(tmp_path, specs=specs) as db:
        patient = Item(Level.PATIENT, db.patients()[0]["id"])
        plan = plan_edit(db, [patient], {"PatientName": "Roe^Jane"})
        assert plan.reparent == ["patient SYN0001 ('Synthetic^Patient') becomes patient SYN0001 ('Roe^Jane'), its "
                                 "2 studies with it"]
        assert plan.warnings == []
        part = plan_edit(db, [Item(Level.STUDY, db.find(Level.STUDY, "1.2.3.2")["id"])], {"PatientName": "Roe^Jane"})
        assert part.reparent == ["1 study of patient SYN0001 moves to a new patient SYN0001 ('Roe^Jane'); patient "
                                 "SYN0001 ('Synthetic^Patient') keeps 1 study (split)"]
        assert any("indexed with another name" in w for w in part.warnings)
        apply_edit(db, plan)
        assert [(p["PatientName"], p["num_studies"]) for p in db.patients()] == [("Roe^Jane", 2)]


def test_mixed_values_are_counted_and_shown_per_unit(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        study = Item(Level.STUDY, db.studies()[0]["id"])
        plan = plan_edit(db, [study], {"SeriesDescription": "Same"})
        (change,) = plan.changes
        assert change.current_text() == "2 values" and change.current == {"Axial": 4, "Coronal": 3}
        assert len(change.units) == 2 and any("'Coronal' -> 'Same' (3 files)" in line for line in plan.diff())


def test_series_tables_set_their_own_values_in_one_plan(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        study = Item(Level.STUDY, db.studies()[0]["id"])
        one, two = (db.get(Level.SERIES, _series(db, n).id)["SeriesInstanceUID"] for n in (1, 2))
        plan = plan_edit(db, [study], {"StudyDescription": "Both"},
                         per_series={one: {"SeriesDescription": "First"}, two: {"SeriesDescription": "Second"}})
        assert [(c.path.text, c.series, dict(c.current)) for c in plan.changes] == [
            ("StudyDescription", "", {"Synthetic study": 7}), ("SeriesDescription", one, {"Axial": 4}),
            ("SeriesDescription", two, {"Coronal": 3})]
        apply_edit(db, plan)
        assert {s["SeriesDescription"] for s in db.series()} == {"First", "Second"}
        assert [pydicom.dcmread(p).SeriesDescription for p in _files(db, _series(db, 2))] == ["Second"] * 3
        assert all(pydicom.dcmread(p).StudyDescription == "Both" for p in _files(db, study))


@pytest.mark.parametrize(("vr", "value", "words"), [
    ("DA", "20241301", "Invalid value for VR DA"),
    ("TM", "256000", "Invalid value for VR TM"),
    ("PN", "a^b^c^d^e^f", "6 components; at most 5"),
    ("PN", "a=b=c=d", "exceeds the maximum allowed number of 3"),
    ("LO", "x" * 65, "exceeds the maximum length of 64"),
    ("CS", "lower", "Invalid value for VR CS"),
    ("DS", "1.5e", "Invalid value for VR DS"),
])
def test_values_are_checked_per_vr(vr: str, value: str, words: str) -> None:
    check = check_value("Name", vr, value)
    assert not check.ok and words in check.problems[0]


def test_a_value_outside_the_character_set_asks_for_iso_ir_192_and_is_transcoded(tmp_path: Path) -> None:
    assert check_value("PatientName", "PN", "Müller^Hans", ["ISO_IR 100"]).ok
    assert check_value("PatientName", "PN", "Müller^Hans").needs_utf8  # the default repertoire is ASCII
    assert check_value("PatientName", "PN", "Ωmega", ["ISO_IR 100"]).needs_utf8
    with _db(tmp_path) as db:
        item = _series(db, 1)
        path = _files(db, item)[0]
        ds = pydicom.dcmread(path)  # a Latin-1 value elsewhere in the file must survive the change of set
        ds.SpecificCharacterSet, ds.StudyDescription = "ISO_IR 100", "Schädel"
        ds.save_as(path)
        study = Item(Level.STUDY, db.studies()[0]["id"])  # a PatientName edit covers whole studies
        plan = plan_edit(db, [study], {"PatientName": "Ωmega^Ω"})
        assert any("ISO_IR 192" in p for p in plan.problems)
        with pytest.raises(EditError, match="ISO_IR 192"):
            apply_edit(db, plan)
        plan = plan_edit(db, [study], {"PatientName": "Ωmega^Ω"}, set_utf8=True)
        apply_edit(db, plan)
        latin1 = Item(Level.INSTANCE, db.find(Level.INSTANCE, str(ds.SOPInstanceUID))["id"])
        new = pydicom.dcmread(db.instance_files([latin1])[0]["path"])
        assert new.SpecificCharacterSet == "ISO_IR 192" and new.PatientName == "Ωmega^Ω"
        assert new.StudyDescription == "Schädel"


def test_the_forms_show_each_file_s_values_and_check_what_is_typed(tmp_path: Path) -> None:
    from dicomtui.core.export.form import form_values, shown

    with _db(tmp_path) as db:
        values = form_values(db, [Item(Level.STUDY, db.studies()[0]["id"])])
        assert values.files == 7 and [s.label for s in values.series] == ["1 Axial", "2 Coronal"]
        assert shown(values.common["PatientName"]) == "Synthetic^Patient"
        assert shown(values.series[1].values["SeriesDescription"]) == "Coronal"
        assert values.check("StudyDate", "2024") and not values.check("StudyDate", "20240102")
        values.charsets = {("ISO_IR 100",)}
        assert not values.check("PatientName", "Müller") and "ISO_IR 192" in values.check("PatientName", "Ωmega")[0]


@pytest.mark.parametrize("implicit", [False, True])
def test_the_fast_splice_writes_what_a_full_pydicom_rewrite_writes(tmp_path: Path, implicit: bool) -> None:
    (path, *_) = write_series(tmp_path / "s", SeriesSpec(slices=1, implicit=implicit))
    settings = [(p, "LO" if p.keyword != "PatientName" else "PN", v) for p, v in (
        parse_assignment("PatientName=Roe^Richard"), parse_assignment("StudyDescription=longer description text"),
        parse_assignment("ProtocolName=inserted"), parse_assignment("(0010,21B0)=inserted history"))]
    settings[3] = (settings[3][0], "LT", settings[3][2])
    head = read_head(path, max(p.top for p, _, _ in settings))
    assert splice_possible(head, settings)
    write_spliced(path, head, settings, tmp_path / "fast.dcm")
    write_full(path, settings, tmp_path / "full.dcm")
    fast, full = pydicom.dcmread(tmp_path / "fast.dcm"), pydicom.dcmread(tmp_path / "full.dcm")
    assert fast == full and fast.ProtocolName == "inserted" and fast.PatientName == "Roe^Richard"
    assert fast.PixelData == pydicom.dcmread(path).PixelData


def test_tag_paths_reach_private_tags_and_sequence_items(tmp_path: Path) -> None:
    assert parse_path("(0010,1002)[0].PatientID").steps == ((0x00101002, 0), (0x00100020, None))
    assert parse_path("00100010").keyword == "PatientName"
    for bad, words in [("SeriesInstanceUID", "--as-new-series"), ("(0010,1002).PatientID", "needs an item index"),
                       ("NoSuchKeyword", "not a DICOM keyword"), ("(0002,0010)", "file meta"),
                       ("PatientName[0]", "ends in an item index")]:
        with pytest.raises(EditError, match=words):
            parse_path(bad)
    with _db(tmp_path, specs=(SeriesSpec(slices=2),)) as db:
        for n, path in enumerate(_files(db, Item(Level.SERIES, db.series()[0]["id"]))):
            ds = pydicom.dcmread(path)
            ds.private_block(0x0011, "DICOMTUI TEST", create=True).add_new(0x10, "LO", f"old private {n}")
            ds.save_as(path)
        item = Item(Level.SERIES, db.series()[0]["id"])
        plan = plan_edit(db, [item], {"(0011,1010)": "new private", "(0010,1002)[0].PatientID": "OTHER-7"})
        assert plan.changes[0].current_text() == "2 values" and plan.changes[1].current == {"": 2}
        with pytest.raises(EditError, match="needs its private creator"):  # PS3.5 7.8.1: no block reserved
            plan_edit(db, [item], {"(0013,1010)": "x"})
        with pytest.raises(EditError, match=r"its VR is unknown: give it after the tag, as \(0013,1010\)LO"):
            plan_edit(db, [item], {"(0013,0010)": "NEW CREATOR", "(0013,1010)": "x"})
        apply_edit(db, plan)
        edited = [pydicom.dcmread(p) for p in _files(db, item)]
        assert [d.OtherPatientIDsSequence[0].PatientID for d in edited] == ["OTHER-7", "OTHER-7"]
        assert edited[0][0x00111010].value == "new private"


def test_as_new_series_changes_uids_consistently_and_keeps_the_original(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        item = _series(db, 1)
        files = _files(db, item)
        first = pydicom.dcmread(files[0]).SOPInstanceUID
        ds = pydicom.dcmread(files[1])  # a reference from one instance of the series to another
        ref = pydicom.Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, first
        ds.ReferencedImageSequence = [ref]
        ds.save_as(files[1])
        old_series = db.get(Level.SERIES, item.id)["SeriesInstanceUID"]
        plan = plan_edit(db, [item], {"SeriesDescription": "Derived"}, as_new_series=True)
        report = apply_edit(db, plan, uid_root="1.2.826.0.1.3680043.10.1147.99")
        (new_uid,) = report.new_series
        assert new_uid.startswith("1.2.826.0.1.3680043.10.1147.99.") and new_uid != old_series
        assert len(db.series()) == 3 and db.find(Level.SERIES, old_series)["SeriesDescription"] == "Axial"
        new = [pydicom.dcmread(p) for p in _files(db, Item(Level.SERIES, db.find(Level.SERIES, new_uid)["id"]))]
        new_uids = {d.SOPInstanceUID for d in new}
        assert len(new) == 4 and not new_uids & {pydicom.dcmread(p).SOPInstanceUID for p in files}
        assert all(d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID for d in new)
        (referring,) = [d for d in new if "ReferencedImageSequence" in d]
        assert referring.ReferencedImageSequence[0].ReferencedSOPInstanceUID in new_uids


def test_a_bad_uid_root_is_a_sentence(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        plan = plan_edit(db, [_series(db, 1)], {}, as_new_series=True)
        with pytest.raises(EditError, match="UID root 'x.y'"):
            apply_edit(db, plan, uid_root="x.y")


def test_a_cancelled_edit_writes_nothing(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        item = _series(db, 1)
        cancel = threading.Event()
        cancel.set()
        report = apply_edit(db, plan_edit(db, [item], {"SeriesDescription": "x"}), cancel=cancel)
        assert report.cancelled and report.written == 0
        assert all(pydicom.dcmread(p).SeriesDescription == "Axial" for p in _files(db, item))


def test_peers_read_the_edited_files(tmp_path: Path) -> None:
    dcmdump = require_program("dcmdump", "dcmtk")
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    with _db(tmp_path) as db:
        item = _series(db, 1)
        before = _files(db, item)[0]
        errors_before = _errors(dciodvfy, before)
        study = Item(Level.STUDY, db.studies()[0]["id"])  # a PatientName edit covers whole studies
        apply_edit(db, plan_edit(db, [study], {"PatientName": "Roe^Richard", "StudyDate": "20250102",
                                                "ProtocolName": "edited"}))
        after = _files(db, item)[0]
        dump = subprocess.run([dcmdump, str(after)], capture_output=True, text=True, check=True).stdout
        assert "[Roe^Richard]" in dump and "[20250102]" in dump and "[edited]" in dump
        assert _errors(dciodvfy, after) <= errors_before


def _errors(dciodvfy: str, path: Path) -> set[str]:
    out = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True)
    return {line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


# ---- the CLI: dicomtui edit ------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomtui", *args], capture_output=True, text=True, timeout=120)


def test_cli_edit_dry_run_prints_the_diff_and_writes_nothing_then_edits(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        uid = db.get(Level.SERIES, _series(db, 1).id)["SeriesInstanceUID"]
        files = _files(db, _series(db, 1))
    snapshot = [p.read_bytes() for p in files]
    dbp = str(tmp_path / "db")
    out = _cli("--db", dbp, "edit", uid, "--set", "SeriesDescription=Edited", "--set",
               "(0010,1002)[0].PatientID=OTHER", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"series {uid}: SeriesDescription: 'Axial' -> 'Edited' (4 files)" in out.stdout
    assert "(0010,1002)[0].PatientID: '' -> 'OTHER'" in out.stdout
    assert [p.read_bytes() for p in files] == snapshot
    out = _cli("--db", dbp, "edit", uid, "--set", "StudyDate=20241301")
    assert out.returncode == 2 and "Invalid value for VR DA" in out.stderr
    out = _cli("--db", dbp, "edit", uid, "--set", "SeriesDescription=Edited", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["plan"]["changes"][0]["current"] == {"Axial": 4} and result["report"]["written"] == 4
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.find(Level.SERIES, uid)["SeriesDescription"] == "Edited"
    out = _cli("--db", dbp, "edit", uid, "--set", "SeriesInstanceUID=1.2.3")
    assert out.returncode == 2 and "--as-new-series" in out.stderr
