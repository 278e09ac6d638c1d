"""A volume written as a new series, checked by the peers: ``dciodvfy`` (dicom3tools) finds no error the reference
series did not already have, and ``dcm2niix`` reads the series with the volume's geometry and values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.volume_series import SeriesOptions, VolumeSeriesReport, write_volume_series
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.core.volume import Volume
from dicomtui.core.volume_io import write_volume
from tests.conftest import require_program
from tests.test_volume_series import oblique_affine

pytestmark = pytest.mark.interop


def _errors(path: Path) -> set[str]:
    """dciodvfy's "Error - …" lines for one file (it prints its findings on stderr)."""
    run = subprocess.run([require_program("dciodvfy", "dicom3tools"), str(path)], capture_output=True, text=True)
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}


def dcm2niix_image(folder: Path, out: Path) -> nib.Nifti1Image:
    """The one NIfTI image dcm2niix makes of the DICOM files in ``folder`` (written into ``out``)."""
    out.mkdir()
    subprocess.run([require_program("dcm2niix", "dcm2niix"), "-o", str(out), "-f", "ref", "-z", "n", str(folder)],
                   check=True, capture_output=True)
    (image,) = [nib.load(p) for p in sorted(out.glob("*.nii"))]
    return image


def _written(tmp_path: Path, modality: str | None, volume: Volume, enhanced: bool = False,
             ) -> tuple[VolumeSeriesReport, Path | None]:
    """The new series (in the database and ``tmp_path/out``) and a file of its reference (None without one)."""
    with DicomDatabase.open(tmp_path / "db") as db:
        like, ref_file = None, None
        if modality is not None:
            files = write_series(tmp_path / "ref", SeriesSpec(modality=modality, slices=4, rows=16, cols=16))
            import_paths(db, [tmp_path / "ref"], mode="copy")
            like, ref_file = db.series()[0]["SeriesInstanceUID"], files[0]
        options = SeriesOptions(description="peer check", enhanced=enhanced)
        report = write_volume_series(volume, options, db=db, like=like, folder=tmp_path / "out")
    return report, ref_file


CASES = {
    "CT int16": ("CT", lambda: Volume((np.arange(5 * 12 * 10) % 700 - 200).astype(np.int16).reshape(5, 12, 10),
                                      np.diag([0.8, 0.6, 2.0, 1.0]))),
    "MR oblique float": ("MR", lambda: Volume((np.random.default_rng(1).random((6, 11, 9)) * 40).astype(np.float32),
                                              oblique_affine())),
    "CT enhanced": ("CT", lambda: Volume((np.arange(5 * 12 * 10) % 700 - 200).astype(np.int16).reshape(5, 12, 10),
                                         oblique_affine())),
    "MR enhanced": ("MR", lambda: Volume((np.random.default_rng(2).random((6, 11, 9)) * 40).astype(np.float32),
                                         oblique_affine())),
    "SC new study": (None, lambda: Volume(np.arange(4 * 8 * 7, dtype=np.uint16).reshape(4, 8, 7) * 200,
                                          oblique_affine((1.0, 1.0, 3.0)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dciodvfy_finds_no_new_error(tmp_path: Path, case: str) -> None:
    modality, make = CASES[case]
    report, ref_file = _written(tmp_path, modality, make(), "enhanced" in case)
    before = _errors(ref_file) if ref_file is not None else set()
    for path in (report.files[0], report.files[-1]):
        assert _errors(path) - before == set(), path


@pytest.mark.parametrize("case", sorted(CASES))
def test_dcm2niix_reads_the_volume_geometry_and_values(tmp_path: Path, case: str) -> None:
    modality, make = CASES[case]
    volume = make()
    report, _ref = _written(tmp_path, modality, volume, "enhanced" in case)
    theirs = dcm2niix_image(tmp_path / "out", tmp_path / "dcm2niix")
    (ours_path,) = write_volume(volume, tmp_path / "volume.nii")
    a, b = nib.as_closest_canonical(nib.load(ours_path)), nib.as_closest_canonical(theirs)
    assert a.shape == b.shape
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-3)
    np.testing.assert_allclose(b.get_fdata(), a.get_fdata(), atol=report.encoding.max_error + 1e-4, rtol=0)
