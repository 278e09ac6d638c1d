"""A diffusion sequence written as one series (core.export.volume_sequence): the b-value is Diffusion b-value
(0018,9087), VR FD (PS3.6), so it is written as a number, never as a DS string: the write used to fail on the
first image with pydicom's "required argument is not a float" (found through the viewer's W on a DTI mosaic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomtui.core.export.volume_sequence import volume_attributes
from dicomtui.core.export.volume_series import SeriesOptions, write_volume_series
from dicomtui.core.volume import Volume
from tests.interop.test_volume_series_peers import dcm2niix_image

BVALUES = (0.0, 1000.0, 1000.0, 2500.5)
GRADIENTS = ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])


def diffusion(key: str) -> list[Volume]:
    """Four volumes of 3 slices, labelled as the loaders label a diffusion series (sequence.py, mosaic.py)."""
    out = []
    for t, (b, g) in enumerate(zip(BVALUES, GRADIENTS, strict=True)):
        volume = Volume(np.full((3, 4, 5), 10 * t, np.int16), np.diag([0.9, 0.9, 2.5, 1.0]), name="dti")
        volume.extra = {"key": key, "value": b if key == "DiffusionBValue" else t + 1, "unit": "",
                        "bvalue": b, "gradient": np.array(g)}
        out.append(volume)
    return out


@pytest.mark.parametrize("key", ["DiffusionBValue", "AcquisitionNumber"])  # as sequence.py, as mosaic.py
def test_b_values_are_written_as_numbers(tmp_path: Path, key: str) -> None:
    report = write_volume_series(diffusion(key), SeriesOptions(), folder=tmp_path / "out")
    assert report.slices == 12 and report.volumes == 4
    heads = [pydicom.dcmread(path, stop_before_pixels=True) for path in report.files[::3]]
    assert [ds["DiffusionBValue"].VR for ds in heads] == ["FD"] * 4
    assert [ds.DiffusionBValue for ds in heads] == list(BVALUES)
    assert [list(ds.DiffusionGradientOrientation) for ds in heads] == [list(g) for g in GRADIENTS]


def test_each_key_has_the_type_of_its_vr() -> None:
    """FD keys as float; IS and DS keys as pydicom sets them (whole numbers as int, else DS text)."""
    volumes = diffusion("DiffusionBValue")
    for t, volume in enumerate(volumes):  # a key without the diffusion extras: written from the key alone
        volume.extra = {"key": "DiffusionBValue", "value": [0, 500, 1000.0, 2500.5][t]}
    values = [a["DiffusionBValue"] for a in volume_attributes(volumes)]
    assert values == [0.0, 500.0, 1000.0, 2500.5] and {type(v) for v in values} == {float}
    for t, volume in enumerate(volumes):
        volume.extra = {"key": "EchoTime", "value": 10.0 + 2.5 * t}
    assert [a["EchoTime"] for a in volume_attributes(volumes)] == [10, "12.5", 15, "17.5"]


@pytest.mark.interop
def test_dcm2niix_reads_the_b_values_and_the_4d_shape(tmp_path: Path) -> None:
    """The peer reads what we wrote as one 4D image with our b-values (its .bval), in our volume order."""
    volumes = diffusion("AcquisitionNumber")
    for t, volume in enumerate(volumes):
        volume.array = np.arange(60, dtype=np.int16).reshape(3, 4, 5) + 10 * t
    write_volume_series(volumes, SeriesOptions(modality="MR"), folder=tmp_path / "out")
    image = dcm2niix_image(tmp_path / "out", tmp_path / "nii")
    assert image.shape == (5, 4, 3, 4)
    assert [float(b) for b in (tmp_path / "nii" / "ref.bval").read_text().split()] == list(BVALUES)
    data = np.asarray(image.dataobj)
    assert [int(data[..., t].min()) for t in range(4)] == [0, 10, 20, 30]  # our volume order
