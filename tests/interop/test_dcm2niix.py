"""Our NIfTI against dcm2niix's NIfTI of the same files: equal voxel values, affines within 1e-3 mm.

Compared in patient space: both images are brought to the closest canonical (RAS) orientation first, since
dcm2niix may store rows flipped. dcm2niix resamples a gantry-tilted series ("_Tilt_") and equalises uneven
spacing ("_Eq_"); dicomtui does neither without --regularize: it keeps the acquired grid and says so (tested here
against the DICOM positions themselves).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from dicomtui.core import volume_io
from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program

pytestmark = pytest.mark.interop


def _double_oblique() -> tuple[float, ...]:
    row = np.array([math.cos(0.3), math.sin(0.3), 0.0])
    col = np.array([-math.sin(0.3) * 0.8, math.cos(0.3) * 0.8, 0.6])
    col -= row * np.dot(row, col)
    col /= np.linalg.norm(col)
    return tuple(np.round(np.r_[row, col], 8))


CASES = {
    "axial": SeriesSpec(slices=8, rows=30, cols=40, pixel_spacing=(0.7, 0.9), slice_spacing=2.5),
    "sagittal": SeriesSpec(slices=8, rows=30, cols=40, orientation=(0, 1, 0, 0, 0, -1), origin=(20, -30, 40)),
    "coronal": SeriesSpec(slices=8, rows=30, cols=40, orientation=(1, 0, 0, 0, 0, -1), origin=(-30, 15, 40)),
    "double-oblique": SeriesSpec(slices=8, rows=30, cols=40, orientation=_double_oblique(), origin=(10, -20, 30)),
    "reversed": SeriesSpec(slices=8, rows=30, cols=40, slice_spacing=-3.0, origin=(0, 0, 50)),
}


def _ours(tmp_path: Path, folder: Path) -> nib.Nifti1Image:
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [folder])
        assert not report.rejected
        loadables = examine_series(db, [s["id"] for s in db.series()])
        chosen = [item for item in loadables if item.selected]
        assert len(chosen) == 1, [i.to_dict() for i in loadables]
        volume = load(db, chosen[0])
    (path,) = volume_io.write_volume(volume, tmp_path / "ours.nii.gz")
    return nib.load(path)


def _dcm2niix(tmp_path: Path, folder: Path) -> dict[str, nib.Nifti1Image]:
    """dcm2niix's outputs by file name (one, unless it also wrote a corrected version)."""
    require_program("dcm2niix", "dcm2niix")
    out = tmp_path / "ref"
    out.mkdir()
    subprocess.run(["dcm2niix", "-o", str(out), "-f", "ref", "-z", "n", str(folder)], check=True, capture_output=True)
    return {path.name: nib.load(path) for path in sorted(out.glob("*.nii"))}


def _assert_same(ours: nib.Nifti1Image, ref: nib.Nifti1Image) -> None:
    a, b = nib.as_closest_canonical(ours), nib.as_closest_canonical(ref)
    assert a.shape == b.shape
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)
    assert np.array_equal(a.get_fdata(), b.get_fdata())


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_series_match_dcm2niix(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "in"
    files = write_series(folder, CASES[case])
    if case == "reversed":  # instance numbers run against the positions: order must come from geometry
        for path in files:
            path.rename(path.with_name("r" + path.name))
    (ref,) = _dcm2niix(tmp_path, folder).values()
    _assert_same(_ours(tmp_path, folder), ref)


def test_pydicom_ct5n_matches_dcm2niix(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm", download=False)).parent / "dicomdirtests" / "98892001" / "CT5N"
    folder = tmp_path / "CT5N"
    shutil.copytree(source, folder)
    (ref,) = _dcm2niix(tmp_path, folder).values()
    _assert_same(_ours(tmp_path, folder), ref)


def test_gantry_tilt_kept_as_acquired(tmp_path: Path) -> None:
    """dcm2niix resamples a tilted series; we keep the sheared grid: every slice lands on its own position."""
    tilt = math.radians(12)
    positions = [(0.0, k * 2.0 * math.tan(tilt), k * 2.0) for k in range(10)]
    folder = tmp_path / "in"
    write_series(folder, SeriesSpec(slices=10, rows=30, cols=40, positions=positions))
    refs = _dcm2niix(tmp_path, folder)
    assert sorted(refs) == ["ref.nii", "ref_Tilt_1.nii"]  # dcm2niix writes the acquired and a resampled grid
    ours = _ours(tmp_path, folder)
    assert np.array_equal(nib.as_closest_canonical(ours).get_fdata(),
                          nib.as_closest_canonical(refs["ref.nii"]).get_fdata())
    for k, (x, y, z) in enumerate(positions):  # slice k's first voxel is exactly at its ImagePositionPatient
        np.testing.assert_allclose(ours.affine @ np.array([0, 0, k, 1.0]), [-x, -y, z, 1.0], atol=1e-3)


def _world_bvecs(image: nib.Nifti1Image, bvec_file: Path) -> np.ndarray:
    """FSL bvecs back to RAS world directions (undoing the x flip of "neurological" images)."""
    vectors = np.loadtxt(bvec_file).reshape(3, -1)
    axes = image.affine[:3, :3] / np.linalg.norm(image.affine[:3, :3], axis=0)
    if np.linalg.det(image.affine[:3, :3]) > 0:
        vectors = vectors * np.array([[-1.0], [1.0], [1.0]])
    return axes @ vectors


def _load_4d(tmp_path: Path, folder: Path) -> tuple[nib.Nifti1Image, list[Path]]:
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [folder])
        loadables = examine_series(db, [s["id"] for s in db.series()])
        (chosen,) = [item for item in loadables if item.selected]
        assert chosen.plugin == "sequence"
        volumes = load(db, chosen)
    written = volume_io.write_volume(volumes, tmp_path / "ours.nii")
    return nib.load(written[0]), written


def test_time_series_matches_dcm2niix(tmp_path: Path) -> None:
    from dicomtui.core.synth import write_4d

    folder = tmp_path / "in"
    write_4d(folder, SeriesSpec(slices=5, rows=20, cols=24, modality="MR"),
             [{"TemporalPositionIdentifier": t, "TriggerTime": 100.0 * t} for t in (1, 2, 3)])
    ours, written = _load_4d(tmp_path, folder)
    (ref,) = _dcm2niix(tmp_path, folder).values()
    assert ours.shape == ref.shape == (24, 20, 5, 3)
    _assert_same(ours, ref)


def test_diffusion_matches_dcm2niix_with_bval_bvec(tmp_path: Path) -> None:
    from dicomtui.core.synth import write_4d

    folder = tmp_path / "in"
    directions = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.577350, 0.577350, 0.577350)]
    write_4d(folder, SeriesSpec(slices=5, rows=20, cols=24, modality="MR", orientation=_double_oblique()),
             [{"DiffusionBValue": 0.0 if not any(g) else 1000.0, "DiffusionGradientOrientation": list(g)}
              for g in directions])
    ours, written = _load_4d(tmp_path, folder)
    assert [p.suffix for p in written] == [".nii", ".bval", ".bvec"]
    refs = _dcm2niix(tmp_path, folder)
    ref = refs["ref.nii"]
    _assert_same(ours, ref)
    ref_dir = tmp_path / "ref"
    assert np.array_equal(np.loadtxt(written[1]), np.loadtxt(ref_dir / "ref.bval"))
    a, b = _world_bvecs(ours, written[2]), _world_bvecs(ref, ref_dir / "ref.bvec")
    for n in range(a.shape[1]):  # a direction and its opposite are the same diffusion direction
        assert np.allclose(a[:, n], b[:, n], atol=1e-4) or np.allclose(a[:, n], -b[:, n], atol=1e-4), n


def test_enhanced_multiframe_matches_dcm2niix(tmp_path: Path) -> None:
    from dicomtui.core.synth import write_enhanced

    folder = tmp_path / "in"
    write_enhanced(folder / "enhanced.dcm", SeriesSpec(slices=7, rows=20, cols=24, modality="MR",
                                                       orientation=_double_oblique(), origin=(5, -10, 20)))
    (ref,) = _dcm2niix(tmp_path, folder).values()
    _assert_same(_ours(tmp_path, folder), ref)


def test_missing_slices_same_voxels_and_a_regular_grid_on_request(tmp_path: Path) -> None:
    """dcm2niix warns, writes the acquired stack and an "_Eq_" resampled copy on its own grid (11 slices here);
    we write the acquired stack (same voxels) with the usual 2 mm spacing, and on --regularize a 12-slice grid
    that puts every acquired slice back at its own position."""
    folder = tmp_path / "in"
    files = write_series(folder, SeriesSpec(slices=12, rows=16, cols=16))
    for path in files[5:7]:
        path.unlink()
    refs = _dcm2niix(tmp_path, folder)
    assert sorted(refs) == ["ref.nii", "ref_Eq_1.nii"]
    ours = _ours(tmp_path, folder)
    a, b = nib.as_closest_canonical(ours), nib.as_closest_canonical(refs["ref.nii"])
    assert np.array_equal(a.get_fdata(), b.get_fdata())
    with DicomDatabase.open(tmp_path / "db") as db:
        (item,) = examine_series(db, [db.series()[0]["id"]])
        assert item.warnings == ["2 missing slices between slice 5 and 6 (positions 8.00 and 14.00 mm along the "
                                 "normal; usual spacing 2 mm)"]
        (regular,) = load(db, item, regularize=True)
        (acquired,) = load(db, item)
    assert regular.array.shape[0] == 12 and regular.spacing[2] == pytest.approx(2.0)
    kept = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]  # acquired slices land on grid points: unchanged
    assert np.array_equal(regular.array[kept], acquired.array)
    low, high = int(acquired.array[4, 8, 8]), int(acquired.array[5, 8, 8])
    assert low < int(regular.array[5, 8, 8]) < int(regular.array[6, 8, 8]) < high  # filled by interpolation
