"""Siemens mosaics (issue 11, item 1) against dcm2niix: nibabel's real DWI mosaics (b = 0 and b = 1000, 48 tiles of
128² in a 896² picture) and a generated double-oblique series of non-square tiles. Voxels equal, affines within
1e-3 mm, compared in patient space as tests/interop/test_dcm2niix.py does."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread

from dicomtui.core import volume_io
from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_mosaic
from tests.interop.test_dcm2niix import _assert_same, _dcm2niix

pytestmark = pytest.mark.interop

NIBABEL_DATA = Path(nib.__file__).parent / "nicom" / "tests" / "data"


def _ours(tmp_path: Path, folder: Path) -> tuple[nib.Nifti1Image, list]:
    with DicomDatabase.open(tmp_path / "db") as db:
        assert not import_paths(db, [folder]).rejected
        loadables = examine_series(db, [s["id"] for s in db.series()])
        (chosen,) = [item for item in loadables if item.selected]
        assert chosen.plugin == "mosaic" and not chosen.warnings, chosen.to_dict()
        volumes = load(db, chosen)
    written = volume_io.write_volume(volumes, tmp_path / "ours.nii")
    return nib.load(written[0]), volumes


def test_nibabel_siemens_dwi_mosaics_match_dcm2niix(tmp_path: Path) -> None:
    names = ["siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"]
    if not all((NIBABEL_DATA / name).exists() for name in names):
        pytest.skip("nibabel's Siemens DWI test files are not installed")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress((NIBABEL_DATA / name).read_bytes()))
    ref = _dcm2niix(tmp_path, folder)["ref.nii"]
    ours, volumes = _ours(tmp_path, folder)
    assert ours.shape == ref.shape == (128, 128, 48, 2)  # not 896 × 896 × 1
    _assert_same(ours, ref)
    assert [v.extra["bvalue"] for v in volumes] == [0.0, 1000.0]  # CSA B_value
    np.testing.assert_allclose(volumes[1].extra["gradient"], [0.99997449, 0.00505012, -0.00505012])


@pytest.mark.parametrize("descending", [False, True])
def test_generated_oblique_mosaics_match_dcm2niix(tmp_path: Path, descending: bool) -> None:
    row = np.array([math.cos(0.4), math.sin(0.4), 0.0])
    col = np.array([-math.sin(0.4) * math.cos(0.5), math.cos(0.4) * math.cos(0.5), math.sin(0.5)])
    spec = SeriesSpec(slices=10, rows=20, cols=24, slice_spacing=3.0, pixel_spacing=(1.5, 2.0), modality="MR",
                      orientation=tuple(float(v) for v in np.round(np.r_[row, col], 6)), origin=(10, -20, 30))
    folder = tmp_path / "in"
    for path in write_mosaic(folder, spec, volumes=2, descending=descending):
        ds = dcmread(path)
        ds.Manufacturer = "SIEMENS"  # dcm2niix reads the CSA header of Siemens files only
        ds.save_as(path)
    (ref,) = _dcm2niix(tmp_path, folder).values()
    ours, _ = _ours(tmp_path, folder)
    assert ours.shape == ref.shape == (24, 20, 10, 2)
    _assert_same(ours, ref)
