"""Volume writers: NIfTI-1 read back by nibabel, NRRD by pynrrd, FSL gradients; the formats and their refusals."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomtui.core import volume_io
from dicomtui.core.errors import VolumeWriteError
from dicomtui.core.volume import Volume


def _affine(spacing: tuple[float, float, float] = (0.7, 0.9, 2.5)) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (12.0, -30.0, 45.0)
    return affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1),
                                         (0.8660254, 0.5, 0.0, -0.3535534, 0.6123724, 0.7071068)])
def test_nifti_writer_reads_back_in_nibabel(tmp_path: Path, suffix: str, orientation) -> None:
    """Our NIfTI-1 writer against nibabel: same voxels, sform = qform = the affine, header as expected."""
    row, col = np.array(orientation[:3], dtype=float), np.array(orientation[3:], dtype=float)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row * 0.7, col * 0.9, np.cross(row, col) * 2.5
    affine[:3, 3] = (12.0, -30.0, 45.0)
    array = (np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 50)
    (path,) = volume_io.write_volume(Volume(array=array, affine=affine, name="test"), tmp_path / f"v{suffix}")
    image = nib.load(path)
    ras = volume_io.LPS_TO_RAS @ affine
    np.testing.assert_allclose(image.affine, ras, atol=1e-5)
    np.testing.assert_allclose(image.get_qform(), ras, atol=1e-4)
    assert image.header["sform_code"] == 1 and image.header["qform_code"] == 1
    assert image.get_data_dtype() == np.int16 and image.shape == (6, 5, 4)
    assert np.array_equal(np.asarray(image.dataobj), array.transpose(2, 1, 0))
    four = volume_io.write_volume([Volume(array=array, affine=affine), Volume(array=array + 1, affine=affine)],
                         tmp_path / f"four{suffix}")
    data = np.asarray(nib.load(four[0]).dataobj)
    assert data.shape == (6, 5, 4, 2) and np.array_equal(data[..., 1], array.transpose(2, 1, 0) + 1)


@pytest.mark.parametrize("name, fmt", [("a.nii", ".nii"), ("a.NII.GZ", ".nii.gz"), ("x/a.nrrd", ".nrrd")])
def test_output_format_by_extension(name: str, fmt: str) -> None:
    assert volume_io.output_format(name) == fmt


@pytest.mark.parametrize("name", ["a.png", "a.gz", "a.nii.bz2", "nii"])
def test_other_extensions_are_refused(name: str) -> None:
    with pytest.raises(VolumeWriteError, match=r"the output must end in \.nii, \.nii\.gz or \.nrrd$"):
        volume_io.output_format(name)


def test_a_list_of_one_is_written_as_3d(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    (path,) = volume_io.write_volume([Volume(array=array, affine=_affine())], tmp_path / "one.nii")
    image = nib.load(path)
    assert image.shape == (4, 3, 2) and np.array_equal(np.asarray(image.dataobj), array.T)


def test_volumes_on_different_grids_are_refused(tmp_path: Path) -> None:
    array = np.zeros((2, 3, 4), dtype=np.int16)
    with pytest.raises(VolumeWriteError, match="do not share one grid"):
        volume_io.write_volume([Volume(array=array, affine=_affine()),
                                Volume(array=array, affine=_affine((0.7, 0.9, 3.0)))], tmp_path / "x.nii")
    with pytest.raises(VolumeWriteError, match="NIfTI-1 cannot store complex128"):
        volume_io.write_volume(Volume(array=array.astype(complex), affine=_affine()), tmp_path / "c.nii")


def test_nrrd_keeps_lps_and_the_grid(tmp_path: Path) -> None:
    import nrrd

    array = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    (path,) = volume_io.write_volume(Volume(array=array, affine=_affine()), tmp_path / "v.nrrd")
    data, header = nrrd.read(str(path))
    assert data.shape == (4, 3, 2) and np.array_equal(data, array.T)
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(np.array(header["space directions"], dtype=float), np.diag([0.7, 0.9, 2.5]))
    np.testing.assert_allclose(header["space origin"], [12.0, -30.0, 45.0])


def test_diffusion_volumes_get_fsl_bval_and_bvec(tmp_path: Path) -> None:
    array = np.zeros((2, 3, 4), dtype=np.int16)
    volumes = [Volume(array=array, affine=_affine(), extra={"bvalue": b, "gradient": g})
               for b, g in ((0.0, None), (1000.0, np.array([0.0, 0.0, 2.0])), (1000.0, np.array([1.0, 0.0, 0.0])))]
    written = volume_io.write_volume(volumes, tmp_path / "dwi.nii.gz")
    assert [p.name for p in written] == ["dwi.nii.gz", "dwi.bval", "dwi.bvec"]
    assert (tmp_path / "dwi.bval").read_text() == "0 1000 1000\n"
    # a diagonal LPS grid is RAS with x and y negated: a positive determinant ("neurological"), so FSL's x is
    # negated, as dcm2niix writes it (tests/interop/test_dcm2niix.py compares on real data)
    bvec = np.loadtxt(tmp_path / "dwi.bvec")
    np.testing.assert_array_equal(bvec, [[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
