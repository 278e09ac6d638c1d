"""`dicomtui reidentify`: de-identified data of the database turned back into the originals through the mapping
in the database folder — PatientID and PatientName, every UID (references inside sequences too), dates moved back
by the patient's offset — including an object made from the de-identified data elsewhere (a SEG-like instance
with its own UIDs, referencing de-identified instances); refused in words when the mapping has no entry."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.test_cli import run
from tests.test_deidentify import _database


def _deidentified_into_db(tmp_path: Path) -> tuple[str, list[Path], str]:
    db, sources = _database(tmp_path)
    done = run("--db", db, "deidentify", "PID778899", "--into-db", "--profile-option", "modified-dates",
               "-o", str(tmp_path / "deid"))
    assert done.returncode == 0, done.stderr
    pseudonym = database_mapping(db).known_patient("PID778899").pseudonym
    return db, sources, pseudonym


def test_reidentify_restores_identity_uids_references_and_dates(tmp_path: Path) -> None:
    db, sources, pseudonym = _deidentified_into_db(tmp_path)
    done = run("--db", db, "reidentify", pseudonym, "-o", str(tmp_path / "back"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["written"] == 4 and report["refused"] == []
    originals = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, sources)}
    back = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, (tmp_path / "back").rglob("*.dcm"))}
    assert set(back) == set(originals)
    for uid, ds in back.items():
        was = originals[uid]
        assert (ds.PatientID, ds.PatientName) == ("PID778899", "Smithers^Waylon")
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID) == (
            was.StudyInstanceUID, was.SeriesInstanceUID, was.FrameOfReferenceUID)
        assert (ds.StudyDate, ds.AcquisitionDate, ds.PatientBirthDate) == ("20240115", "20240116", "19610412")
        assert ds.file_meta.MediaStorageSOPInstanceUID == uid
        assert ds.PatientIdentityRemoved == "NO" and "DeidentificationMethodCodeSequence" not in ds
    seg = next(ds for ds in back.values() if ds.SeriesNumber == 2)
    was = next(ds for ds in originals.values() if ds.SeriesNumber == 2)
    assert [i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence] == [
        i.ReferencedSOPInstanceUID for i in was.ReferencedSeriesSequence[0].ReferencedInstanceSequence]


def test_an_object_made_elsewhere_points_at_the_originals_again(tmp_path: Path) -> None:
    db, sources, pseudonym = _deidentified_into_db(tmp_path)
    ct = [pydicom.dcmread(p) for p in sorted((tmp_path / "deid").rglob("*.dcm"))]
    ct = [ds for ds in ct if ds.SeriesNumber == 1]
    made = ct[0].copy()  # what a research partner's tool made from the de-identified CT
    own_uid, own_series = generate_uid(), generate_uid()
    made.SOPInstanceUID, made.SeriesInstanceUID, made.SeriesNumber = own_uid, own_series, 9
    made.file_meta.MediaStorageSOPInstanceUID = own_uid
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ct[1].SOPClassUID, ct[1].SOPInstanceUID
    made.SourceImageSequence = Sequence([item])
    (tmp_path / "partner").mkdir()
    made.save_as(tmp_path / "partner" / "seg.dcm")
    with DicomDatabase.open(Path(db)) as opened:
        import_paths(opened, [tmp_path / "partner"], ImportMode.COPY)
    done = run("--db", db, "reidentify", own_series, "-o", str(tmp_path / "back"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kept_uids"] == 2  # its own SOP Instance and Series UIDs
    back = pydicom.dcmread(next((tmp_path / "back").rglob("*.dcm")))
    original_ct = {ds.InstanceNumber: ds for ds in map(pydicom.dcmread, sources) if ds.SeriesNumber == 1}
    assert back.SOPInstanceUID == own_uid and back.SeriesInstanceUID == own_series
    assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == original_ct[ct[1].InstanceNumber].SOPInstanceUID
    assert back.StudyInstanceUID == original_ct[1].StudyInstanceUID and back.PatientID == "PID778899"

    into = run("--db", db, "reidentify", own_series, "--into-db")
    assert into.returncode == 0, into.stderr
    assert "1 replaced the instances of the same SOP Instance UID there" in into.stdout
    with DicomDatabase.open(Path(db)) as opened:  # the object moved to the original patient and study
        assert sorted(str(p["PatientID"]) for p in opened.patients()) == sorted(["PID778899", pseudonym])
        filed = opened.conn.execute(
            "SELECT p.PatientID, st.StudyInstanceUID FROM instances i JOIN series se ON i.series_fk = se.id "
            "JOIN studies st ON se.study_fk = st.id JOIN patients p ON st.patient_fk = p.id "
            "WHERE i.SOPInstanceUID = ?", (own_uid,)).fetchall()
    assert filed == [("PID778899", original_ct[1].StudyInstanceUID)]


def test_reidentify_refuses_what_the_mapping_does_not_know(tmp_path: Path) -> None:
    db, _, _ = _deidentified_into_db(tmp_path)
    write_series(tmp_path / "stranger", SeriesSpec(patient_id="STRANGER", patient_name="Other^One", slices=2))
    with DicomDatabase.open(Path(db)) as opened:
        import_paths(opened, [tmp_path / "stranger"], ImportMode.COPY)
    refused = run("--db", db, "reidentify", "STRANGER", "-o", str(tmp_path / "back"))
    assert refused.returncode == 2
    assert "2 files were not re-identified: the de-identification mapping has no patient with the pseudonym " \
           "'STRANGER'" in refused.stdout
    assert not list((tmp_path / "back").rglob("*.dcm"))

    write_series(tmp_path / "plain", SeriesSpec(patient_id="PLAIN", slices=1))
    with DicomDatabase.open(tmp_path / "db2") as opened:
        import_paths(opened, [tmp_path / "plain"], ImportMode.COPY)
    none = run("--db", str(tmp_path / "db2"), "reidentify", "PLAIN", "-o", str(tmp_path / "x"))
    assert none.returncode == 2 and "has no de-identification mapping" in none.stderr
    nowhere = run("--db", db, "reidentify", "STRANGER")
    assert nowhere.returncode == 2 and "-o DIR or --into-db" in nowhere.stderr
