"""Stack geometry: the order along the normal and the checked StackGeometry, value by value."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dicomtui.core.examine.geometry import StackGeometry, check_stack, vector

AXIAL = "1.0\\0.0\\0.0\\0.0\\1.0\\0.0"


def rows(z: list[float], orientation: str = AXIAL, **over) -> list[dict]:
    """Axial instance rows at the given positions along z (mm), InstanceNumber in list order."""
    out = []
    for k, pos in enumerate(z):
        row = {"SOPInstanceUID": f"1.2.3.{k}", "InstanceNumber": k + 1, "ImagePositionPatient": f"10.0\\-20.0\\{pos}",
               "ImageOrientationPatient": orientation, "PixelSpacing": "0.5\\0.75", "Rows": 64, "Columns": 64,
               "FrameOfReferenceUID": "1.2.3.9", "SliceThickness": 2.5}
        row.update(over)
        out.append(row)
    return out


def geometry_of(data: list[dict]) -> StackGeometry:
    check = check_stack(data)
    assert check.geometry is not None
    return check.geometry


def test_vector_parses_dicom_multi_values() -> None:
    assert vector("1\\2.5\\-3", 3).tolist() == [1.0, 2.5, -3.0]
    assert vector("1\\2", 3) is None and vector(None, 3) is None and vector("a\\b\\c", 3) is None


def test_a_regular_stack() -> None:
    check = check_stack(rows([0.0, 2.0, 4.0, 6.0]))
    geometry = check.geometry
    assert check.warnings == [] and geometry is not None
    assert geometry.row.tolist() == [1.0, 0.0, 0.0] and geometry.col.tolist() == [0.0, 1.0, 0.0]
    assert geometry.normal.tolist() == [0.0, 0.0, 1.0]
    assert geometry.pixel_spacing.tolist() == [0.5, 0.75]
    assert geometry.distances.tolist() == [0.0, 2.0, 4.0, 6.0] and geometry.spacing == 2.0
    assert geometry.positions.tolist() == [[10.0, -20.0, z] for z in (0.0, 2.0, 4.0, 6.0)]
    assert geometry.tilt_deg == 0.0 and not geometry.irregular


def test_geometry_is_frozen() -> None:
    geometry = geometry_of(rows([0.0, 2.0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        geometry.spacing = 3.0  # type: ignore[misc]


def test_reversed_input_is_ordered_along_the_normal() -> None:
    data = rows([6.0, 4.0, 2.0, 0.0])
    check = check_stack(data)
    assert [r["SOPInstanceUID"] for r in check.instances] == ["1.2.3.3", "1.2.3.2", "1.2.3.1", "1.2.3.0"]
    assert check.geometry is not None and check.geometry.distances.tolist() == [0.0, 2.0, 4.0, 6.0]


def test_a_normal_pointing_down_orders_from_the_top() -> None:
    """Columns running anterior (-y): row × col = -z, so the stack starts at the highest z."""
    check = check_stack(rows([0.0, 2.0, 4.0], orientation="1.0\\0.0\\0.0\\0.0\\-1.0\\0.0"))
    geometry = check.geometry
    assert geometry is not None and geometry.normal.tolist() == [0.0, 0.0, -1.0]
    assert [r["SOPInstanceUID"] for r in check.instances] == ["1.2.3.2", "1.2.3.1", "1.2.3.0"]
    assert geometry.distances.tolist() == [-4.0, -2.0, 0.0] and geometry.spacing == 2.0


def test_a_gap_is_missing_slices_not_uneven_spacing() -> None:
    z = [k * 1.25 for k in range(12) if k not in (5, 6, 7)]
    check = check_stack(rows(z))
    assert check.warnings == ["3 missing slices between slice 5 and 6 (positions 5.00 and 10.00 mm along the "
                              "normal; usual spacing 1.25 mm)"]
    geometry = check.geometry
    assert geometry is not None and geometry.spacing == 1.25 and geometry.irregular
    assert np.diff(geometry.distances).tolist() == [1.25] * 4 + [5.0] + [1.25] * 3


def test_uneven_spacing_gives_the_range() -> None:
    check = check_stack(rows([0.0, 2.0, 4.0, 6.3, 8.0, 10.0]))
    assert check.warnings == ["slices are not equally spaced: spacing varies from 1.7 to 2.3 mm (tolerance "
                              "0.1 mm)"]  # positions written with one decimal: 0.1 mm, not 0.01
    assert check.geometry is not None and check.geometry.spacing == 2.0 and check.geometry.irregular


def test_repeated_positions_are_counted() -> None:
    check = check_stack(rows([0.0, 2.0, 2.0, 4.0, 4.0]))
    assert check.warnings[0] == ("2 slices share a position with another slice: several volumes or repeated "
                                 "acquisitions are mixed in this series")


def test_tilt_gives_the_angle_and_keeps_the_positions() -> None:
    tilt = math.radians(20)
    data = rows([2.0 * k for k in range(5)])
    for k, row in enumerate(data):
        row["ImagePositionPatient"] = f"0.0\\{2.0 * k * math.tan(tilt):.6f}\\{2.0 * k}"
    check = check_stack(data)
    geometry = check.geometry
    assert geometry is not None
    assert geometry.tilt_deg == pytest.approx(20.0, abs=1e-4) and geometry.irregular
    assert geometry.spacing == pytest.approx(2.0)  # along the normal, not along the tilted travel
    np.testing.assert_allclose(geometry.positions[-1], [0.0, 8.0 * math.tan(tilt), 8.0], atol=1e-6)
    assert check.warnings == ["gantry tilt or sheared geometry: slice positions move 20.00° away from the slice "
                              "normal; the volume is stored sheared (regularize to resample it)"]


def test_mixed_orientations_are_counted_and_the_first_is_used() -> None:
    data = rows([0.0, 2.0, 4.0, 6.0])
    data[3]["ImageOrientationPatient"] = "0.0\\1.0\\0.0\\0.0\\0.0\\-1.0"
    check = check_stack(data)
    assert "mixed orientations (2 different ImageOrientationPatient): not one volume" in check.warnings
    assert check.geometry is not None and check.geometry.normal.tolist() == [0.0, 0.0, 1.0]


def test_missing_geometry_orders_by_instance_number_and_has_no_geometry() -> None:
    data = rows([4.0, 0.0, 2.0])
    for row, number in zip(data, [3, 1, 2], strict=True):
        row["InstanceNumber"] = number
    data[1]["PixelSpacing"] = None
    check = check_stack(data)
    assert check.geometry is None
    assert [r["InstanceNumber"] for r in check.instances] == [1, 2, 3]
    assert check.warnings == ["missing geometry (PixelSpacing) in 1 of 3 images: slices are stacked by "
                              "InstanceNumber with 1 mm spacing, positions are not trustworthy"]


def test_one_slice_takes_its_thickness_as_spacing() -> None:
    geometry = geometry_of(rows([7.0]))
    assert geometry.spacing == 2.5 and geometry.distances.tolist() == [7.0] and not geometry.irregular
