"""The patcher over every file pydicom ships (big endian, deflated, no meta, truncated, RT dose of 32 bits, an
implicit VR data set under an explicit transfer syntax, DICOMDIRs, text files): every file is written or skipped
with a reason, and every converted image has the pixels it had."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from dicomtui.core.patcher import patch

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def test_every_file_pydicom_ships_is_patched_or_skipped_with_its_reason(tmp_path: Path) -> None:
    if not (TEST_FILES / "MR_small_bigendian.dcm").is_file():
        pytest.skip("pydicom's test files are not installed")
    shutil.copytree(TEST_FILES, tmp_path / "src")
    report = patch(tmp_path / "src", tmp_path / "out")
    done = {f.source for f in report.files} | {s.path for s in report.skipped}
    every = {str(p.relative_to(tmp_path / "src")) for p in (tmp_path / "src").rglob("*") if p.is_file()}
    assert done == every
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["MR_truncated.dcm"] == "damaged: the file ends inside (7FE0,0010) (8130 of 8192 bytes)"
    assert reasons["rtplan_truncated.dcm"].startswith("damaged: the file ends inside (300A,00B0)")
    assert reasons["dicomdirtests/DICOMDIR"].startswith("a DICOMDIR is not copied")
    assert reasons["README.txt"].startswith("not a DICOM file")

    converted = [f for f in report.files if any(rule == "syntax" for rule, _ in f.changes)]
    names = {f.source for f in converted}
    assert {"MR_small_bigendian.dcm", "MR_small_expb.dcm", "rtdose_expb.dcm", "SC_rgb_small_odd_big_endian.dcm",
            "liver_expb_1frame.dcm", "image_dfl.dcm", "SC_rgb_jpeg.dcm"} <= names
    for f in converted:
        before, after = read(tmp_path / "src" / f.source), read(tmp_path / "out" / f.outputs[0])
        if f.source != "SC_rgb_jpeg.dcm":  # compressed: stays JPEG, only its data set re-encoded
            assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, f.source
        if "PixelData" in before:  # 32-bit RT Dose words included: swapped by BitsAllocated, not by 2
            np.testing.assert_array_equal(after.pixel_array, before.pixel_array, err_msg=f.source)
    (jpeg,) = [f for f in converted if f.source == "SC_rgb_jpeg.dcm"]
    assert ("syntax", "the data set is not in the explicit VR its transfer syntax 1.2.840.10008.1.2.4.50 says: "
                      "re-encoded in it") in jpeg.changes
    split = [f for f in report.files if any(rule == "split" for rule, _ in f.changes)]
    assert {f.source for f in split} == {"SC_rgb_rle_2frame.dcm", "SC_rgb_rle_16bit_2frame.dcm",
                                         "SC_rgb_rle_32bit_2frame.dcm"}
    for f in split:  # RLE frames cut from the encapsulated data: each output decodes to its frame
        frames = read(tmp_path / "src" / f.source).pixel_array
        for index, name in enumerate(f.outputs):
            np.testing.assert_array_equal(read(tmp_path / "out" / name).pixel_array, frames[index])
