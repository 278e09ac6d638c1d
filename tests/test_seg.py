"""SEG plugin: given highdicom-written segmentations of a generated CT, when imported and loaded, then the label
volumes lie on the CT's grid and equal highdicom's own reading (get_pixels_by_source_instance / get_volume)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import examine_and_load, examine_series
from dicomtui.core.indexer import run_import
from dicomtui.core.synth import SeriesSpec

from .seg_data import SPEC, write_ct, write_seg


def _import(db: DicomDatabase, *paths: Path) -> None:
    *_, event = run_import(db, list(paths))
    assert not event.rejected, event.summary()


def _series_id(db: DicomDatabase, uid: str) -> int:
    row = db.find("series", uid)
    assert row is not None
    return int(row["id"])


def _labels(shape: tuple[int, ...] = (6, 16, 16)) -> np.ndarray:
    """Two segments, apart, on slices 1-4 only (sparse: slices 0 and 5 have no frame)."""
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 4:10, 3:8] = 1
    labels[2:5, 10:14, 10:14] = 2
    return labels


def _source_truth(seg_path: Path, instance_uids: list[str]) -> np.ndarray:
    """highdicom's own label array of the SEG per source instance, [slice, row, column]."""
    return hd.seg.segread(seg_path).get_pixels_by_source_instance(instance_uids, combine_segments=True)


def test_examine_offers_one_seg_loadable_and_no_grey_reading_of_its_frames(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, _labels())
    one = write_seg(tmp_path / "seg1" / "seg.dcm", source[2:3], _labels()[2:3])  # one frame: not scalar's
    _import(db, tmp_path)
    for written in (seg, one):
        loadables = examine_series(db, [_series_id(db, written.SeriesInstanceUID)])
        assert [(item.plugin, item.selected) for item in loadables] == [("seg", True)]


def test_sparse_binary_seg_is_one_label_volume_on_the_ct_grid(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    labels = _labels()
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, labels)
    _import(db, tmp_path)
    report = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)])
    ct, volume = report.volumes  # the referenced CT first (loaded by default), then the labels placed on it
    assert [r.loadable.plugin for r in report.loaded] == ["scalar", "seg"] and not ct.is_labels
    assert ct.series_uid == source[0].SeriesInstanceUID
    assert volume.array.dtype == np.uint8 and volume.array.shape == ct.array.shape
    np.testing.assert_array_equal(volume.affine, ct.affine)
    np.testing.assert_array_equal(volume.array, labels)
    np.testing.assert_array_equal(volume.array, _source_truth(tmp_path / "seg" / "seg.dcm", ct.instance_uids))
    assert volume.referenced_series_uid == source[0].SeriesInstanceUID
    assert volume.series_uid == seg.SeriesInstanceUID
    assert not volume.resampled and not volume.warnings
    liver, spleen = volume.segments
    assert (liver.number, liver.label, liver.category, liver.type, liver.algorithm) == (
        1, "liver", "Tissue", "Liver", "MANUAL")
    assert liver.color == (255, 0, 0) and spleen.color == (0, 128, 0)  # CIELab "red"/"green" back to RGB
    assert spleen.label == "spleen"


def test_frames_out_of_order_are_placed_by_position(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    labels = _labels()
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, labels, reverse_frames=True)
    _import(db, tmp_path)
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    np.testing.assert_array_equal(volume.array, labels)
    ct_uids = [ds.SOPInstanceUID for ds in source]
    np.testing.assert_array_equal(volume.array, _source_truth(tmp_path / "seg" / "seg.dcm", ct_uids))


def test_overlapping_segments_give_one_label_volume_per_segment(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    masks = np.zeros((6, 16, 16, 2), bool)
    masks[1:4, 4:10, 3:8, 0] = True
    masks[2:5, 6:12, 5:10, 1] = True  # overlaps the first
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, masks)
    _import(db, tmp_path)
    first, second = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    truth = hd.seg.segread(tmp_path / "seg" / "seg.dcm").get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in source])
    assert [s.number for s in first.segments] == [1] and [s.number for s in second.segments] == [2]
    np.testing.assert_array_equal(first.array, masks[..., 0] * 1)
    np.testing.assert_array_equal(second.array, masks[..., 1] * 2)
    np.testing.assert_array_equal(first.array > 0, truth[..., 0] > 0)
    assert "segments overlap" in " ".join(first.warnings)


def test_fractional_seg_is_binarised_at_one_half(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    fractions = np.zeros((6, 16, 16), np.float32)
    fractions[1:4, 4:10, 3:8] = 0.8
    fractions[1:4, 4:10, 8:12] = 0.3  # below one half: out
    fractions[2, 2, 2] = 0.5  # one half: in
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, fractions[..., None], fractional=True)
    _import(db, tmp_path)
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    expected = (fractions >= 0.5).astype(np.uint8)
    np.testing.assert_array_equal(volume.array, expected)
    truth = hd.seg.segread(tmp_path / "seg" / "seg.dcm").get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in source], rescale_fractional=True)
    np.testing.assert_array_equal(volume.array, (truth[..., 0] >= 0.5).astype(np.uint8))
    assert any("fractional" in w for w in volume.warnings)


def test_without_the_referenced_series_the_seg_keeps_its_own_geometry(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    labels = _labels()
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, labels)
    _import(db, tmp_path / "seg")  # the CT is not imported
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    own = hd.seg.segread(tmp_path / "seg" / "seg.dcm").get_volume(combine_segments=True)
    np.testing.assert_array_equal(volume.array, own.array)
    np.testing.assert_allclose(volume.affine, own.affine[:, [2, 1, 0, 3]])
    assert volume.referenced_series_uid == ""
    assert any("not in the database" in w and source[0].SeriesInstanceUID in w for w in volume.warnings)


def test_seg_frames_off_the_grid_are_resampled_nearest_with_a_warning(db, tmp_path):
    """The SEG was drawn on a 2 mm grid shifted by half a CT voxel; the CT has 1 mm pixels: each CT voxel takes
    the SEG voxel nearest it, so the mask doubles along rows and columns (no ties at 0.25 / 0.75)."""
    source = write_ct(tmp_path / "ct")
    coarse_spec = SeriesSpec(**{**SPEC.__dict__, "rows": 8, "cols": 8, "pixel_spacing": (2.0, 2.0),
                                "origin": (0.5, 0.5, 0.0), "series_uid": source[0].SeriesInstanceUID})
    coarse = write_ct(tmp_path / "coarse", coarse_spec)  # same series UID and frame of reference, not imported
    small = np.zeros((6, 8, 8), np.uint8)
    small[1:4, 2:5, 1:3] = 1
    seg = write_seg(tmp_path / "seg" / "seg.dcm", coarse, small)
    _import(db, tmp_path / "ct", tmp_path / "seg")
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    expected = small.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(volume.array, expected)
    assert volume.resampled and any("resampled" in w for w in volume.warnings)



def test_label_dtype_follows_the_largest_segment_number():
    from dicomtui.core.examine.plugin import Loadable
    from dicomtui.core.examine.seg import _label_volumes

    placed = {300: np.array([0, 5])}
    [volume] = _label_volumes(placed, {}, (1, 2, 4), np.eye(4), Loadable("s", [], "seg", 0.5), [], None, {}, False)
    assert volume.array.dtype == np.uint16 and volume.array.ravel()[5] == 300


def test_no_referenced_loads_the_labels_alone_and_a_ct_chosen_too_is_loaded_once(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, _labels())
    _import(db, tmp_path)
    seg_id, ct_id = _series_id(db, seg.SeriesInstanceUID), _series_id(db, source[0].SeriesInstanceUID)
    [alone] = examine_and_load(db, [seg_id], referenced=False).volumes
    assert alone.is_labels and alone.referenced_series_uid == source[0].SeriesInstanceUID
    both = examine_and_load(db, [ct_id, seg_id])
    assert [r.loadable.plugin for r in both.loaded] == ["scalar", "seg"]
    reverse = examine_and_load(db, [seg_id, ct_id])
    assert [r.loadable.plugin for r in reverse.loaded] == ["scalar", "seg"]


def test_a_seg_naming_no_series_is_placed_on_the_image_of_its_frame_of_reference(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    labels = _labels()
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, labels)
    del seg.ReferencedSeriesSequence  # the Common Instance Reference left out (tools that write only the FoR)
    seg.save_as(tmp_path / "seg" / "seg.dcm")
    _import(db, tmp_path)
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    np.testing.assert_array_equal(volume.array, labels)
    assert volume.referenced_series_uid == source[0].SeriesInstanceUID
    assert any("shares its frame of reference" in w for w in volume.warnings)


def test_an_empty_segment_is_listed_without_voxels(db, tmp_path):
    source = write_ct(tmp_path / "ct")
    masks = np.zeros((6, 16, 16, 2), bool)
    masks[2:4, 3:6, 3:6, 0] = True  # segment 2 ("spleen") has no voxel
    seg = write_seg(tmp_path / "seg" / "seg.dcm", source, masks)
    _import(db, tmp_path)
    [volume] = examine_and_load(db, [_series_id(db, seg.SeriesInstanceUID)], referenced=False).volumes
    assert [s.label for s in volume.segments] == ["liver", "spleen"]
    np.testing.assert_array_equal(volume.array, masks[..., 0] * 1)
