"""A colour volume and a 4D sequence written as one new series each (issue 16): colour as Secondary Capture with
PhotometricInterpretation RGB, a sequence as one series of classic images (every slice position once per volume,
the volume's key on its images). Our own load of the result equals what was written; dciodvfy finds nothing the
reference did not have; dcm2niix reads the same grid, values and 4D shape."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import VolumeWriteError
from dicomtui.core.examine import examine_series, load
from dicomtui.core.export.volume_series import SECONDARY_CAPTURE, SeriesOptions, write_volume_series
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.core.volume import Volume
from dicomtui.core.volume_io import write_volume
from tests.interop.test_volume_series_peers import _errors as dciodvfy_errors
from tests.interop.test_volume_series_peers import dcm2niix_image
from tests.test_volume_series import oblique_affine


def _colour() -> Volume:
    rgb = np.random.default_rng(3).integers(0, 256, size=(4, 10, 12, 3), dtype=np.uint8)
    return Volume(rgb, oblique_affine((0.9, 0.8, 2.0)), name="colour")


def _sequence(extra: bool = False) -> list[Volume]:
    base = (np.arange(5 * 9 * 7) % 400 - 100).astype(np.int16).reshape(5, 9, 7)
    out = [Volume((base + 50 * t).astype(np.int16), oblique_affine(), name="dyn") for t in range(3)]
    if extra:  # as examine/sequence.py labels a loaded multi-echo series
        for t, volume in enumerate(out):
            volume.extra = {"key": "EchoTime", "value": 10.0 + 5 * t, "unit": "ms"}
    return out


def _write(tmp_path: Path, volume, modality: str | None = "MR"):
    """The new series written into a database (and tmp_path/out), beside a reference of ``modality``."""
    db = DicomDatabase.open(tmp_path / "db")
    like = ref_file = None
    if modality is not None:
        files = write_series(tmp_path / "ref", SeriesSpec(modality=modality, slices=4, rows=16, cols=16))
        import_paths(db, [tmp_path / "ref"], mode="copy")
        like, ref_file = db.series()[0]["SeriesInstanceUID"], files[0]
    report = write_volume_series(volume, SeriesOptions(description="peer check"), db=db, like=like,
                                 folder=tmp_path / "out")
    return db, report, ref_file


def _loaded(db: DicomDatabase, series_uid: str, plugin: str) -> list[Volume]:
    row = db.find("series", series_uid)
    (loadable,) = [item for item in examine_series(db, [row["id"]]) if item.plugin == plugin]
    return load(db, loadable)


def test_a_colour_volume_is_an_rgb_secondary_capture_that_reloads_equal(tmp_path: Path) -> None:
    volume = _colour()
    db, report, _ref = _write(tmp_path, volume, "CT")  # CT Image allows no colour: Secondary Capture
    with db:
        assert report.sop_class == SECONDARY_CAPTURE and report.stored == 4
        assert "colours kept exactly" in report.summary()
        ds = pydicom.dcmread(report.files[0])
        assert (ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration, ds.BitsAllocated) == (
            3, "RGB", 0, 8)
        assert "RescaleSlope" not in ds and ds.Modality == "CT"
        (back,) = _loaded(db, report.series_uid, "scalar")
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)


@pytest.mark.parametrize("extra", [False, True], ids=["time points", "echo times"])
def test_a_sequence_is_one_series_that_reloads_as_the_same_volumes(tmp_path: Path, extra: bool) -> None:
    volumes = _sequence(extra)
    db, report, _ref = _write(tmp_path, volumes)
    with db:
        assert report.slices == 15 and report.volumes == 3 and report.stored == 15
        assert "15 images (3 volumes of 5 slices)" in report.summary()
        last = pydicom.dcmread(report.files[-1])
        assert last.InstanceNumber == 15
        if extra:
            assert float(last.EchoTime) == 20.0 and "TemporalPositionIdentifier" not in last
        else:
            assert (last.TemporalPositionIdentifier, last.NumberOfTemporalPositions) == (3, 3)
        back = _loaded(db, report.series_uid, "sequence")
    assert len(back) == 3
    for ours, theirs in zip(volumes, back, strict=True):
        np.testing.assert_array_equal(theirs.array, ours.array)
        np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)


def test_what_one_series_cannot_hold_is_refused_in_a_sentence(tmp_path: Path) -> None:
    volumes = _sequence()
    volumes[1] = Volume(volumes[1].array[:4], volumes[1].affine)
    with pytest.raises(VolumeWriteError, match="volume 2 of the sequence does not share the first one's grid"):
        write_volume_series(volumes, SeriesOptions(), folder=tmp_path / "a")
    with pytest.raises(VolumeWriteError, match="--enhanced writes one grey volume"):
        write_volume_series(_colour(), SeriesOptions(enhanced=True), folder=tmp_path / "b")
    grey16 = Volume(np.zeros((2, 3, 4, 3), np.uint16), np.eye(4))
    with pytest.raises(VolumeWriteError, match="a colour volume must be"):
        write_volume_series(grey16, SeriesOptions(), folder=tmp_path / "c")


@pytest.mark.interop
@pytest.mark.parametrize("case", ["colour", "sequence"])
def test_dciodvfy_finds_no_new_error(tmp_path: Path, case: str) -> None:
    db, report, ref_file = _write(tmp_path, _colour() if case == "colour" else _sequence())
    db.close()
    before = dciodvfy_errors(ref_file)
    for path in (report.files[0], report.files[-1]):
        assert dciodvfy_errors(path) - before == set(), path


@pytest.mark.interop
@pytest.mark.parametrize("case", ["colour", "sequence"])
def test_dcm2niix_reads_the_grid_and_the_values(tmp_path: Path, case: str) -> None:
    volume = _colour() if case == "colour" else _sequence()
    db, _report, _ref = _write(tmp_path, volume)
    db.close()
    theirs = dcm2niix_image(tmp_path / "out", tmp_path / "dcm2niix")
    (ours_path,) = write_volume(volume, tmp_path / "volume.nii")
    a, b = nib.as_closest_canonical(nib.load(ours_path)), nib.as_closest_canonical(theirs)
    assert a.shape == b.shape
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asanyarray(b.dataobj), np.asanyarray(a.dataobj))


def test_cli_writes_every_volume_of_a_4d_nifti_as_one_series(tmp_path: Path, capsys) -> None:
    from dicomtui.cli import main

    volumes = _sequence()
    (nifti,) = write_volume(volumes, tmp_path / "dyn.nii.gz")
    db_path = tmp_path / "db"
    code = main(["--db", str(db_path), "volume-to-dicom", str(nifti), "--all-volumes", "--modality", "MR"])
    out = capsys.readouterr().out
    assert code == 0 and "15 images (3 volumes of 5 slices)" in out, out
    with DicomDatabase.open(db_path) as db:
        back = _loaded(db, db.series()[0]["SeriesInstanceUID"], "sequence")
    for ours, theirs in zip(volumes, back, strict=True):
        np.testing.assert_array_equal(theirs.array, ours.array)
        np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)
    assert main(["--db", str(db_path), "volume-to-dicom", str(nifti), "--all-volumes", "--volume", "1"]) == 2


def test_a_loaded_colour_series_saved_again_as_a_series_of_its_study(tmp_path: Path) -> None:
    """What the viewer's W does with a colour series: the loaded volume written beside its source, reloaded equal."""
    from dicomtui.core.synth_pixels import colour_series

    (tmp_path / "in").mkdir()
    for n, ds in enumerate(colour_series(SeriesSpec(slices=3, rows=8, cols=6))):
        ds.save_as(tmp_path / "in" / f"{n}.dcm", enforce_file_format=True)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"], mode="copy")
        source = db.series()[0]["SeriesInstanceUID"]
        (volume,) = _loaded(db, source, "scalar")
        assert volume.is_rgb
        report = write_volume_series(volume, SeriesOptions(), db=db, like=source)
        assert report.sop_class == SECONDARY_CAPTURE and report.stored == 3
        (back,) = _loaded(db, report.series_uid, "scalar")
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
