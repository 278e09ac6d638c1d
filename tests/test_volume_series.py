"""A Volume written as a new DICOM series: our own load of the result equals the Volume (values exactly or within
the reported error, affine within 1e-3 mm), with the reference's patient and study, new UIDs under the root."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import VolumeWriteError
from dicomtui.core.examine import examine_and_load
from dicomtui.core.export.volume_encoding import choose_encoding, format_ds
from dicomtui.core.export.volume_series import (
    CT_IMAGE,
    MR_IMAGE,
    SECONDARY_CAPTURE,
    SeriesOptions,
    write_volume_series,
)
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.core.volume import Volume
from dicomtui.core.volume_io import write_volume
from dicomtui.core.volume_read import read_image


def reference(db: DicomDatabase, tmp_path: Path, modality: str = "CT", **spec) -> str:
    """A reference series imported (copied) into ``db``; its SeriesInstanceUID."""
    write_series(tmp_path / f"ref-{modality}", SeriesSpec(modality=modality, slices=6, rows=24, cols=20, **spec))
    import_paths(db, [tmp_path / f"ref-{modality}"], mode="copy")
    return next(r["SeriesInstanceUID"] for r in db.series() if r["Modality"] == modality)


def load_series(db: DicomDatabase, series_uid: str) -> Volume:
    row = db.find("series", series_uid)
    assert row is not None
    report = examine_and_load(db, [row["id"]])
    (result,) = report.loaded
    (volume,) = result.volumes
    return volume


def oblique_affine(spacing=(0.7, 0.9, 2.5), origin=(-30.0, 12.5, 40.25)) -> np.ndarray:
    """A right-handed grid rotated 20° about x then 10° about z (i, j, k → LPS)."""
    a, b = np.radians(20), np.radians(10)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def test_int16_ct_round_trips_exactly_into_the_reference_study(db, tmp_path):
    like = reference(db, tmp_path, "CT")
    source = load_series(db, like)
    volume = Volume((source.array * 3 - 500).astype(np.int16), source.affine.copy(), name="derived")
    report = write_volume_series(volume, SeriesOptions(description="Tripled"), db=db, like=like)
    assert report.stored == 6 and not report.problems and report.encoding.exact
    back = load_series(db, report.series_uid)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
    row = db.find("series", report.series_uid)
    assert row["SeriesNumber"] == 1001 and row["SeriesDescription"] == "Tripled" and row["Modality"] == "CT"
    ds = pydicom.dcmread(db.abspath(db.instances([row["id"]])[0]["path"], True))
    ref_row = db.find("series", like)
    ref = pydicom.dcmread(db.abspath(db.instances([ref_row["id"]])[0]["path"], True))
    assert ds.SOPClassUID == CT_IMAGE
    assert ds.StudyInstanceUID == ref.StudyInstanceUID and ds.PatientID == ref.PatientID
    assert ds.PatientName == ref.PatientName and ds.FrameOfReferenceUID == ref.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != ref.SeriesInstanceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == like
    assert len(ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == 6
    assert like in ds.DerivationDescription
    assert ds.ImageType[0] == "DERIVED"
    # one study, one patient: the new series joined them
    assert len(db.studies()) == 1 and len(db.patients()) == 1


def test_oblique_float_mr_with_quarter_steps_round_trips_exactly(db, tmp_path):
    like = reference(db, tmp_path, "MR")
    rng = np.random.default_rng(3)
    array = (rng.integers(-4000, 4000, size=(5, 12, 9)) * 0.25).astype(np.float32)
    volume = Volume(array, oblique_affine(), name="quarters")
    report = write_volume_series(volume, SeriesOptions(), db=db, like=like)
    assert report.sop_class == MR_IMAGE and report.encoding.exact and report.encoding.slope_ds == "0.25"
    back = load_series(db, report.series_uid)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
    assert "values kept exactly (RescaleSlope 0.25" in report.summary()


def test_continuous_floats_keep_the_reported_precision(db, tmp_path):
    like = reference(db, tmp_path, "MR")
    rng = np.random.default_rng(5)
    array = (rng.random((4, 10, 8)) * 7.3 - 2.0).astype(np.float32)
    report = write_volume_series(Volume(array, oblique_affine()), SeriesOptions(), db=db, like=like)
    assert not report.encoding.exact
    error = float(np.abs(load_series(db, report.series_uid).array - array).max())
    assert error <= report.encoding.max_error + 1e-9
    assert report.encoding.max_error < 7.3 / 65535  # the smallest slope: about one 65,535th of the range
    assert f"values kept to ±{format_ds(report.encoding.max_error)}" in report.summary()


def test_no_reference_makes_a_secondary_capture_in_a_new_study_and_a_folder(db, tmp_path):
    volume = Volume(np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5) * 1000, oblique_affine())
    root = "1.2.3.4.5."
    out = tmp_path / "out"
    report = write_volume_series(volume, SeriesOptions(uid_root=root, patient_name="New^Patient", patient_id="P9"),
                                 db=db, folder=out)
    assert report.sop_class == SECONDARY_CAPTURE and report.stored == 3
    assert sorted(p.name for p in out.iterdir()) == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm"]
    ds = pydicom.dcmread(out / "IM0002.dcm")
    assert ds.SeriesInstanceUID.startswith(root) and ds.SOPInstanceUID.startswith(root)
    assert ds.StudyInstanceUID.startswith(root) and ds.PatientName == "New^Patient" and ds.PatientID == "P9"
    assert ds.InstanceNumber == 2 and ds.ConversionType == "WSD" and ds.Modality == "OT"
    back = load_series(db, report.series_uid)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
    with pytest.raises(VolumeWriteError, match="IM0001.dcm exists"):  # a folder's files are never overwritten
        write_volume_series(volume, SeriesOptions(), folder=out)


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_enhanced_is_one_multiframe_file_that_reloads_equal(db, tmp_path, modality):
    from dicomtui.core.export.volume_enhanced import LEGACY_ENHANCED_CT, LEGACY_ENHANCED_MR

    like = reference(db, tmp_path, modality)
    array = (np.random.default_rng(2).integers(-300, 300, size=(5, 12, 9)) * 0.5).astype(np.float32)
    volume = Volume(array, oblique_affine())
    report = write_volume_series(volume, SeriesOptions(enhanced=True), db=db, like=like, folder=tmp_path / "o")
    assert report.sop_class == (LEGACY_ENHANCED_CT if modality == "CT" else LEGACY_ENHANCED_MR)
    assert report.stored == 1 and [p.name for p in report.files] == ["IM0001.dcm"]
    assert "1 image of 5 frames" in report.summary()
    ds = pydicom.dcmread(report.files[0])
    assert ds.NumberOfFrames == 5
    assert ds.StudyInstanceUID == db.get("study", db.find("series", like)["study_fk"])["StudyInstanceUID"]
    assert ds.SourceImageEvidenceSequence[0].ReferencedSeriesSequence[0].SeriesInstanceUID == like
    back = load_series(db, report.series_uid)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)


def test_enhanced_secondary_capture_is_refused(tmp_path):
    with pytest.raises(VolumeWriteError, match="CT or MR only"):
        write_volume_series(Volume(np.zeros((2, 2, 2), np.int16), np.eye(4)), SeriesOptions(enhanced=True),
                            folder=tmp_path)


def test_integers_wider_than_16_bits_shift_by_an_intercept(tmp_path):
    volume = Volume(np.arange(-40000, 20000, 1000, dtype=np.int32).reshape(3, 4, 5), np.eye(4))
    report = write_volume_series(volume, SeriesOptions(), folder=tmp_path / "o")
    assert report.encoding.intercept_ds == "-40000" and report.encoding.exact
    db = DicomDatabase.open(tmp_path / "db")
    try:
        import_paths(db, [tmp_path / "o"], mode="link")
        np.testing.assert_array_equal(load_series(db, report.series_uid).array, volume.array)
    finally:
        db.close()


@pytest.mark.parametrize(("values", "slope", "intercept", "dtype", "exact"), [
    (np.array([-1024, 3071]), "1", "0", np.int16, True),
    (np.array([0, 65535]), "1", "0", np.uint16, True),
    (np.array([0.5, 100.0]), "0.5", "0", np.int16, True),
    (np.array([-3.0, 2.9]), "0.1", "0", np.int16, True),
    (np.array([123456.7, 123457.9]), "0.1", "123456.7", np.uint16, True),
    (np.array([0, 100000]), "1.52590219", "0", np.uint16, False),
])
def test_the_encoding_chosen(values, slope, intercept, dtype, exact):
    encoding = choose_encoding(values)
    assert (encoding.slope_ds, encoding.intercept_ds, encoding.dtype, encoding.exact) == (slope, intercept,
                                                                                           np.dtype(dtype), exact)


def test_values_no_stored_value_means_are_refused(tmp_path):
    with pytest.raises(VolumeWriteError, match="NaN or infinite"):
        choose_encoding(np.array([0.0, np.nan]))
    with pytest.raises(VolumeWriteError, match="not a UID root"):
        write_volume_series(Volume(np.zeros((1, 2, 2), np.int16), np.eye(4)), SeriesOptions(uid_root="1.02.x"),
                            folder=tmp_path)
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(VolumeWriteError, match="not 90°"):
        write_volume_series(Volume(np.zeros((1, 2, 2), np.int16), sheared), SeriesOptions(), folder=tmp_path)
    flat = np.diag([1.0, 1.0, 0.0, 1.0])
    with pytest.raises(VolumeWriteError, match="lie in one plane"):
        write_volume_series(Volume(np.zeros((2, 2, 2), np.int16), flat), SeriesOptions(), folder=tmp_path)
    assert not list(tmp_path.iterdir())  # every refusal comes before the first file


def test_a_tilted_stack_keeps_its_positions_and_says_so(tmp_path):
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    affine[1, 2] = 0.3  # each slice moves 0.3 mm along y: a gantry tilt
    report = write_volume_series(Volume(np.zeros((3, 4, 4), np.int16), affine), SeriesOptions(), folder=tmp_path)
    assert any("tilted" in w for w in report.warnings)
    positions = [pydicom.dcmread(p).ImagePositionPatient for p in report.files]
    assert [float(p[1]) for p in positions] == [0.0, 0.3, 0.6]
    assert float(pydicom.dcmread(report.files[0]).SpacingBetweenSlices) == 2.0


def test_slices_against_the_normal_come_back_in_position_order(db, tmp_path):
    """A left-handed grid (k against i × j, as many NIfTI files are): the reload orders slices along the normal,
    so it is the same voxels in the same places, with k reversed."""
    affine = np.diag([0.5, 0.5, -2.0, 1.0])
    affine[:3, 3] = (-4.0, -4.0, 10.0)
    volume = Volume(np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2), affine)
    report = write_volume_series(volume, SeriesOptions(modality="MR"), db=db)
    assert report.sop_class == MR_IMAGE
    back = load_series(db, report.series_uid)
    np.testing.assert_array_equal(back.array, volume.array[::-1])
    flipped = affine.copy()
    flipped[:3, 2] *= -1
    flipped[:3, 3] = affine[:3, 3] + 3 * affine[:3, 2]
    np.testing.assert_allclose(back.affine, flipped, atol=1e-3)


def test_a_cancel_writes_nothing(db, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()

    report = write_volume_series(Volume(np.zeros((4, 3, 3), np.int16), np.eye(4)), SeriesOptions(), db=db,
                                 folder=tmp_path / "o", progress=progress, cancel=cancel)
    assert report.cancelled and seen == [1]
    assert list((tmp_path / "o").iterdir()) == [] and db.series() == []


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nii", "v.nrrd"])
def test_nifti_and_nrrd_read_back_as_the_volume_written(tmp_path, name):
    volume = Volume((np.arange(4 * 5 * 6) - 60).astype(np.int16).reshape(4, 5, 6), oblique_affine())
    (path,) = write_volume(volume, tmp_path / name)
    back = read_image(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)
    assert back.name == "v"


def test_one_volume_of_a_4d_image(tmp_path):
    import nibabel

    data = np.arange(2 * 3 * 4 * 2, dtype=np.int16).reshape(2, 3, 4, 2)  # [i, j, k, t]
    nibabel.save(nibabel.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), tmp_path / "t.nii")
    back = read_image(tmp_path / "t.nii", 1)
    np.testing.assert_array_equal(back.array, data[..., 1].transpose(2, 1, 0))
    np.testing.assert_allclose(back.affine, np.diag([-2.0, -2.0, 3.0, 1.0]))  # RAS → LPS


def test_a_4d_image_is_refused_in_a_sentence(tmp_path):
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3, 2), np.int16), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(VolumeWriteError, match=r"4-D image .* \(choose one of its volumes, or write them all as one "
                                               r"series: volume-to-dicom --volume N or --all-volumes\)"):
        read_image(tmp_path / "t.nii")
    with pytest.raises(VolumeWriteError, match="holds 2 volumes: choose one from 0 to 1"):
        read_image(tmp_path / "t.nii", 2)
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(VolumeWriteError, match="neither NIfTI"):
        read_image(tmp_path / "x.txt")


def test_cli_volume_to_dicom_like_a_series(db, tmp_path, capsys):
    from dicomtui.cli import main

    like = reference(db, tmp_path, "CT")
    volume = load_series(db, like)
    (nifti,) = write_volume(volume, tmp_path / "mask.nii.gz")
    db.close()
    code = main(["--db", str(tmp_path / "db"), "volume-to-dicom", str(nifti), "--like", like[:30],
                 "--description", "From NIfTI", "--series-number", "7", "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CT Image Storage, 6 images: 6 stored in the database, 6 written to" in out
    reopened = DicomDatabase.open(tmp_path / "db")
    try:
        row = next(r for r in reopened.series() if r["SeriesNumber"] == 7)
        assert row["SeriesDescription"] == "From NIfTI"
        back = load_series(reopened, row["SeriesInstanceUID"])
        np.testing.assert_array_equal(back.array, volume.array)
        np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
    finally:
        reopened.close()


def test_a_latin1_reference_name_is_kept_in_utf8(db, tmp_path):
    """Text copied from the reference is decoded in its Specific Character Set and written again as ISO_IR 192."""
    from dicomtui.core.synth import series_datasets

    folder = tmp_path / "latin1"
    folder.mkdir()
    for n, ds in enumerate(series_datasets(SeriesSpec(slices=2, rows=8, cols=8))):
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jürgen"
        ds.StudyDescription = "Schädel"
        ds.save_as(folder / f"{n}.dcm", enforce_file_format=True)
    assert "Müller".encode("latin-1") in (folder / "0.dcm").read_bytes()
    import_paths(db, [folder], mode="copy")
    like = db.series()[0]["SeriesInstanceUID"]
    out = tmp_path / "out"
    write_volume_series(Volume(np.zeros((2, 8, 8), np.int16), np.eye(4)), SeriesOptions(description="Größe"),
                        db=db, like=like, folder=out)
    raw = (out / "IM0001.dcm").read_bytes()
    assert "Müller^Jürgen".encode() in raw and "Schädel".encode() in raw and "Größe".encode() in raw
    ds = pydicom.dcmread(out / "IM0001.dcm")
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.PatientName == "Müller^Jürgen"
    assert {r["PatientName"] for r in db.patients()} == {"Müller^Jürgen"}  # one patient, not two spellings


def test_cli_json_folder_only_and_its_refusals(tmp_path, capsys):
    import json

    from dicomtui.cli import main

    (nrrd_path,) = write_volume(Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 4, oblique_affine()),
                                tmp_path / "v.nrrd")
    db_path = tmp_path / "db"
    assert main(["--db", str(db_path), "volume-to-dicom", str(nrrd_path), "--no-database"]) == 2
    assert "--no-database writes nowhere without -o DIR" in capsys.readouterr().err
    code = main(["--db", str(db_path), "volume-to-dicom", str(nrrd_path), "--no-database", "-o",
                 str(tmp_path / "o"), "--modality", "mr", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["stored"] == 0 and len(report["files"]) == 2
    assert (report["rescale_slope"], report["exact"]) == ("0.25", True)
    assert report["sop_class"] == MR_IMAGE and not db_path.exists()
    assert main(["--db", str(db_path), "volume-to-dicom", str(nrrd_path), "--uid-root", "1.2.x"]) == 2
    assert "is not a UID root" in capsys.readouterr().err
    assert main(["--db", str(db_path), "volume-to-dicom", str(nrrd_path), "--like", "9.9.9"]) == 2
    assert "9.9.9" in capsys.readouterr().err
