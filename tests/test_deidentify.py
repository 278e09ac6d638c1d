"""De-identification (PS3.15 Basic Profile + options) of a study whose identity hides everywhere: in the patient
module, descriptions, people and institutions, request sequences, a sequence three deep, private tags (a known
safe creator and an unknown one), other patient IDs, dates and times, references between instances (a SEG-like
reference and a SourceImageSequence), in a Latin-1 character set. Run as the user does: `dicomtui deidentify`."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from datetime import date
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.deid_mapping import MAPPING_NAME, database_mapping
from dicomtui.core.export.deidentify import Deidentifier, DeidOptions, deidentified_names, has_burned_in_annotation
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program
from tests.interop.test_dimse import storescp  # noqa: F401 - fixture
from tests.test_cli import run

IDENTIFYING = ["Smithers^Waylon", "Smithers", "Waylon", "PID778899", "OTHER5566", "ACC31337", "19610412",
               "Städtische Klinik Süd", "742 Evergreen Terrace", "Hibbert^Julius", "Burns^Montgomery",
               "RPID4242", "SPS9191", "Flanders^Ned", "Knee of Waylon", "SECRETSTATION", "ACME SECRET", "OP-NOTE-77",
               "20240115", "20240116"]


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _fixture(folder: Path) -> list[Path]:
    """Three CT slices and a SEG-like instance referencing them, every identifying value above inside."""
    spec = SeriesSpec(patient_name="Smithers^Waylon", patient_id="PID778899", birth_date="19610412",
                      accession="ACC31337", study_description="Knee of Waylon", series_description="Axial",
                      study_date="20240115", slices=3)
    paths = write_series(folder / "ct", spec)
    seg_spec = SeriesSpec(**{**spec.__dict__, "series_number": 2, "series_uid": generate_uid(), "slices": 1,
                             "modality": "OT"})
    paths += write_series(folder / "seg", seg_spec)
    ct = [pydicom.dcmread(p) for p in paths[:3]]
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.InstitutionName = "Städtische Klinik Süd"
        ds.InstitutionAddress = "742 Evergreen Terrace"
        ds.ReferringPhysicianName = "Hibbert^Julius"
        ds.OperatorsName = "Burns^Montgomery"
        ds.StationName = "SECRETSTATION"
        ds.AcquisitionDate, ds.ContentDate, ds.SeriesDate = "20240116", "20240116", "20240115"
        ds.OtherPatientIDsSequence = Sequence([_item(PatientID="OTHER5566", TypeOfPatientID="TEXT")])
        deep = _item(CodeValue="1", CodingSchemeDesignator="99X", CodeMeaning="x",
                     ContentSequence=Sequence([_item(PersonName="Flanders^Ned", ValueType="PNAME")]))
        ds.RequestAttributesSequence = Sequence([_item(RequestedProcedureID="RPID4242",
                                                       ScheduledProcedureStepID="SPS9191",
                                                       ScheduledProtocolCodeSequence=Sequence([deep]))])
        ds.ImageComments = "OP-NOTE-77"
        ds.private_block(0x0029, "ACME SECRET", create=True).add_new(0x10, "LO", "PID778899 Smithers")
        ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", "1000")
        if ds.SeriesNumber == 2:  # the SEG-like references
            ds.ReferencedSeriesSequence = Sequence([_item(
                SeriesInstanceUID=ct[0].SeriesInstanceUID,
                ReferencedInstanceSequence=Sequence([_item(ReferencedSOPClassUID=c.SOPClassUID,
                                                           ReferencedSOPInstanceUID=c.SOPInstanceUID) for c in ct]))])
            ds.SourceImageSequence = Sequence([_item(ReferencedSOPClassUID=ct[1].SOPClassUID,
                                                     ReferencedSOPInstanceUID=ct[1].SOPInstanceUID)])
        ds.preamble = b"PID778899 Smithers".ljust(128, b"\0")  # a vendor's text where PS3.10 allows any
        ds.save_as(path)
    return paths


def _database(tmp_path: Path) -> tuple[str, list[Path]]:
    paths = _fixture(tmp_path / "in")
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"], ImportMode.COPY)
    return str(tmp_path / "db"), paths


def _encodings(text: str) -> set[bytes]:
    found = set()
    for codec in ("ascii", "latin-1", "utf-8"):
        with contextlib.suppress(UnicodeEncodeError):
            found.add(text.encode(codec))
    return found


def test_deidentify_a_study_removes_every_identifying_value(tmp_path: Path) -> None:
    db, sources = _database(tmp_path)
    originals = [pydicom.dcmread(p) for p in sources]
    uids = {str(v) for ds in originals for v in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                                   ds.FrameOfReferenceUID)}
    out = tmp_path / "out"
    done = run("--db", db, "deidentify", "PID778899", "-o", str(out), "--profile-option", "modified-dates",
               "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["written"] == 4 and report["refused_burned_in"] == []
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 4
    for path in files:
        assert "PID778899" not in str(path) and "Smithers" not in str(path)
        data = path.read_bytes()
        for value in IDENTIFYING + sorted(uids):
            for encoded in _encodings(value):
                assert encoded not in data, (value, path)

    outputs = {ds.SeriesNumber: ds for ds in map(pydicom.dcmread, files)}
    ct = [ds for ds in map(pydicom.dcmread, files) if ds.SeriesNumber == 1]
    seg = outputs[2]
    # one patient, one study, one pseudonym; references point at the new UIDs of the output's own instances
    assert {ds.PatientID for ds in outputs.values()} == {str(seg.PatientName)}
    assert len({ds.StudyInstanceUID for ds in map(pydicom.dcmread, files)}) == 1
    assert {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in ct}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct[0].SeriesInstanceUID
    assert seg.SourceImageSequence[0].ReferencedSOPInstanceUID in {ds.SOPInstanceUID for ds in ct}
    assert {ds.FrameOfReferenceUID for ds in ct} == {seg.FrameOfReferenceUID}
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in ct)
    # dates keep their intervals (one offset per patient), times are kept
    days = (date.fromisoformat(seg.AcquisitionDate) - date.fromisoformat(seg.StudyDate)).days
    assert days == 1 and seg.StudyDate != "20240115" and seg.StudyTime == originals[3].StudyTime
    birth = (date.fromisoformat(seg.StudyDate) - date.fromisoformat(seg.PatientBirthDate)).days
    assert birth == (date(2024, 1, 15) - date(1961, 4, 12)).days
    # the record of what was done (PS3.15 E.1-1 note, CID 7050)
    assert seg.PatientIdentityRemoved == "YES" and seg.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in seg.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert "0029" not in {f"{e.tag.group:04X}" for e in seg} and "0019" not in {f"{e.tag.group:04X}" for e in seg}
    assert not seg.get("RequestAttributesSequence") and not seg.get("OtherPatientIDsSequence")

    # the mapping is in the database folder, not in the output; a second job gives the same pseudonym and UIDs
    assert (Path(db) / MAPPING_NAME).stat().st_mode & 0o777 == 0o600
    assert database_mapping(db).known_patient("PID778899").pseudonym == seg.PatientID
    assert not list(out.rglob(MAPPING_NAME))
    again = run("--db", db, "export", "PID778899", "-o", str(tmp_path / "again"), "--deidentify",
                "--profile-option", "modified-dates", "--json")
    assert again.returncode == 0, again.stderr
    second = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in (tmp_path / "again").rglob("*.dcm")}
    assert set(second) == {ds.SOPInstanceUID for ds in map(pydicom.dcmread, files)}
    assert {ds.PatientID for ds in second.values()} == {seg.PatientID}
    assert {ds.StudyDate for ds in second.values()} == {seg.StudyDate}


def test_without_modified_dates_the_dates_go_and_options_keep_what_they_name(tmp_path: Path) -> None:
    _fixture(tmp_path / "in")
    ds = pydicom.dcmread(next((tmp_path / "in" / "ct").glob("*.dcm")))
    Deidentifier()(ds)
    assert not ds.get("StudyDate") and ds.get("AcquisitionDate") in (None, "19000101") and ds.StudyTime in ("", None)
    assert "StationName" not in ds or ds.StationName != "SECRETSTATION"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100"]

    device = pydicom.dcmread(next((tmp_path / "in" / "ct").glob("*.dcm")))
    device.DeviceSerialNumber, device.DeviceUID, device.SourceFrameOfReferenceUID = "SN-1", "1.2.3.4", "1.2.3.5"
    Deidentifier(DeidOptions.from_names(["device-identity"]))(device)
    assert (device.DeviceSerialNumber, device.DeviceUID, device.StationName) == ("SN-1", "1.2.3.4", "SECRETSTATION")
    assert device.SourceFrameOfReferenceUID != "1.2.3.5" and device.PatientSex in ("", None)

    kept = pydicom.dcmread(next((tmp_path / "in" / "ct").glob("*.dcm")))
    study_uid = kept.StudyInstanceUID
    Deidentifier(DeidOptions.from_names(["patient-characteristics", "device-identity", "safe-private",
                                         "clean-descriptors", "retain-uids"]))(kept)
    assert kept.PatientSex == "O" and kept.StationName == "SECRETSTATION" and kept.StudyInstanceUID == study_uid
    assert kept.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == "1000"
    assert not any(e.tag.group == 0x0029 for e in kept)
    assert kept.SeriesDescription == "Axial"  # clean: no identifying word in it
    assert "StudyDescription" not in kept or "Waylon" not in str(kept.StudyDescription)  # "Knee of Waylon": removed
    assert [i.CodeValue for i in kept.DeidentificationMethodCodeSequence] == [
        "113100", "113108", "113109", "113111", "113105", "113110"]
    with pytest.raises(ValueError, match="unknown profile option 'nope'"):
        DeidOptions.from_names(["nope"])


def test_burned_in_annotation_is_refused_unless_accepted(tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(modality="US", patient_id="USPAT", slices=2))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"], ImportMode.COPY)
    refused = run("--db", str(tmp_path / "db"), "deidentify", "USPAT", "-o", str(tmp_path / "a"), "--json")
    assert refused.returncode == 2
    report = json.loads(refused.stdout)
    assert report["written"] == 0 and len(report["refused_burned_in"]) == 2
    assert "burned-in annotation" in report["notes"][0]
    accepted = run("--db", str(tmp_path / "db"), "deidentify", "USPAT", "-o", str(tmp_path / "b"),
                   "--accept-burned-in")
    assert accepted.returncode == 0, accepted.stderr
    assert len(list((tmp_path / "b").rglob("*.dcm"))) == 2
    no = Dataset()
    no.Modality, no.BurnedInAnnotation = "US", "NO"
    assert not has_burned_in_annotation(no)


def test_deidentified_names_keep_the_tree_shape_without_the_data() -> None:
    names = ["P1_Doe/2024_Knee/3_T1/0001.dcm", "P1_Doe/2024_Knee/3_T1/0002.dcm", "P1_Doe/2024_Knee/4_T2/0001.dcm",
             "P2_Roe/2023_Head/1_Ax/0001.dcm", "P1_Doe_3_T1_0001.dcm"]
    assert deidentified_names(names) == ["P0001/ST0001/SE0001/0001.dcm", "P0001/ST0001/SE0001/0002.dcm",
                                         "P0001/ST0001/SE0002/0001.dcm", "P0002/ST0001/SE0001/0001.dcm",
                                         "000005.dcm"]


def test_dciodvfy_reports_nothing_new(tmp_path: Path) -> None:
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    source = write_series(tmp_path / "in", SeriesSpec(slices=1))[0]
    ds = pydicom.dcmread(source)
    Deidentifier(DeidOptions.from_names(["modified-dates"]))(ds)
    ds.save_as(tmp_path / "out.dcm", enforce_file_format=True)
    assert _errors(dciodvfy, tmp_path / "out.dcm") <= _errors(dciodvfy, source)


def _errors(dciodvfy: str, path: Path) -> set[str]:
    out = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True)
    return {re.sub(r"<[^>]*>|\d", "", line) for line in (out.stdout + out.stderr).splitlines()
            if line.startswith("Error")}


def test_preview_shows_the_changes_and_writes_nothing(tmp_path: Path) -> None:
    db, _ = _database(tmp_path)
    done = run("--db", db, "deidentify", "PID778899", "--preview", "--profile-option", "modified-dates")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "~ InstitutionName: Städtische Klinik Süd -> (empty)" in lines and "- ImageComments: OP-NOTE-77" in lines
    assert any(line.startswith("~ PatientID: PID778899 -> DEID-") for line in lines)
    assert any(line.startswith("- RequestAttributesSequence: 1 item(s)") for line in lines)
    assert "+ PatientIdentityRemoved: YES" in lines
    assert not (Path(db) / MAPPING_NAME).exists()  # a preview adds nothing to the user's mapping
    nowhere = run("--db", db, "deidentify", "PID778899")
    assert nowhere.returncode == 2 and "-o DIR, --into-db" in nowhere.stderr


def test_into_db_adds_the_deidentified_copy_as_a_new_patient(tmp_path: Path) -> None:
    db, _ = _database(tmp_path)
    done = run("--db", db, "deidentify", "PID778899", "--into-db", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 4  # stdout stays one JSON object
    assert "imported 4 de-identified files into the database" in done.stderr
    with DicomDatabase.open(Path(db)) as opened:
        ids = sorted(str(p["PatientID"]) for p in opened.patients())
    pseudonym = database_mapping(db).known_patient("PID778899").pseudonym
    assert ids == sorted(["PID778899", pseudonym])


def test_send_the_deidentified_copies_to_dcmtk_storescp(tmp_path: Path, storescp) -> None:  # noqa: F811
    node, received = storescp
    db, _ = _database(tmp_path)
    assert run("nodes", "add", "ref", node.address).returncode == 0
    done = run("--db", db, "deidentify", "PID778899", "--send", "ref")
    assert done.returncode == 0, done.stderr
    files = sorted(received.iterdir())
    assert len(files) == 4
    for path in files:
        data = path.read_bytes()
        assert b"PID778899" not in data and b"Smithers" not in data and b"Evergreen" not in data
        assert pydicom.dcmread(path).PatientIdentityRemoved == "YES"


def test_a_deidentified_dicomdir_needs_the_modified_dates(tmp_path: Path) -> None:
    db, _ = _database(tmp_path)
    refused = run("--db", db, "export", "PID778899", "-o", str(tmp_path / "cd"), "--deidentify", "--dicomdir")
    assert refused.returncode == 2 and "add --profile-option modified-dates" in refused.stderr
    assert not (tmp_path / "cd").exists()
    done = run("--db", db, "export", "PID778899", "-o", str(tmp_path / "cd"), "--deidentify", "--dicomdir",
               "--profile-option", "modified-dates", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 4
    for path in (tmp_path / "cd").rglob("*"):
        if path.is_file():
            assert b"PID778899" not in path.read_bytes() and b"Smithers" not in path.read_bytes()
