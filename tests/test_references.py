"""Referenced series: given a CT and objects that refer to it (a SEG, an RT structure set, an RT plan and dose, a
DERIVED series naming its source images), when imported, then each object's references resolve to the CT and the
CT lists them — from what import stored, without opening a file; an older database is migrated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import referenced_by_line
from dicomtui.core.examine.references import referenced_by, references_of
from dicomtui.core.indexer import run_import
from dicomtui.core.synth import SeriesSpec, series_datasets

from .seg_data import write_ct, write_seg

RTSTRUCT, RTPLAN, RTDOSE = ("1.2.840.10008.5.1.4.1.1.481." + n for n in ("3", "5", "2"))


def _import(db: DicomDatabase, *paths: Path) -> None:
    *_, report = run_import(db, list(paths))
    assert not report.rejected, report.summary()


def _object(ct: Dataset, sop_class: str, modality: str, number: int) -> Dataset:
    """A bare RT object of the CT's patient and study (no pixels), its own series."""
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime"):
        setattr(ds, keyword, getattr(ct, keyword))
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = generate_uid(), number, modality
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def structure_set(ct: list[Dataset]) -> Dataset:
    """An RTSTRUCT naming the CT through ReferencedFrameOfReference → RTReferencedStudy → RTReferencedSeries
    (PS3.3 C.8.8.5)."""
    ds = _object(ct[0], RTSTRUCT, "RTSTRUCT", 20)
    series = _item(SeriesInstanceUID=ct[0].SeriesInstanceUID, ContourImageSequence=[
        _item(ReferencedSOPClassUID=c.SOPClassUID, ReferencedSOPInstanceUID=c.SOPInstanceUID) for c in ct])
    study = _item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                  ReferencedSOPInstanceUID=ct[0].StudyInstanceUID, RTReferencedSeriesSequence=[series])
    ds.ReferencedFrameOfReferenceSequence = [_item(FrameOfReferenceUID=ct[0].FrameOfReferenceUID,
                                                   RTReferencedStudySequence=[study])]
    return ds


def plan_and_dose(ct: list[Dataset], structures: Dataset) -> tuple[Dataset, Dataset]:
    """An RT plan naming the structure set, and a dose naming the plan (PS3.3 C.8.8.9, C.8.8.3) in the CT's frame
    of reference."""
    plan = _object(ct[0], RTPLAN, "RTPLAN", 30)
    plan.ReferencedStructureSetSequence = [_item(ReferencedSOPClassUID=RTSTRUCT,
                                                 ReferencedSOPInstanceUID=structures.SOPInstanceUID)]
    dose = _object(ct[0], RTDOSE, "RTDOSE", 40)
    dose.FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    dose.ReferencedRTPlanSequence = [_item(ReferencedSOPClassUID=RTPLAN, ReferencedSOPInstanceUID=plan.SOPInstanceUID)]
    return plan, dose


def derived_series(ct: list[Dataset]) -> list[Dataset]:
    """A DERIVED series (a reformat) naming only its source images (SourceImageSequence, PS3.3 C.7.6.1)."""
    spec = SeriesSpec(slices=2, rows=16, cols=16, series_number=50, series_description="Reformat", seed=7,
                      patient_id=ct[0].PatientID, study_uid=ct[0].StudyInstanceUID)
    out = series_datasets(spec)
    for ds in out:
        ds.ImageType = ["DERIVED", "SECONDARY", "REFORMATTED"]
        ds.SourceImageSequence = [_item(ReferencedSOPClassUID=c.SOPClassUID,
                                        ReferencedSOPInstanceUID=c.SOPInstanceUID) for c in ct[:3]]
    return out


def _save(folder: Path, *datasets: Dataset) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for ds in datasets:
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)


def _everything(tmp_path: Path) -> tuple[list[Dataset], dict[str, str]]:
    ct = write_ct(tmp_path / "in" / "ct")
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[2:4, 3:7, 3:7] = 1
    seg_a = write_seg(tmp_path / "in" / "seg" / "a.dcm", ct, labels)
    seg_b = write_seg(tmp_path / "in" / "seg2" / "b.dcm", ct, labels)
    structures = structure_set(ct)
    plan, dose = plan_and_dose(ct, structures)
    reformat = derived_series(ct)
    _save(tmp_path / "in" / "rt", structures, plan, dose, *reformat)
    return ct, {"seg": seg_a.SeriesInstanceUID, "seg2": seg_b.SeriesInstanceUID,
                "rtstruct": structures.SeriesInstanceUID, "plan": plan.SeriesInstanceUID,
                "dose": dose.SeriesInstanceUID, "reformat": reformat[0].SeriesInstanceUID}


def test_every_kind_of_reference_resolves_to_the_ct_and_the_ct_lists_them(db, tmp_path):
    ct, uids = _everything(tmp_path)
    _import(db, tmp_path / "in")
    ct_uid = ct[0].SeriesInstanceUID
    for name in ("seg", "seg2", "rtstruct", "plan", "dose", "reformat"):
        assert references_of(db, uids[name]) == [ct_uid], name
    assert references_of(db, ct_uid) == []
    kinds = sorted((r.kind, r.series_uid) for r in referenced_by(db, ct_uid))
    assert [k for k, _ in kinds] == ["derived series", "derived series", "dose", "plan", "segmentation",
                                     "segmentation", "structure set"]
    assert referenced_by_line(db, ct_uid) == ("referenced by 2 segmentations, 1 structure set, 1 dose, 1 plan, "
                                              "1 derived series")


def test_a_dose_without_its_plan_falls_back_on_the_frame_of_reference(db, tmp_path):
    ct = write_ct(tmp_path / "in" / "ct")
    structures = structure_set(ct)
    _plan, dose = plan_and_dose(ct, structures)
    _save(tmp_path / "in" / "rt", dose)  # neither the plan nor the structure set is imported
    _import(db, tmp_path / "in")
    assert references_of(db, dose.SeriesInstanceUID) == [ct[0].SeriesInstanceUID]
    assert referenced_by_line(db, ct[0].SeriesInstanceUID) == "referenced by 1 dose"


def test_a_reference_to_a_series_not_in_the_database_resolves_to_nothing(db, tmp_path):
    ct = write_ct(tmp_path / "ct")
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[2, 3:7, 3:7] = 1
    seg = write_seg(tmp_path / "seg" / "a.dcm", ct, labels)
    _import(db, tmp_path / "seg")
    assert references_of(db, seg.SeriesInstanceUID) == []
    stored = db.conn.execute("SELECT refs FROM instances").fetchone()[0]
    assert json.loads(stored) == {"series": [ct[0].SeriesInstanceUID], "for": [ct[0].FrameOfReferenceUID]}


def test_images_that_are_not_derived_are_not_read_for_references(db, tmp_path):
    write_ct(tmp_path / "ct")
    _import(db, tmp_path / "ct")
    assert db.conn.execute("SELECT COUNT(*) FROM instances WHERE refs IS NOT NULL").fetchone()[0] == 0


def test_a_schema_3_database_is_migrated_and_its_references_read(tmp_path):
    ct, uids = _everything(tmp_path)
    with DicomDatabase.open(tmp_path / "db") as db:
        _import(db, tmp_path / "in")
        db.conn.execute("DROP INDEX instances_refs")
        db.conn.execute("ALTER TABLE instances DROP COLUMN refs")
        db.conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with DicomDatabase.open(tmp_path / "db") as db:
        assert referenced_by_line(db, ct[0].SeriesInstanceUID) == (
            "referenced by 2 segmentations, 1 structure set, 1 dose, 1 plan, 1 derived series")
        assert references_of(db, uids["dose"]) == [ct[0].SeriesInstanceUID]
        plan = db.conn.execute("EXPLAIN QUERY PLAN SELECT 1 FROM instances WHERE path = ? AND stored = 1",
                               ("dicom/x.dcm",)).fetchall()
        assert "instances_stored_path" in str(plan)  # version 5: the stored-path index, not a scan per file


def test_the_examine_line_is_empty_for_a_series_nothing_refers_to(db, tmp_path):
    ct = write_ct(tmp_path / "ct")
    _import(db, tmp_path / "ct")
    assert referenced_by_line(db, ct[0].SeriesInstanceUID) == ""


def test_every_image_of_a_derived_series_carries_its_series_references(db, tmp_path):
    """The first DERIVED image of a series read by an import process gives its references to the others (one
    pydicom read per series, not per image): every row holds them, and they resolve to the CT."""
    ct = write_ct(tmp_path / "in" / "ct")
    reformat = derived_series(ct)
    _save(tmp_path / "in" / "reformat", *reformat)
    _import(db, tmp_path / "in")
    stored = [r[0] for r in db.conn.execute("SELECT refs FROM instances WHERE refs IS NOT NULL")]
    assert len(stored) == len(reformat) and len(set(stored)) == 1
    assert references_of(db, reformat[0].SeriesInstanceUID) == [ct[0].SeriesInstanceUID]


def test_the_frame_of_reference_fallback_stays_within_the_patient(db, tmp_path):
    """A frame of reference is one patient's: another patient's series that (wrongly) carries the same
    FrameOfReferenceUID is not what a dose without its plan refers to."""
    ct = write_ct(tmp_path / "in" / "ct")
    other = series_datasets(SeriesSpec(slices=2, rows=16, cols=16, patient_id="OTHER", patient_name="Other^Pat",
                                       seed=9))
    for ds in other:
        ds.FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    _save(tmp_path / "in" / "other", *other)
    _plan, dose = plan_and_dose(ct, structure_set(ct))
    _save(tmp_path / "in" / "rt", dose)
    _import(db, tmp_path / "in")
    assert references_of(db, dose.SeriesInstanceUID) == [ct[0].SeriesInstanceUID]
    assert referenced_by_line(db, other[0].SeriesInstanceUID) == ""
