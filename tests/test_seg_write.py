"""SEG export: given a label image on (or off) a CT's grid, when written as a DICOM SEG, then it is stored in the
database, references the CT, reloads (our SEG plugin) to the same mask, and dciodvfy finds no error in it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.errors import ExportError
from dicomtui.core.examine import examine_and_load
from dicomtui.core.examine.references import references_of
from dicomtui.core.export.seg_write import segment_specs, write_labels_as_seg
from dicomtui.core.indexer import run_import
from dicomtui.core.volume import Volume

from .conftest import require_program
from .seg_data import write_ct


def _ct(db, tmp_path: Path) -> tuple[str, Volume]:
    source = write_ct(tmp_path / "ct")
    *_, report = run_import(db, [tmp_path / "ct"])
    assert not report.rejected
    uid = source[0].SeriesInstanceUID
    ct = examine_and_load(db, [db.find("series", uid)["id"]]).volumes[0]
    return uid, ct


def _labels(shape: tuple[int, ...]) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 4:10, 3:8] = 3  # label values 3 and 7: numbered 1 and 2 in the SEG
    labels[2:5, 10:14, 10:14] = 7
    return labels


def _reload(db, series_uid: str) -> Volume:
    [volume] = examine_and_load(db, [db.find("series", series_uid)["id"]], referenced=False).volumes
    return volume


def test_labels_on_the_ct_grid_round_trip_through_a_stored_seg(db, tmp_path):
    ct_uid, ct = _ct(db, tmp_path)
    labels = _labels(ct.array.shape)
    specs = segment_specs(json.dumps({"3": {"label": "liver", "category": "Tissue", "type": "Liver",
                                            "color": [255, 0, 0]},
                                      "7": {"label": "spleen", "type": {"value": "78961009", "scheme": "SCT",
                                                                        "meaning": "Spleen"}}}))
    report = write_labels_as_seg(db, Volume(labels, ct.affine.copy(), name="case"), ct_uid, specs)
    assert report.stored == 1 and not report.problems
    assert [(v, n, label) for v, n, label in report.segments] == [(3, 1, "liver"), (7, 2, "spleen")]
    assert any("label 3 → segment 1" in w for w in report.warnings)
    assert references_of(db, report.series_uid) == [ct_uid]
    volume = _reload(db, report.series_uid)
    expected = np.select([labels == 3, labels == 7], [1, 2], 0)
    np.testing.assert_array_equal(volume.array, expected)
    liver, spleen = volume.segments
    assert (liver.label, liver.type, liver.color, spleen.label, spleen.type) == (
        "liver", "Liver", (255, 0, 0), "spleen", "Spleen")


def test_labels_in_another_axis_order_are_placed_exactly(db, tmp_path):
    """A NIfTI-like label image: the same voxels with i flipped and i/k swapped → no resampling warning."""
    ct_uid, ct = _ct(db, tmp_path)
    labels = _labels(ct.array.shape)
    flipped = labels[:, :, ::-1]  # i reversed
    affine = ct.affine.copy()
    affine[:3, 3] = ct.affine[:3, 3] + ct.affine[:3, 0] * (labels.shape[2] - 1)
    affine[:3, 0] = -ct.affine[:3, 0]
    swapped = np.ascontiguousarray(flipped.transpose(2, 1, 0))  # [i, j, k] as [k, j, i]
    affine = affine[:, [2, 1, 0, 3]]
    report = write_labels_as_seg(db, Volume(swapped, affine), ct_uid)
    assert not any("resampled" in w for w in report.warnings)
    np.testing.assert_array_equal(_reload(db, report.series_uid).array > 0, labels > 0)


def test_bad_labels_and_json_are_sentences(db, tmp_path):
    ct_uid, ct = _ct(db, tmp_path)
    with pytest.raises(ExportError, match="no voxel is labelled"):
        write_labels_as_seg(db, Volume(np.zeros(ct.array.shape, np.uint8), ct.affine), ct_uid)
    with pytest.raises(ExportError, match="whole numbers"):
        write_labels_as_seg(db, Volume(np.full(ct.array.shape, 0.5), ct.affine), ct_uid)
    with pytest.raises(ExportError, match="not a SNOMED CT keyword"):
        segment_specs('{"1": {"type": "Liverish"}}')
    with pytest.raises(ExportError, match="keyed by label value"):
        segment_specs("[1]")


def test_dciodvfy_finds_no_error_in_the_seg(db, tmp_path):
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    ct_uid, ct = _ct(db, tmp_path)
    report = write_labels_as_seg(db, Volume(_labels(ct.array.shape), ct.affine), ct_uid, folder=tmp_path / "out")
    assert report.file is not None and report.file.exists()
    out = subprocess.run([dciodvfy, str(report.file)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
