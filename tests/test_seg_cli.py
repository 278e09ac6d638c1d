"""The CLI with segmentations: examine of a CT says what refers to it; load of a SEG writes the CT and the label
image beside it (uint labels, a JSON of the segments), or the labels alone with --no-referenced."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from .seg_data import write_ct, write_seg
from .test_cli import run


def _setup(tmp_path: Path) -> tuple[str, str, str, np.ndarray]:
    ct = write_ct(tmp_path / "in" / "ct")
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[1:4, 4:10, 3:8] = 1
    labels[2:5, 10:14, 10:14] = 2
    seg = write_seg(tmp_path / "in" / "seg" / "seg.dcm", ct, labels)
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    return db, ct[0].SeriesInstanceUID, seg.SeriesInstanceUID, labels


def test_examine_of_the_ct_lists_what_refers_to_it(tmp_path: Path) -> None:
    db, ct_uid, seg_uid, _labels = _setup(tmp_path)
    out = run("--db", db, "examine", ct_uid)
    assert "referenced by 1 segmentation" in out.stdout, out.stdout
    [item] = json.loads(run("--db", db, "examine", ct_uid, "--json").stdout)
    assert item["referenced_by"] == "referenced by 1 segmentation"
    [item] = json.loads(run("--db", db, "examine", seg_uid, "--json").stdout)
    assert (item["plugin"], item["selected"], item["referenced_by"]) == ("seg", True, "")


def test_load_of_a_seg_writes_the_ct_and_the_labels_beside_it(tmp_path: Path) -> None:
    db, _ct_uid, seg_uid, labels = _setup(tmp_path)
    out = run("--db", db, "load", seg_uid, "-o", str(tmp_path / "case.nii.gz"))
    assert out.returncode == 0, out.stderr
    image = nib.load(tmp_path / "case.nii.gz")
    label_image = nib.load(tmp_path / "case-labels.nii.gz")
    assert image.shape == label_image.shape == (16, 16, 6)
    np.testing.assert_allclose(image.affine, label_image.affine)
    assert label_image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(label_image.dataobj), labels.T)  # [k, j, i] → NIfTI [i, j, k]
    segments = json.loads((tmp_path / "case-labels.json").read_text())
    assert [(s["number"], s["label"]) for s in segments["volumes"][0]] == [(1, "liver"), (2, "spleen")]

    out = run("--db", db, "load", seg_uid, "--no-referenced", "-o", str(tmp_path / "alone.nii.gz"))
    assert out.returncode == 0, out.stderr
    assert nib.load(tmp_path / "alone.nii.gz").get_data_dtype() == np.uint8
    assert not (tmp_path / "alone-labels.nii.gz").exists() and (tmp_path / "alone.json").exists()


def test_labels_to_seg_writes_a_seg_that_loads_back_to_the_labels(tmp_path: Path) -> None:
    db, ct_uid, _seg_uid, labels = _setup(tmp_path)
    out = run("--db", db, "load", ct_uid, "-o", str(tmp_path / "ct.nii.gz"))
    assert out.returncode == 0, out.stderr
    ct = nib.load(tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels.T.copy(), ct.affine), tmp_path / "mine.nii.gz")  # [k, j, i] → [i, j, k]
    (tmp_path / "segments.json").write_text('{"1": {"label": "tumour", "type": "Neoplasm"}, "2": {"label": "cyst"}}')
    out = run("--db", db, "labels-to-seg", str(tmp_path / "mine.nii.gz"), "--like", ct_uid[:30],
              "--segments", str(tmp_path / "segments.json"), "-o", str(tmp_path / "segout"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [s["label"] for s in report["segments"]] == ["tumour", "cyst"] and report["stored"] == 1
    assert (tmp_path / "segout" / "SEG.dcm").exists()
    out = run("--db", db, "load", report["series_uid"], "--no-referenced", "-o", str(tmp_path / "back.nii.gz"))
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "back.nii.gz").dataobj), labels.T)
    assert "referenced by 2 segmentations" in run("--db", db, "examine", ct_uid).stdout

    out = run("--db", db, "labels-to-seg", str(tmp_path / "mine.nii.gz"), "--like", ct_uid, "--segments", "{1")
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_overlapping_segments_are_written_one_label_file_per_segment(tmp_path: Path) -> None:
    """Overlapping segments: OUT-labels-1 and OUT-labels-2, each a 3D label image holding its segment's number
    (as plastimatch and dcmqi write one file per structure; a 4D file was read as a time series by viewers),
    and OUT-labels.json names the file of each segment. (Until session 5 this wrote one 4D file.)"""
    ct = write_ct(tmp_path / "in" / "ct")
    masks = np.zeros((6, 16, 16, 2), bool)
    masks[1:4, 4:10, 3:8, 0] = True
    masks[2:5, 6:12, 5:10, 1] = True
    seg = write_seg(tmp_path / "in" / "seg" / "seg.dcm", ct, masks)
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    out = run("--db", db, "load", seg.SeriesInstanceUID, "-o", str(tmp_path / "o.nii.gz"))
    assert out.returncode == 0 and "segments overlap" in out.stderr, out.stderr
    assert not (tmp_path / "o-labels.nii.gz").exists()
    for number in (1, 2):
        image = nib.load(tmp_path / f"o-labels-{number}.nii.gz")
        assert image.shape == (16, 16, 6) and image.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(np.asarray(image.dataobj), (masks[..., number - 1] * number).T)
        np.testing.assert_allclose(image.affine, nib.load(tmp_path / "o.nii.gz").affine)
    described = json.loads((tmp_path / "o-labels.json").read_text())
    assert described["files"] == ["o-labels-1.nii.gz", "o-labels-2.nii.gz"]
    assert [[(s["number"], s["label"]) for s in v] for v in described["volumes"]] == [[(1, "liver")],
                                                                                      [(2, "spleen")]]
    assert "one file per segment (2)" in out.stdout, out.stdout
