"""RT Structure Sets: contours rasterised on the referenced series' grid (pixel centres, even-odd, holes by XOR),
ROI names / colours / types on the segments, one label volume unless ROIs overlap, what is left out said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.errors import LoadError
from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.rasterize import polygon_mask, rasterize
from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_rt import Roi, circle, rtstruct_dataset, slice_positions, sphere, write_datasets

SPEC = SeriesSpec(slices=12, rows=40, cols=40, pixel_spacing=(1.0, 1.0), slice_spacing=2.0,
                  origin=(-20.0, -20.0, 0.0))


def square(x0: float, y0: float, x1: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def test_a_pixel_is_inside_when_its_centre_is() -> None:
    # a square from column 2.5 to 6.5, row 1.5 to 4.5: centres 3..6 × 2..4
    mask = polygon_mask(np.array([2.5, 6.5, 6.5, 2.5]), np.array([1.5, 1.5, 4.5, 4.5]), (8, 10))
    assert mask.sum() == 4 * 3 and mask[2:5, 3:7].all()


def test_a_contour_inside_another_on_one_slice_is_a_hole() -> None:
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    outer, inner = square(0.5, 0.5, 9.5, 9.5, 4.0), square(3.5, 3.5, 6.5, 6.5, 4.0)
    result = rasterize([outer, inner], affine, (5, 12, 12))
    assert result.mask[2].sum() == 9 * 9 - 3 * 3 and not result.mask[2, 4:7, 4:7].any()
    assert result.mask.sum() == result.mask[2].sum() and result.slices == {2}


def test_contours_off_the_grid_or_across_the_slices_are_counted_not_drawn() -> None:
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    beyond = square(0.5, 0.5, 4.5, 4.5, 20.0)  # z 20 mm: slice 10 of 5
    between = square(0.5, 0.5, 4.5, 4.5, 3.0)  # z 3 mm: half-way between slices 1 and 2 → slice 2 (round half up)
    tilted = np.array([[0.5, 0.5, 0.0], [4.5, 0.5, 0.0], [4.5, 4.5, 6.0], [0.5, 4.5, 6.0]])
    result = rasterize([beyond, between, tilted], affine, (5, 8, 8))
    assert (result.off_grid, result.not_planar) == (1, 1)
    assert result.slices == {2}


def _write(tmp_path: Path, rois: list[Roi], ct_too: bool = True) -> tuple[list, object, list[Path]]:
    ct = series_datasets(SPEC)
    rs = rtstruct_dataset(ct, rois)
    folders = [tmp_path / "rs"]
    write_datasets(folders[0], [rs])
    if ct_too:
        folders.append(tmp_path / "ct")
        write_datasets(folders[1], ct)
    return ct, rs, folders


def _load(db, rs) -> list:
    sid = db.find("series", rs.SeriesInstanceUID)["id"]
    loadables = examine_series(db, [sid])
    assert [(item.plugin, item.selected) for item in loadables] == [("rtstruct", True)]
    return load(db, loadables[0])


def test_rois_that_do_not_overlap_are_one_label_volume_on_the_image_grid(db, tmp_path: Path) -> None:
    zs = slice_positions(series_datasets(SPEC))
    rois = [Roi("Lung L", [square(-15.5, -15.5, -5.5, -5.5, z) for z in zs[2:5]], (0, 128, 255), kind="ORGAN"),
            Roi("GTV", [square(5.5, 5.5, 9.5, 9.5, z) for z in zs[6:8]], (255, 0, 0), kind="GTV")]
    ct, rs, folders = _write(tmp_path, rois)
    import_paths(db, folders)
    (volume,) = _load(db, rs)
    assert [(s.number, s.label, s.color, s.type) for s in volume.segments] == [
        (1, "Lung L", (0, 128, 255), "ORGAN"), (2, "GTV", (255, 0, 0), "GTV")]
    assert volume.array.shape == (12, 40, 40) and volume.array.dtype == np.uint8
    assert np.allclose(volume.affine[:3, 3], [-20.0, -20.0, 0.0]) and np.allclose(volume.spacing, (1, 1, 2))
    assert (volume.array == 1).sum() == 3 * 10 * 10 and (volume.array == 2).sum() == 2 * 4 * 4
    # x -15.5…-5.5 mm → columns 5…14 (x = -20 + i); slice k at z = 2k
    assert (volume.array[2:5, 5:15, 5:15] == 1).all() and volume.array[6:8, 26:30, 26:30].min() == 2
    assert volume.series_uid == rs.SeriesInstanceUID and volume.referenced_series_uid == ct[0].SeriesInstanceUID
    assert volume.is_labels and volume.modality == "RTSTRUCT" and volume.warnings == []


def test_overlapping_rois_are_one_label_volume_each(db, tmp_path: Path) -> None:
    zs = slice_positions(series_datasets(SPEC))
    rois = [Roi("BODY", sphere((0.0, 0.0, 11.0), 15.0, zs), (200, 200, 200), kind="EXTERNAL"),
            Roi("PTV", sphere((2.0, 0.0, 11.0), 5.0, zs), (255, 0, 0), kind="PTV")]
    _, rs, folders = _write(tmp_path, rois)
    import_paths(db, folders)
    body, ptv = _load(db, rs)
    assert [v.segments[0].label for v in (body, ptv)] == ["BODY", "PTV"]
    assert all(v.segments[0].number == 1 and set(np.unique(v.array)) == {0, 1} for v in (body, ptv))
    assert body.name.endswith(": BODY") and ptv.name.endswith(": PTV")
    assert (body.array[ptv.array == 1] == 1).all()  # the tumour lies in the body: both keep it


def test_point_and_open_contours_are_listed_as_skipped(db, tmp_path: Path) -> None:
    zs = slice_positions(series_datasets(SPEC))
    marker = np.array([[0.0, 0.0, zs[3]]])
    line = np.array([[0.0, 0.0, zs[4]], [5.0, 5.0, zs[4]]])
    rois = [Roi("ring", [circle((0.0, 0.0), 6.0, z) for z in zs[3:6]],
                extra=[("POINT", marker), ("OPEN_PLANAR", line), ("OPEN_PLANAR", line)]),
            Roi("iso", [], extra=[("POINT", marker)])]
    _, rs, folders = _write(tmp_path, rois)
    import_paths(db, folders)
    (volume,) = _load(db, rs)
    assert [s.label for s in volume.segments] == ["ring"]
    assert volume.warnings == ["ROI 'iso' has no closed planar contour on the image grid: left out",
                               "contours that are not CLOSED_PLANAR are not rasterised: 2 OPEN_PLANAR, 2 POINT"]


def test_without_its_image_series_a_structure_set_says_what_to_import(db, tmp_path: Path) -> None:
    zs = slice_positions(series_datasets(SPEC))
    ct, rs, folders = _write(tmp_path, [Roi("a", [circle((0.0, 0.0), 5.0, zs[2])])], ct_too=False)
    import_paths(db, folders)
    with pytest.raises(LoadError, match=rf"the image series it refers to \({ct[0].SeriesInstanceUID}\) is not in the "
                                        r"database: import it to rasterise the structure set$"):
        _load(db, rs)


def test_the_image_series_is_found_by_contour_images_when_the_reference_tree_is_missing(db, tmp_path: Path) -> None:
    zs = slice_positions(series_datasets(SPEC))
    ct, rs, folders = _write(tmp_path, [Roi("a", [circle((0.0, 0.0), 5.0, zs[2])])])
    del rs.ReferencedFrameOfReferenceSequence
    write_datasets(folders[0], [rs])
    import_paths(db, folders)
    (volume,) = _load(db, rs)
    assert volume.referenced_series_uid == ct[0].SeriesInstanceUID and volume.array.sum() > 0


def test_contours_on_a_sagittal_grid_are_matched_along_its_normal(db, tmp_path: Path) -> None:
    """The grid's normal, not z, says which slice a contour is on: sagittal images, contours in planes x = c."""
    spec = SeriesSpec(slices=10, rows=30, cols=40, pixel_spacing=(1.0, 1.0), slice_spacing=3.0,
                      orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0), origin=(-15.0, -20.0, 15.0))
    ct = series_datasets(spec)
    xs = [float(ds.ImagePositionPatient[0]) for ds in ct]  # the normal (0,1,0)×(0,0,-1) = (-1,0,0): x decreases

    def sagittal_square(x: float) -> np.ndarray:  # y -10.5…-4.5 (columns 10-15), z 10.5…6.5 (rows 5-8)
        return np.array([[x, -10.5, 10.5], [x, -4.5, 10.5], [x, -4.5, 6.5], [x, -10.5, 6.5]])

    rs = rtstruct_dataset(ct, [Roi("cord", [sagittal_square(x) for x in xs[3:6]])])
    write_datasets(tmp_path / "ct", ct)
    write_datasets(tmp_path / "rs", [rs])
    import_paths(db, [tmp_path / "ct", tmp_path / "rs"])
    (volume,) = _load(db, rs)
    assert volume.array.shape == (10, 30, 40) and volume.warnings == []
    assert np.argwhere(volume.array).min(axis=0).tolist() == [3, 5, 10]
    assert np.argwhere(volume.array).max(axis=0).tolist() == [5, 8, 15] and volume.array.sum() == 3 * 4 * 6


def test_a_cancel_between_rois_returns_nothing(db, tmp_path: Path) -> None:
    import threading

    zs = slice_positions(series_datasets(SPEC))
    _, rs, folders = _write(tmp_path, [Roi("a", [circle((0.0, 0.0), 5.0, zs[2])])])
    import_paths(db, folders)
    (loadable,) = examine_series(db, [db.find("series", rs.SeriesInstanceUID)["id"]])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadError, match="loading cancelled"):
        load(db, loadable, cancel=cancel)


def test_contours_on_a_stack_with_a_missing_slice_find_their_own_slice(db, tmp_path: Path) -> None:
    """The affine of a gapped stack holds the usual spacing only: the stored positions place the contours."""
    zs = [0.0, 2.0, 4.0, 8.0, 10.0, 12.0]  # the slice at 6 mm is missing
    spec = SeriesSpec(slices=6, rows=20, cols=20, pixel_spacing=(1.0, 1.0), positions=[(-10.0, -10.0, z) for z in zs])
    ct = series_datasets(spec)
    rs = rtstruct_dataset(ct, [Roi("after the gap", [square(-5.5, -5.5, 4.5, 4.5, z) for z in (8.0, 10.0)]),
                               Roi("in the gap", [square(-5.5, -5.5, 4.5, 4.5, 6.0)])])
    write_datasets(tmp_path / "ct", ct)
    write_datasets(tmp_path / "rs", [rs])
    import_paths(db, [tmp_path / "ct", tmp_path / "rs"])
    (volume,) = _load(db, rs)
    assert [s.label for s in volume.segments] == ["after the gap"]
    assert [k for k in range(6) if volume.array[k].any()] == [3, 4]  # z 8 and 10 mm, not slices 4 and 5
    assert volume.array[3].sum() == 100
    assert volume.warnings == ["ROI 'in the gap' has no closed planar contour on the image grid: left out",
                               "1 contour lies on no slice of the image series (beyond its ends or in a gap): left out"]
