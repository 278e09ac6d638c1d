"""Display geometry: a shown pixel is the right voxel and the right patient position in every plane and
orientation; letters, slice positions, units and scale bars read as a radiologist expects; an oblique volume's
anatomical planes are resampled on the true patient axes."""

from __future__ import annotations

import numpy as np
import pytest

from dicomtui.core.viewgeom import (
    acquired,
    anatomical,
    direction_letters,
    display_to_voxel,
    position_label,
    scale_bar,
    trilinear,
    value_unit,
)
from dicomtui.core.volume import PLANES, Volume, view

DIRECTIONS = {
    "axial": np.eye(3),
    "sagittal": np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float),  # i → P, j → -S, k → L
    "coronal": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float),  # i → L, j → -S, k → P
    "reversed": np.diag([-1.0, -1.0, -1.0]),
}


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = [n for n in range(3) if n != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def volume(direction: np.ndarray, spacing=(0.5, 0.7, 2.0), shape=(4, 5, 6), origin=(10.0, -20.0, 30.0),
           modality: str = "") -> Volume:
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(spacing)
    affine[:3, 3] = origin
    array = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)  # every voxel its own value
    return Volume(array=array, affine=affine, modality=modality)


@pytest.mark.parametrize("name", DIRECTIONS)
@pytest.mark.parametrize("plane", PLANES)
def test_a_shown_pixel_is_its_voxel_and_its_patient_position(name: str, plane: str) -> None:
    vol = volume(DIRECTIONS[name])
    v = view(vol, plane)
    pv = acquired(vol, plane)
    m = display_to_voxel(vol, plane)
    for s in range(len(v)):
        for r in range(v.data.shape[1]):
            for c in range(v.data.shape[2]):
                i, j, k = pv.voxel(c, r, s)
                assert (m @ [c, r, s, 1])[:3].tolist() == [i, j, k]
                assert v.data[s, r, c] == vol.array[k, j, i]
                assert np.allclose(pv.lps(c, r, s), (vol.affine @ [i, j, k, 1])[:3])
    # slice positions: the plane's axis, as the letter of the side
    assert pv.position(0).split()[0] in {"axial": "SI", "coronal": "PA", "sagittal": "LR"}[plane]


@pytest.mark.parametrize("name", DIRECTIONS)
def test_edge_letters_follow_the_radiological_convention(name: str) -> None:
    vol = volume(DIRECTIONS[name])
    expected = {"axial": dict(left="R", right="L", top="A", bottom="P"),
                "coronal": dict(left="R", right="L", top="S", bottom="I"),
                "sagittal": dict(left="A", right="P", top="S", bottom="I")}
    for plane in PLANES:
        assert acquired(vol, plane).edge_letters() == expected[plane], plane


def test_oblique_edges_name_the_nearest_axes_first() -> None:
    assert direction_letters(np.array([1.0, 0, 0])) == "L"
    assert direction_letters(np.array([-0.87, -0.5, 0])) == "RA"
    assert direction_letters(np.array([0.05, 0.0, -1.0])) == "I"  # 3°: not named
    vol = volume(rotation(2, 30.0))  # axial, turned 30° about the S axis
    letters = acquired(vol, "axial").edge_letters()
    assert letters["right"] == "LP" and letters["left"] == "RA"


def test_positions_are_written_as_sides_not_signs() -> None:
    assert position_label(1, -39.0) == "A 39.0 mm"
    assert position_label(1, 39.0) == "P 39.0 mm"
    assert position_label(0, -12.25) == "R 12.2 mm" or position_label(0, -12.25) == "R 12.3 mm"
    assert position_label(2, 0.0) == "S 0.0 mm"
    assert position_label(2, -7.5) == "I 7.5 mm"


def test_value_units() -> None:
    assert value_unit(volume(np.eye(3), modality="CT")) == "HU"
    assert value_unit(volume(np.eye(3), modality="MR")) == ""
    pet = volume(np.eye(3), modality="PT")
    pet.extra["units"] = "BQML"
    assert value_unit(pet) == "Bq/ml"
    pet.extra["units"] = "GML"
    assert value_unit(pet).startswith("g/ml")


def test_distances_are_in_patient_millimetres() -> None:
    vol = volume(np.eye(3), spacing=(0.5, 0.7, 2.0))
    pv = acquired(vol, "axial")
    assert pv.distance_mm((0, 0, 0), (4, 0, 0)) == pytest.approx(2.0)  # 4 columns of 0.5 mm
    assert pv.distance_mm((0, 0, 0), (0, 3, 0)) == pytest.approx(2.1)
    assert pv.distance_mm((0, 0, 0), (3, 4, 0)) == pytest.approx(np.hypot(1.5, 2.8))
    assert pv.distance_mm((0, 0, 0), (0, 0, 2)) == pytest.approx(4.0)  # across slices


def test_scale_bar_is_a_round_length() -> None:
    assert scale_bar(2.5, 20) == (20, 50.0)
    assert scale_bar(2.5, 19) == (8, 20.0)
    assert scale_bar(0.3, 40) == (33, 10.0)
    assert scale_bar(0.01, 5) == (0, 0.0)  # even 1 mm is 100 cells


def test_trilinear_interpolates_and_fills_outside() -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 2, 2)  # value = 4k + 2j + i
    i, j, k = np.array([0.5, 1.0, 0.25, 5.0]), np.array([0.5, 0.0, 1.0, 0.0]), np.array([0.5, 1.0, 0.0, 0.0])
    assert trilinear(a, i, j, k, fill=-1).tolist() == pytest.approx([3.5, 5.0, 2.25, -1.0])


def test_an_aligned_volume_has_no_separate_anatomical_planes() -> None:
    vol = volume(np.eye(3))
    assert not anatomical(vol, "coronal").anatomical


@pytest.mark.parametrize("plane", PLANES)
def test_an_oblique_volume_is_resampled_on_the_true_anatomical_planes(plane: str) -> None:
    # a linear field of patient position: the resampled value at a shown pixel must be its own position
    direction = rotation(0, 25.0) @ rotation(2, 15.0)
    shape = (20, 24, 22)
    affine = np.eye(4)
    affine[:3, :3] = direction * 2.0
    affine[:3, 3] = (5.0, -3.0, 11.0)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lps = np.einsum("ab,bkji->akji", affine[:3, :3], np.stack([i, j, k])) + affine[:3, 3, None, None, None]
    weights = np.array([1.0, 10.0, 100.0])
    vol = Volume(array=np.einsum("a,akji->kji", weights, lps).astype(np.float32), affine=affine)
    pv = anatomical(vol, plane)
    assert pv.anatomical and pv.oblique
    # the shown axes are the patient's: rows and columns and slices run along L/P/S only
    for col in range(3):
        assert np.count_nonzero(np.abs(pv.to_lps[:3, col]) > 1e-9) == 1
    assert pv.edge_letters() == acquired(volume(np.eye(3)), plane).edge_letters()
    s = len(pv) // 2
    data = pv.slice(s)
    inside = 0
    for r in range(0, data.shape[0], 3):
        for c in range(0, data.shape[1], 3):
            ijk = (np.linalg.inv(affine) @ np.append(pv.lps(c, r, s), 1))[:3]
            if np.all(ijk >= 0) and np.all(ijk <= np.array(shape[::-1]) - 1):
                inside += 1
                assert data[r, c] == pytest.approx(weights @ pv.lps(c, r, s), abs=1e-2)
    assert inside > 20


def test_cine_rate_from_the_file_else_ten() -> None:
    from dicomtui.core.viewgeom import cine_rate

    vol = volume(np.eye(3))
    assert cine_rate(vol) == 10.0
    vol.extra["frame_rate"] = 25
    assert cine_rate(vol) == 25.0
    vol.extra["frame_rate"] = 500.0  # a FrameTime of 2 ms: clamped to what a terminal shows
    assert cine_rate(vol) == 60.0
    vol.extra["frame_rate"] = "n/a"
    assert cine_rate(vol) == 10.0
