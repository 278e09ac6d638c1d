"""`dicomtui load -o` of an RT structure set whose ROIs overlap (a BODY around a PTV, as every plan has): one 3D
label file per ROI beside the CT (OUT-labels-N for the N-th ROI, its voxels 1: the rtstruct plugin's per-ROI
masks), and a JSON naming the file and the ROI of each."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_rt import Roi, rtstruct_dataset, slice_positions, write_datasets

from .test_cli import run

SPEC = SeriesSpec(slices=8, rows=20, cols=20, pixel_spacing=(1.0, 1.0), slice_spacing=2.0,
                  origin=(-10.0, -10.0, 0.0))


def square(x0: float, y0: float, x1: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def test_overlapping_rois_are_written_one_label_file_per_roi(tmp_path: Path) -> None:
    ct = series_datasets(SPEC)
    zs = slice_positions(ct)
    rois = [Roi("BODY", [square(-8.5, -8.5, 8.5, 8.5, z) for z in zs[1:7]], (200, 200, 200), kind="EXTERNAL"),
            Roi("PTV", [square(-2.5, -2.5, 2.5, 2.5, z) for z in zs[3:5]], (255, 0, 0), kind="PTV")]
    write_datasets(tmp_path / "in" / "ct", ct)
    rs = rtstruct_dataset(ct, rois)
    write_datasets(tmp_path / "in" / "rs", [rs])
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    out = run("--db", db, "load", rs.SeriesInstanceUID, "-o", str(tmp_path / "plan.nii.gz"))
    assert out.returncode == 0, out.stderr
    body, ptv = (np.asarray(nib.load(tmp_path / f"plan-labels-{n}.nii.gz").dataobj) for n in (1, 2))
    # NIfTI [i, j, k]; x = -10 + i: BODY columns 2…18 on slices 1…6, PTV columns 8…12 on slices 3…4
    assert body.shape == ptv.shape == (20, 20, 8) == nib.load(tmp_path / "plan.nii.gz").shape
    assert set(np.unique(body)) == {0, 1} and (body == 1).sum() == 17 * 17 * 6
    assert set(np.unique(ptv)) == {0, 1} and (ptv == 1).sum() == 5 * 5 * 2
    assert (body[ptv == 1] == 1).all()  # the PTV lies inside the BODY: both files hold those voxels
    described = json.loads((tmp_path / "plan-labels.json").read_text())
    assert described["files"] == ["plan-labels-1.nii.gz", "plan-labels-2.nii.gz"]
    assert [[(s["label"], s["type"]) for s in v] for v in described["volumes"]] == [[("BODY", "EXTERNAL")],
                                                                                     [("PTV", "PTV")]]
