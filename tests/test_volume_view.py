"""Display planes: a volume seen axially, coronally and sagittally is the right voxels, the right way up, with
the right pixel sizes and slice positions, whatever the acquisition orientation."""

from __future__ import annotations

import numpy as np
import pytest

from dicomtui.core.volume import Volume, patient_axes, view, window


def lps_volume(direction: np.ndarray, spacing=(0.5, 0.7, 2.0), shape=(6, 5, 4), origin=(10.0, 20.0, 30.0)) -> Volume:
    """A volume whose voxel value encodes its LPS position: value = 10000*x + 100*y + z (rounded)."""
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(spacing)
    affine[:3, 3] = origin
    nk, nj, ni = shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    xyz = np.einsum("ab,bkji->akji", affine[:3, :3], np.stack([i, j, k])) + np.array(origin)[:, None, None, None]
    return Volume(array=xyz, affine=affine)  # array[axis, k, j, i]: position per voxel, checked below


@pytest.mark.parametrize("name,direction", [
    ("axial", np.eye(3)),
    ("sagittal", np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)),  # i → P, j → -S, k → L
    ("coronal", np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)),  # i → L, j → -S, k → P
    ("reversed", np.diag([-1.0, -1.0, -1.0])),
])
def test_planes_follow_the_radiological_convention(name: str, direction: np.ndarray) -> None:
    base = lps_volume(direction)
    positions = base.array  # [3, k, j, i] LPS of each voxel
    for plane, (across, down, right, down_sign) in {"axial": (2, 1, 0, 1), "coronal": (1, 2, 0, -1),
                                                     "sagittal": (0, 2, 1, -1)}.items():
        coords = [view(Volume(positions[a], base.affine), plane).data for a in range(3)]
        v = view(Volume(positions[0], base.affine), plane)
        # across slices: the plane's patient axis increases; down the rows: P (axial) or S decreasing; right: L / P
        assert np.all(np.diff(coords[across], axis=0) > 0), (name, plane)
        assert np.all(np.sign(np.diff(coords[down], axis=1)) == down_sign), (name, plane)
        assert np.all(np.diff(coords[right], axis=2) > 0), (name, plane)
        assert np.allclose(v.positions, coords[across][:, 0, 0]), (name, plane)
        assert v.axis_name == "LPS"[across]
        assert not v.oblique


def test_pixel_sizes_come_from_the_spacing() -> None:
    vol = Volume(np.zeros((4, 5, 6)), np.diag([0.5, 0.7, 2.0, 1.0]))
    assert (view(vol, "axial").row_mm, view(vol, "axial").col_mm) == (0.7, 0.5)
    assert (view(vol, "coronal").row_mm, view(vol, "coronal").col_mm) == (2.0, 0.5)
    assert (view(vol, "sagittal").row_mm, view(vol, "sagittal").col_mm) == (2.0, 0.7)
    assert view(vol, "sagittal").data.shape == (6, 4, 5)
    assert np.shares_memory(view(vol, "coronal").data, vol.array)  # a view, not a copy


def test_an_oblique_volume_is_shown_along_the_nearest_axes() -> None:
    t = np.radians(20)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    axes, signs, oblique = patient_axes(np.block([[rot, np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
    assert axes == (0, 1, 2) and signs == (1, 1, 1) and oblique


def test_window_maps_the_window_to_grey_levels() -> None:
    pixels = np.array([-1000, 0, 40, 80, 3000], dtype=np.int16)
    assert window(pixels, 40, 80).tolist() == [0, 0, 127, 255, 255]
    assert window(pixels, 40, 0).dtype == np.uint8  # a zero width does not divide by zero

