"""RT Dose: the dose grid in Gy (stored × DoseGridScaling) with its own geometry (GridFrameOffsetVector relative or
absolute), DoseUnits RELATIVE said, and the image series of its frame of reference named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.errors import LoadError
from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_rt import rtdose_dataset, write_datasets

CT = SeriesSpec(slices=10, rows=32, cols=32, pixel_spacing=(1.0, 1.0), slice_spacing=2.5, origin=(-16.0, -16.0, 0.0))


def dose_values(frames: int = 5, rows: int = 6, cols: int = 8) -> np.ndarray:
    k, j, i = np.mgrid[0:frames, 0:rows, 0:cols]
    return (0.5 * k + 0.25 * j + 0.125 * i + 0.0371).astype(np.float64)  # Gy, distinct per voxel


def _dose_volumes(db, tmp_path: Path, *, with_ct: bool = True, **kwargs) -> list:
    ct = series_datasets(CT)
    values = kwargs.pop("values", dose_values())
    dose = rtdose_dataset(ct, values, kwargs.pop("origin", (-10.0, -12.0, 2.5)), kwargs.pop("spacing", (3.0, 2.0)),
                          kwargs.pop("offsets", [0.0, 4.0, 8.0, 12.0, 16.0]), **kwargs)
    folders = [tmp_path / "dose"]
    write_datasets(folders[0], [dose])
    if with_ct:
        folders.append(tmp_path / "ct")
        write_datasets(folders[1], ct)
    import_paths(db, folders)
    loadables = examine_series(db, [db.find("series", dose.SeriesInstanceUID)["id"]])
    chosen = [item for item in loadables if item.selected]
    # the only reading: as plain images (scalar, multiframe) its frames would lie at one position, unscaled
    assert [(item.plugin, item.selected) for item in loadables] == [("rtdose", True)]
    volumes = load(db, chosen[0])
    assert all(v.series_uid == dose.SeriesInstanceUID for v in volumes)
    return volumes


def test_the_dose_is_float_gray_on_its_own_grid(db, tmp_path: Path) -> None:
    values = dose_values()
    (volume,) = _dose_volumes(db, tmp_path, values=values, scaling=2.5e-5)
    assert volume.array.dtype == np.float32 and volume.array.shape == (5, 6, 8)
    expected = np.round(values / 2.5e-5) * 2.5e-5  # what the stored integers hold
    assert np.allclose(volume.array, expected, rtol=1e-6, atol=1e-7)
    # column i along x by the column spacing (PixelSpacing[1] = 2), row j along y by 3, frame k along z by 4
    assert np.allclose(volume.affine, [[2, 0, 0, -10], [0, 3, 0, -12], [0, 0, 4, 2.5], [0, 0, 0, 1]])
    assert volume.units == "GY" and volume.modality == "RTDOSE" and volume.warnings == []
    assert volume.referenced_series_uid == series_datasets(CT)[0].SeriesInstanceUID
    assert volume.extra == {"DoseType": "PHYSICAL", "DoseSummationType": "PLAN"}


def test_absolute_frame_offsets_are_z_positions(db, tmp_path: Path) -> None:
    (volume,) = _dose_volumes(db, tmp_path, absolute=True, origin=(-10.0, -12.0, 7.5))
    assert np.allclose(volume.affine[:3, 2], [0, 0, 4]) and np.allclose(volume.affine[:3, 3], [-10, -12, 7.5])
    assert volume.warnings == []


def test_relative_dose_units_are_said(db, tmp_path: Path) -> None:
    (volume,) = _dose_volumes(db, tmp_path, units="RELATIVE", with_ct=False)
    assert volume.units == "RELATIVE" and volume.referenced_series_uid == ""
    assert volume.warnings == ["DoseUnits RELATIVE: the values are relative to a reference dose the file does not "
                               "give, not Gy"]


def test_uneven_frame_offsets_are_said(db, tmp_path: Path) -> None:
    (volume,) = _dose_volumes(db, tmp_path, offsets=[0.0, 4.0, 8.0, 14.0, 16.0])
    assert volume.warnings == ["the dose frames are unevenly spaced (steps 2 to 6 mm): the grid takes their mean "
                               "step, 4 mm"]


def test_a_single_frame_dose_is_read_by_the_dose_plugin_only(db, tmp_path: Path) -> None:
    (volume,) = _dose_volumes(db, tmp_path, values=dose_values(frames=1), offsets=[0.0])
    assert volume.array.shape == (1, 6, 8) and volume.units == "GY"


def test_an_offset_vector_of_the_wrong_length_is_refused(db, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"GridFrameOffsetVector has 4 values for 5 frames$"):
        _dose_volumes(db, tmp_path, offsets=[0.0, 4.0, 8.0, 12.0])


def test_a_dose_without_a_grid_is_listed_as_such(db, tmp_path: Path) -> None:
    """An RT Dose holding only DVHs (no Pixel Data): no volume, and examine says what it is."""
    ds = rtdose_dataset(series_datasets(CT), dose_values(), (-10.0, -12.0, 2.5), (3.0, 2.0), [0.0, 4, 8, 12, 16])
    for keyword in ("PixelData", "Rows", "Columns", "NumberOfFrames", "GridFrameOffsetVector", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, keyword)
    write_datasets(tmp_path / "dvh", [ds])
    import_paths(db, [tmp_path / "dvh"])
    loadables = examine_series(db, [db.find("series", ds.SeriesInstanceUID)["id"]])
    assert [(item.plugin, item.warnings, item.selected) for item in loadables] == [
        ("nonimage", ["an RT dose without a dose grid: no image to load"], False)]


def test_an_unreadable_dose_grid_names_the_file(db, tmp_path: Path) -> None:
    from dicomtui.core.errors import PixelError

    ct = series_datasets(CT)
    dose = rtdose_dataset(ct, dose_values(), (-10.0, -12.0, 2.5), (3.0, 2.0), [0.0, 4, 8, 12, 16])
    (path,) = write_datasets(tmp_path / "dose", [dose])
    import_paths(db, [tmp_path / "dose"])
    path.write_bytes(path.read_bytes()[:-200])  # Pixel Data cut short after import
    (loadable,) = examine_series(db, [db.find("series", dose.SeriesInstanceUID)["id"]])
    with pytest.raises(PixelError, match=rf"the dose grid of {path} could not be read"):
        load(db, loadable)
