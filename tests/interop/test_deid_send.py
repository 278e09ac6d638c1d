"""`dicomtui send … --deidentify`: de-identified copies sent to real peers, never written to disk on our side —
DCMTK storescp (C-STORE) and Orthanc with its DICOMweb plugin (STOW-RS, then QIDO-RS finds the pseudonym). The
pseudonyms and UIDs are those of an earlier de-identified export of the same patient (one mapping per database)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.interop.test_dicomweb import orthanc_dicomweb
from tests.interop.test_dimse import storescp  # noqa: F401 - fixture
from tests.test_cli import run
from tests.test_deidentify import IDENTIFYING, _database, _encodings

pytestmark = pytest.mark.interop


def _original_uids(sources: list[Path]) -> set[str]:
    return {str(v) for ds in map(pydicom.dcmread, sources) for v in (ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                                                    ds.SOPInstanceUID, ds.FrameOfReferenceUID)}


def _assert_nothing_identifying(files: list[Path], uids: set[str]) -> None:
    for path in files:
        data = path.read_bytes()
        for value in IDENTIFYING + sorted(uids):
            for encoded in _encodings(value):
                assert encoded not in data, (value, path)


def test_send_deidentified_to_storescp_matches_an_earlier_export(tmp_path: Path, storescp) -> None:  # noqa: F811
    node, received = storescp
    db, sources = _database(tmp_path)
    uids = _original_uids(sources)
    exported = run("--db", db, "deidentify", "PID778899", "-o", str(tmp_path / "export"), "--profile-option",
                   "modified-dates")
    assert exported.returncode == 0, exported.stderr
    assert run("nodes", "add", "ref", node.address).returncode == 0
    done = run("--db", db, "send", "PID778899", "--to", "ref", "--deidentify", "--profile-option",
               "modified-dates", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"success": 4, "warning": 0, "failure": 0} and report["left_out"] == []
    files = sorted(received.iterdir())
    assert len(files) == 4
    _assert_nothing_identifying(files, uids)
    sent = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, files)}
    assert {item["sop_instance_uid"] for item in report["items"]} == set(sent)  # the report names what was sent
    # the same pseudonym, dates and UIDs as the export: one mapping for every job of this database
    earlier = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, (tmp_path / "export").rglob("*.dcm"))}
    assert set(sent) == set(earlier)
    assert {ds.PatientID for ds in sent.values()} == {ds.PatientID for ds in earlier.values()}
    assert {ds.StudyDate for ds in sent.values()} == {ds.StudyDate for ds in earlier.values()}
    # references inside the sent study point at the sent instances
    seg = next(ds for ds in sent.values() if ds.SeriesNumber == 2)
    ct = {uid for uid, ds in sent.items() if ds.SeriesNumber == 1}
    assert {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == ct
    assert all(ds.PatientIdentityRemoved == "YES" for ds in sent.values())


def test_burned_in_files_are_not_sent_unless_accepted(tmp_path: Path, storescp) -> None:  # noqa: F811
    node, received = storescp
    write_series(tmp_path / "in", SeriesSpec(modality="US", patient_id="USPAT", slices=2))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"], ImportMode.COPY)
    assert run("nodes", "add", "ref", node.address).returncode == 0
    refused = run("--db", str(tmp_path / "db"), "send", "USPAT", "--to", "ref", "--deidentify", "--json")
    assert refused.returncode == 2, refused.stderr  # nothing sent
    assert len(json.loads(refused.stdout)["left_out"]) == 2 and "--accept-burned-in" in refused.stderr
    assert list(received.iterdir()) == []
    accepted = run("--db", str(tmp_path / "db"), "send", "USPAT", "--to", "ref", "--deidentify",
                   "--accept-burned-in")
    assert accepted.returncode == 0, accepted.stderr
    assert len(list(received.iterdir())) == 2


def test_stow_deidentified_then_qido_finds_the_pseudonym(tmp_path: Path) -> None:
    from dicomtui.core.net.query import QueryFilters
    from dicomtui.core.net.web import qido

    db, sources = _database(tmp_path)
    uids = _original_uids(sources)
    study_uid = str(pydicom.dcmread(sources[0]).StudyInstanceUID)
    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        assert run("nodes", "add", "web", "--url", node.url).returncode == 0
        done = run("--db", db, "send", "PID778899", "--to", "web", "--deidentify", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["counts"]["success"] == 4
        mapping = database_mapping(db)
        pseudonym = mapping.known_patient("PID778899").pseudonym
        studies = qido(node, "study")
        assert [(s["PatientID"], s["NumberOfStudyRelatedInstances"]) for s in studies] == [(pseudonym, "4")]
        assert studies[0]["StudyInstanceUID"] == mapping.known_uid(study_uid)
        assert qido(node, "study", QueryFilters(patient_id="PID778899")) == []
        images = qido(node, "image", QueryFilters(study_uid=studies[0]["StudyInstanceUID"]))
        assert not {i["SOPInstanceUID"] for i in images} & uids and len(images) == 4
