"""Thumbnails of remote series (issue 18): the middle instance's WADO-RS ``/rendered`` image from Orthanc with its
DICOMweb plugin, started on 127.0.0.1 by the test; a server without it answers in words, not with an error."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.synth import SeriesSpec, series_datasets
from tests.interop.test_dicomweb import orthanc_dicomweb

pytestmark = pytest.mark.interop

SLICES = 5
SIZE = 30  # rows = columns
BAR = SIZE // SLICES  # slice i has a white bar at [i·BAR, (i+1)·BAR), black elsewhere: columns (CT), rows (MR)


def bar_pixels(i: int, spec: SeriesSpec) -> np.ndarray:
    """Stored values: 0 (black in the 40/400 window) with a bar of 2000 (white) for slice i: a vertical bar in a
    CT series, a horizontal one in an MR series."""
    data = np.zeros((spec.rows, spec.cols), dtype=np.int16)
    if spec.modality == "CT":
        data[:, i * BAR:(i + 1) * BAR] = 2000
    else:
        data[i * BAR:(i + 1) * BAR, :] = 2000
    return data


def bar_series(folder: Path, modality: str = "CT", series_number: int = 1, study_uid: str = "") -> list[dict]:
    """One series of ``SLICES`` bar images as files (rows as stow takes), in a shuffled order: what the server
    was sent first is not the middle one."""
    spec = SeriesSpec(patient_id="THUMB", slices=SLICES, rows=SIZE, cols=SIZE, modality=modality,
                      series_number=series_number, study_uid=study_uid, seed=series_number)
    rows = []
    for i, ds in enumerate(series_datasets(spec, bar_pixels)):
        path = folder / f"se{series_number}-{i}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        rows.append({"path": str(path), "SOPInstanceUID": ds.SOPInstanceUID, "StudyInstanceUID": ds.StudyInstanceUID,
                     "SeriesInstanceUID": ds.SeriesInstanceUID, "InstanceNumber": ds.InstanceNumber})
    random.Random(3).shuffle(rows)
    return rows


def bright_band(pixels: np.ndarray, axis: int) -> tuple[float, float]:
    """Where the white bar starts and ends, as fractions of the image's width (``axis`` 1: a vertical bar) or
    height (``axis`` 0: a horizontal bar)."""
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    lines = np.flatnonzero(grey.mean(axis=1 - axis) > 128)
    return lines[0] / grey.shape[axis], (lines[-1] + 1) / grey.shape[axis]


@pytest.fixture
def bar_study(tmp_path: Path):
    """Orthanc with a study of two series (CT number 1, MR number 2) of bar images, sent by our STOW-RS."""
    from dicomtui.core.net.web_stow import stow

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        ct = bar_series(tmp_path / "files")
        mr = bar_series(tmp_path / "files", "MR", 2, ct[0]["StudyInstanceUID"])
        report = stow(node, mr + ct)
        assert report.counts["success"] == 2 * SLICES, report.counts
        yield node, ct, mr


def test_the_thumbnail_is_the_middle_instance_rendered(bar_study) -> None:
    from dicomtui.core.net.web_rendered import fetch_thumbnail

    node, ct, mr = bar_study
    study_uid, series_uid = ct[0]["StudyInstanceUID"], mr[0]["SeriesInstanceUID"]
    thumb = fetch_thumbnail(node, study_uid, series_uid)
    assert thumb is not None and thumb.pixels is not None, thumb
    middle = next(r for r in mr if r["InstanceNumber"] == (SLICES + 1) // 2)
    assert thumb.sop_instance_uid == middle["SOPInstanceUID"]
    assert thumb.url.endswith(f"/instances/{middle['SOPInstanceUID']}/rendered?viewport=256,256")
    assert thumb.pixels.dtype == np.uint8 and thumb.pixels.shape[:2] == (256, 256)  # scaled into the viewport
    top, bottom = bright_band(thumb.pixels, 0)  # slice 2 of 5 of the MR: its bar spans 2/5 to 3/5 of the height
    assert top == pytest.approx(2 / SLICES, abs=0.03) and bottom == pytest.approx(3 / SLICES, abs=0.03)


def test_a_study_shows_its_first_series_and_cancel_stops_before_asking(bar_study) -> None:
    from dicomtui.core.net.web_rendered import fetch_thumbnail

    node, ct, _mr = bar_study
    thumb = fetch_thumbnail(node, ct[0]["StudyInstanceUID"])  # a study row: series number 1, the CT
    assert thumb is not None and thumb.series_uid == ct[0]["SeriesInstanceUID"]
    assert thumb.pixels is not None and bright_band(thumb.pixels, 1) == pytest.approx((0.4, 0.6), abs=0.03)
    cancel = threading.Event()
    cancel.set()
    assert fetch_thumbnail(node, ct[0]["StudyInstanceUID"], cancel=cancel) is None


def test_a_server_without_rendered_images_says_so(bar_study) -> None:
    """A base URL whose WADO prefix leads nowhere stands for a server without /rendered and /thumbnail: both
    answer 404, and the thumbnail carries the reason instead of pixels."""
    from dataclasses import replace

    from dicomtui.core.net.web_rendered import fetch_thumbnail

    node, ct, _mr = bar_study
    thumb = fetch_thumbnail(replace(node, wado_prefix="no-such-wado"), ct[0]["StudyInstanceUID"],
                            ct[0]["SeriesInstanceUID"])
    assert thumb is not None and thumb.pixels is None
    assert thumb.reason == ("the server offers no rendered image of this series "
                            "(rendered: HTTP 404; thumbnail: HTTP 404)")
