"""Slices + geometry → Volume: the affine, the rescaled values and types, regularization, value by value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dicomtui.core.errors import LoadError
from dicomtui.core.examine.geometry import check_stack
from dicomtui.core.examine.stack import build_volume, read_volume, rescale, stack_affine


def rows(positions: list[tuple[float, float, float]], orientation: str = "1.0\\0.0\\0.0\\0.0\\1.0\\0.0",
         **over) -> list[dict]:
    out = []
    for k, pos in enumerate(positions):
        row = {"SOPInstanceUID": f"1.2.3.{k}", "InstanceNumber": k + 1,
               "ImagePositionPatient": "\\".join(str(v) for v in pos), "ImageOrientationPatient": orientation,
               "PixelSpacing": "0.8\\0.6", "Rows": 3, "Columns": 4, "Modality": "CT", "RescaleSlope": 1,
               "RescaleIntercept": -1024, "WindowCenter": "40", "WindowWidth": "400"}
        row.update(over)
        out.append(row)
    return out


def test_affine_of_an_oblique_stack() -> None:
    """Sagittal: i runs along +y by the column spacing, j along -z by the row spacing, k along the normal."""
    check = check_stack(rows([(12.0 + 3.0 * k, -40.0, 25.0) for k in range(4)],
                             orientation="0.0\\1.0\\0.0\\0.0\\0.0\\-1.0"))
    affine = stack_affine(check.geometry)
    np.testing.assert_allclose(affine[:3, 0], [0.0, 0.6, 0.0])
    np.testing.assert_allclose(affine[:3, 1], [0.0, 0.0, -0.8])
    np.testing.assert_allclose(affine[:3, 2], [-3.0, 0.0, 0.0])  # normal = (0,1,0) × (0,0,-1) = (-1,0,0)
    np.testing.assert_allclose(affine[:3, 3], [21.0, -40.0, 25.0])  # the first slice along the normal
    assert affine[3].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_affine_keeps_the_tilt_as_shear() -> None:
    tilt = math.radians(10)
    check = check_stack(rows([(0.0, 2.0 * k * math.tan(tilt), 2.0 * k) for k in range(5)]))
    affine = stack_affine(check.geometry)
    np.testing.assert_allclose(affine[:3, 2], [0.0, 2.0 * math.tan(tilt), 2.0], atol=1e-9)


def test_affine_without_geometry_is_the_identity() -> None:
    assert stack_affine(None).tolist() == np.eye(4).tolist()


def test_build_volume_rescales_and_places() -> None:
    data = rows([(0.0, 0.0, 2.0 * k) for k in range(3)])
    check = check_stack(list(reversed(data)))
    raw = np.stack([np.full((3, 4), 1000 + 100 * k, dtype=np.int16) for k in range(3)])
    volume = build_volume(raw, check.instances, check.geometry, name="v", warnings=["w"])
    assert volume.array.dtype == np.int16 and volume.array[:, 0, 0].tolist() == [-24, 76, 176]  # smallest exact type
    assert volume.instance_uids == ["1.2.3.0", "1.2.3.1", "1.2.3.2"]
    assert (volume.name, volume.modality, volume.warnings, volume.resampled) == ("v", "CT", ["w"], False)
    assert (volume.windows[0].name, volume.windows[0].center, volume.windows[0].width) == ("DICOM 1", 40.0, 400.0)
    np.testing.assert_allclose(volume.spacing, (0.6, 0.8, 2.0))


def test_build_volume_regularizes_a_gap() -> None:
    data = rows([(0.0, 0.0, z) for z in (0.0, 2.0, 6.0, 8.0)], RescaleIntercept=0)
    check = check_stack(data)
    raw = np.stack([np.full((3, 4), v, dtype=np.int16) for v in (10, 20, 40, 50)])
    volume = build_volume(raw, check.instances, check.geometry, name="v", warnings=[], regularize=True)
    assert volume.resampled and volume.instance_uids == []
    assert volume.array[:, 1, 1].tolist() == [10, 20, 30, 40, 50]  # the missing slice at z = 4 interpolated
    # says how much: the steps and how far the acquired slices were from the grid (the brief of issue 11, item 2)
    assert volume.warnings == ["resampled onto a regular grid of 5 slices 2 mm apart along the slice normal (from 4 "
                               "acquired slices: steps 2 to 4 mm, up to 0 mm off the grid)"]
    regular = build_volume(raw.copy(), check.instances, check.geometry, name="v", warnings=[])
    assert not regular.resampled and regular.array.shape[0] == 4


def test_rescale_works_in_place_when_the_type_allows() -> None:
    raw = np.array([[[1024, 2000]], [[0, 1]]], dtype=np.int16)
    out = rescale(raw, [1, None], [-1024, -1024])
    assert out is raw and out.tolist() == [[[0, 976]], [[-1024, -1023]]]


def test_rescale_with_a_slope_is_float32() -> None:
    out = rescale(np.array([[[2, 4]]], dtype=np.uint16), ["0.5"], ["-1.5"])
    assert out.dtype == np.float32 and out.tolist() == [[[-0.5, 0.5]]]


def test_read_volume_refuses_mixed_sizes() -> None:
    data = rows([(0.0, 0.0, 0.0), (0.0, 0.0, 2.0)])
    data[1]["Rows"] = 5
    with pytest.raises(LoadError, match="^x: images of different sizes cannot be stacked into one volume$"):
        read_volume(None, data, None, name="x", warnings=[])
