"""A series filed under the wrong patient (issue 16, tag editor): the part of a study the user selects becomes a new
study (new Study, Series and SOP Instance UIDs, as Orthanc's ``/studies/{id}/split`` makes one) under the patient
the edit names, merged into that patient when it is indexed; the originals stay where they were. Without
``as_new_study`` the plan refuses such an edit and names the way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.edit import apply_edit, plan_edit
from dicomtui.core.export.edit_identity import uid_changer
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series

from .conftest import require_program
from .seg_data import write_ct, write_seg

STUDY = "1.2.826.0.1.3680043.9.7433.77.1"
ROOT = "1.2.826.0.1.3680043.10.1147.77"
CT = SeriesSpec(patient_id="J1", patient_name="Doe^Jane", study_uid=STUDY, series_number=1, slices=4, rows=16,
                cols=16, pixel_spacing=(1.0, 1.0), origin=(0.0, 0.0, 0.0))


def _ref_series(uid: str) -> Dataset:
    item = Dataset()
    item.SeriesInstanceUID = uid
    return item


def _db(tmp_path: Path) -> DicomDatabase:
    """Patient J1 (Doe^Jane): study STUDY with series 1 (CT, 4 slices), series 2 (CT, 3 slices) and a SEG of series
    1; series 1's first file refers to series 2 (ReferencedSeriesSequence). Patient K2 (Roe^Rick): one study."""
    ct = write_ct(tmp_path / "in" / "ct", CT)
    other = write_series(tmp_path / "in" / "other", SeriesSpec(patient_id="J1", patient_name="Doe^Jane",
                                                              study_uid=STUDY, series_number=2, slices=3))
    first = tmp_path / "in" / "ct" / "IM000.dcm"
    ds = pydicom.dcmread(first)
    ds.ReferencedSeriesSequence = [_ref_series(pydicom.dcmread(other[0]).SeriesInstanceUID)]
    ds.save_as(first)
    labels = np.zeros((CT.slices, CT.rows, CT.cols), np.uint8)
    labels[1:3, 4:10, 4:10] = 1
    write_seg(tmp_path / "in" / "seg" / "seg.dcm", ct, labels)
    write_series(tmp_path / "in" / "k2", SeriesSpec(patient_id="K2", patient_name="Roe^Rick", slices=2,
                                                    study_description="K2's own study"))
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"], "copy", workers=0)
    return db


def _series(db: DicomDatabase, **match: object) -> dict:
    return next(s for s in db.series() if all(s[k] == v for k, v in match.items()))


def _datasets(db: DicomDatabase, item: Item) -> list[Dataset]:
    return [pydicom.dcmread(f["path"]) for f in db.instance_files([item])]


def _patient_studies(db: DicomDatabase) -> dict[str, list[str]]:
    return {p["PatientID"]: sorted(s["StudyInstanceUID"] for s in db.studies([p["id"]])) for p in db.patients()}


def test_one_series_and_its_seg_move_to_another_patient_as_a_new_study(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        ct, seg, kept = _series(db, SeriesNumber=1), _series(db, Modality="SEG"), _series(db, SeriesNumber=2)
        k2_study = _patient_studies(db)["K2"][0]
        before = {f["path"]: Path(f["path"]).read_bytes() for f in db.instance_files([(Level.STUDY, ct["study_fk"])])}
        selection = [Item(Level.SERIES, ct["id"]), Item(Level.SERIES, seg["id"])]
        plan = plan_edit(db, selection, {"PatientID": "K2", "PatientName": "Roe^Rick"}, as_new_study=True)
        assert not plan.problems
        assert plan.diff()[0] == ("5 files to write, as a new study (new Study, Series and SOP Instance UIDs; "
                                  "the originals stay)")
        assert plan.reparent == [f"study {STUDY} of patient J1: 5 of its 8 instances (2 series of 3) become a new "
                                 f"study under patient K2 (merged: 1 study there now); the originals stay"]
        assert any("shares its AccessionNumber 'ACC0001'" in w for w in plan.warnings)
        (placement,) = plan.placement
        assert (placement.patient_id, placement.existing, placement.instances) == ("K2", True, 5)

        report = apply_edit(db, plan, uid_root=ROOT)
        assert report.written == 5 and not report.errors
        (new_study,) = report.new_studies
        assert new_study.startswith(ROOT + ".") and len(report.new_series) == 2
        assert report.originals == sorted([ct["SeriesInstanceUID"], seg["SeriesInstanceUID"]])
        assert f"New study: {new_study}." in report.summary()
        assert f"`dicomtui rm {' '.join(report.originals)}`" in report.summary()

        # the original study unchanged under J1 (all three series, every byte); the copy merged into K2
        assert _patient_studies(db) == {"J1": [STUDY], "K2": sorted([k2_study, new_study])}
        assert {f: Path(f).read_bytes() for f in before} == before
        assert db.find(Level.STUDY, STUDY)["num_instances"] == 8
        row = db.find(Level.STUDY, new_study)
        assert (row["num_series"], row["num_instances"], row["StudyDescription"], row["StudyDate"]) == (
            2, 5, "Synthetic study", "20240115")
        assert db.check().ok

        new_ct = _datasets(db, Item(Level.SERIES, db.find(Level.SERIES, report.new_series[0])["id"]))
        new_seg = _datasets(db, Item(Level.SERIES, db.find(Level.SERIES, report.new_series[1])["id"]))
        if new_ct[0].Modality == "SEG":
            new_ct, new_seg = new_seg, new_ct
        old_ct = {d.InstanceNumber: d for d in _datasets(db, Item(Level.SERIES, ct["id"]))}
        assert {(d.PatientID, str(d.PatientName), d.StudyInstanceUID) for d in new_ct + new_seg} == {
            ("K2", "Roe^Rick", new_study)}
        for d in new_ct:
            old = old_ct[d.InstanceNumber]
            assert d.SOPInstanceUID != old.SOPInstanceUID and d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
            assert d.FrameOfReferenceUID == old.FrameOfReferenceUID  # the same patient frame as its source
            assert d.AccessionNumber == "ACC0001" and d.StudyID == old.StudyID
        # a reference outside the selection keeps pointing at the original series
        (referring,) = [d for d in new_ct if "ReferencedSeriesSequence" in d]
        assert referring.ReferencedSeriesSequence[0].SeriesInstanceUID == kept["SeriesInstanceUID"]
        # the SEG in the moved part follows the map to the moved CT
        (s,) = new_seg
        new_ct_series, new_sops = new_ct[0].SeriesInstanceUID, {d.SOPInstanceUID for d in new_ct}
        assert s.ReferencedSeriesSequence[0].SeriesInstanceUID == new_ct_series
        referenced = s.ReferencedSeriesSequence[0].ReferencedInstanceSequence
        assert {r.ReferencedSOPInstanceUID for r in referenced} <= new_sops
        sources = {src.ReferencedSOPInstanceUID for frame in s.PerFrameFunctionalGroupsSequence
                   for der in frame.DerivationImageSequence for src in der.SourceImageSequence}
        assert sources and sources <= new_sops


@pytest.mark.parametrize("as_new_series", [False, True])
def test_without_a_new_study_the_refusal_names_the_way(tmp_path: Path, as_new_series: bool) -> None:
    with _db(tmp_path) as db:
        item = Item(Level.SERIES, _series(db, SeriesNumber=1)["id"])
        plan = plan_edit(db, [item], {"PatientID": "K2"}, as_new_series=as_new_series)
        (problem,) = plan.problems
        assert "a study belongs to one patient" in problem
        assert "edit --as-new-study; the form's \"As a new study\" switch" in problem
        assert not plan.reparent  # nothing moves: no sentence says it would
        assert not plan_edit(db, [item], {"PatientID": "K2"}, as_new_study=True).problems


def test_a_whole_study_as_a_new_study_of_a_new_patient_and_a_name_that_differs(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        study = Item(Level.STUDY, _series(db, SeriesNumber=1)["study_fk"])
        plan = plan_edit(db, [study], {"PatientID": "N3", "AccessionNumber": "ACC0002"}, as_new_study=True)
        assert plan.reparent == [f"study {STUDY} of patient J1: all 8 instances become a new study under a new "
                                 f"patient N3; the originals stay"]
        assert not any("AccessionNumber" in w for w in plan.warnings)  # edited: nothing shared
        plan = plan_edit(db, [study], {"PatientID": "K2"}, as_new_study=True)  # K2's name is Roe^Rick
        assert any("patient K2 is indexed with another name ('Roe^Rick')" in w for w in plan.warnings)
        assert plan.placement[0].existing is False
        plan = plan_edit(db, [study], {"StudyDescription": "Split"}, as_new_study=True)  # the same patient
        assert "become a new study beside it, under patient J1" in plan.reparent[0]
        report = apply_edit(db, plan)
        assert report.written == 8 and len(_patient_studies(db)["J1"]) == 2
        assert db.find(Level.STUDY, STUDY)["StudyDescription"] == "Synthetic study"
        assert db.find(Level.STUDY, report.new_studies[0])["StudyDescription"] == "Split"


def test_two_studies_of_two_patients_become_two_new_studies_of_one_new_patient(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        before = _patient_studies(db)
        studies = [Item(Level.STUDY, s["id"]) for s in db.studies()]
        plan = plan_edit(db, studies, {"PatientID": "N3", "PatientName": "New^Pat"}, as_new_study=True)
        assert [line.split(": ", 1)[1] for line in plan.reparent] == [
            "all 8 instances become a new study under a new patient N3; the originals stay",
            "all 2 instances become a new study under the new patient N3 too; the originals stay"]
        report = apply_edit(db, plan)
        assert report.written == 10 and len(report.new_studies) == 2
        assert _patient_studies(db) == {**before, "N3": sorted(report.new_studies)}


def test_a_study_reference_inside_an_item_follows_only_with_a_moved_series() -> None:
    """Evidence items name a study and its series: the item of a moved series takes the new study's UID, the item
    of a series left behind keeps the source study's."""
    files = [SimpleNamespace(uids={Level.STUDY: "1.1", Level.SERIES: "1.1.1", Level.INSTANCE: "1.1.1.1"})]
    change = uid_changer(files, new_study=True, uid_root=ROOT)
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.1", "1.1.1", "1.1.1.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    moved, left = Dataset(), Dataset()
    moved.StudyInstanceUID, moved.ReferencedSeriesSequence = "1.1", [_ref_series("1.1.1")]
    left.StudyInstanceUID, left.ReferencedSeriesSequence = "1.1", [_ref_series("1.1.2")]
    ds.CurrentRequestedProcedureEvidenceSequence = [moved, left]
    # a UI element of two values (ReferencedSOPInstanceUID is VM 1, but files in the wild break that): each mapped
    ds.add_new(0x00081155, "UI", ["1.1.1.1", "1.2.3.4"])
    change(ds)
    new_study, new_series = change.studies["1.1"], change.series["1.1.1"]
    assert ds.StudyInstanceUID == new_study and ds.SeriesInstanceUID == new_series
    assert ds.SOPInstanceUID != "1.1.1.1" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    moved, left = ds.CurrentRequestedProcedureEvidenceSequence
    assert (moved.StudyInstanceUID, moved.ReferencedSeriesSequence[0].SeriesInstanceUID) == (new_study, new_series)
    assert (left.StudyInstanceUID, left.ReferencedSeriesSequence[0].SeriesInstanceUID) == ("1.1", "1.1.2")
    assert list(ds[0x00081155].value) == [ds.SOPInstanceUID, "1.2.3.4"]


def test_dciodvfy_finds_no_new_error_in_the_moved_files(tmp_path: Path) -> None:
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    with _db(tmp_path) as db:
        ct, seg = _series(db, SeriesNumber=1), _series(db, Modality="SEG")
        originals = {d["SeriesInstanceUID"]: db.instance_files([Item(Level.SERIES, d["id"])])[0]["path"]
                     for d in (ct, seg)}
        plan = plan_edit(db, [Item(Level.SERIES, ct["id"]), Item(Level.SERIES, seg["id"])],
                         {"PatientID": "K2", "PatientName": "Roe^Rick"}, as_new_study=True)
        report = apply_edit(db, plan)
        for old_uid, path in originals.items():
            modality = _series(db, SeriesInstanceUID=old_uid)["Modality"]
            new = next(s for s in db.series() if s["Modality"] == modality and s["SeriesInstanceUID"] in
                       report.new_series)
            moved = db.instance_files([Item(Level.SERIES, new["id"])])[0]["path"]
            assert _errors(dciodvfy, moved) <= _errors(dciodvfy, path), modality


def _errors(dciodvfy: str, path: str) -> set[str]:
    out = subprocess.run([dciodvfy, path], capture_output=True, text=True)
    return {line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomtui", *args], capture_output=True, text=True, timeout=120)


def test_cli_as_new_study_dry_run_json_then_the_originals_removed_as_the_summary_says(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        ct = _series(db, SeriesNumber=1)
        uid = ct["SeriesInstanceUID"]
        snapshot = {f["path"]: Path(f["path"]).read_bytes()
                    for f in db.instance_files([Item(Level.STUDY, ct["study_fk"])])}
    dbp = str(tmp_path / "db")
    out = _cli("--db", dbp, "edit", uid, "--set", "PatientID=K2", "--set", "PatientName=Roe^Rick", "--dry-run")
    assert out.returncode == 2 and "--as-new-study" in out.stderr
    out = _cli("--db", dbp, "edit", uid, "--set", "PatientID=K2", "--set", "PatientName=Roe^Rick", "--as-new-study",
               "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "4 files to write, as a new study (new Study, Series and SOP Instance UIDs; the originals stay)"
    assert (f"patients: study {STUDY} of patient J1: 4 of its 8 instances (1 series of 3) become a new study under "
            f"patient K2 (merged: 1 study there now); the originals stay") in lines
    assert {f: Path(f).read_bytes() for f in snapshot} == snapshot
    out = _cli("--db", dbp, "edit", uid, "--set", "PatientID=K2", "--set", "PatientName=Roe^Rick", "--as-new-study",
               "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["plan"]["as_new_study"] is True
    assert result["plan"]["placement"] == [{"source_study": STUDY, "source_patient": "J1", "instances": 4, "of": 8,
                                            "series": 1, "patient_id": "K2", "patient_name": "Roe^Rick",
                                            "existing_patient": True}]
    (new_study,) = result["report"]["new_studies"]
    assert result["report"]["originals"] == [uid]
    out = _cli("--db", dbp, "rm", "--yes", *result["report"]["originals"])
    assert out.returncode == 0, out.stderr
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.find(Level.SERIES, uid) is None
        assert db.find(Level.STUDY, STUDY)["num_instances"] == 4  # series 2 and the SEG stay with J1
        assert db.find(Level.STUDY, new_study)["num_instances"] == 4
        assert db.check().ok


def test_references_left_behind_are_warned_of_in_the_plan(tmp_path: Path) -> None:
    """From what import recorded (no file opened): a SEG outside the selection that refers to a moved series keeps
    referring to the original; a moved SEG whose series stays refers across studies; both moved: no warning."""
    with _db(tmp_path) as db:
        ct, seg = _series(db, SeriesNumber=1), _series(db, Modality="SEG")
        only_ct = plan_edit(db, [Item(Level.SERIES, ct["id"])], {"PatientID": "K2", "PatientName": "Roe^Rick"},
                            as_new_study=True)
        assert (f"series {ct['SeriesInstanceUID']} is referenced by 1 segmentation outside the selection: they keep "
                f"referring to the original series, which stays (select them too to move them with it)"
                in only_ct.warnings)
        only_seg = plan_edit(db, [Item(Level.SERIES, seg["id"])], {"PatientID": "K2", "PatientName": "Roe^Rick"},
                             as_new_study=True)
        assert (f"series {seg['SeriesInstanceUID']} refers to 1 series left in the source study "
                f"({ct['SeriesInstanceUID']}): the new study's copy refers across studies" in only_seg.warnings)
        both = plan_edit(db, [Item(Level.SERIES, ct["id"]), Item(Level.SERIES, seg["id"])],
                         {"PatientID": "K2", "PatientName": "Roe^Rick"}, as_new_study=True)
        assert not [w for w in both.warnings if "refer" in w]
        new_series = plan_edit(db, [Item(Level.SERIES, ct["id"])], {"SeriesDescription": "copy"}, as_new_series=True)
        assert any("referenced by 1 segmentation outside the selection" in w for w in new_series.warnings)
