"""Huge, corrupt and special files given to the import (issue 13, items 7, 13 and 14): each is refused or warned
about with a sentence that names what is wrong, fast, without reading what it does not need."""

from __future__ import annotations

import os
import struct
import time
import warnings
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicomtui.core import header
from dicomtui.core.database import DicomDatabase
from dicomtui.core.database.records import read_checked
from dicomtui.core.errors import HeaderError
from dicomtui.core.indexer import import_paths
from dicomtui.core.scan import Problem, scan
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series
from tests.test_scan import make_media

MB = 1 << 20


@pytest.fixture
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Run the test with the C walk (skipped when not built) or the Python walk."""
    use_c = request.param
    if use_c and header._load_scan() is None:
        pytest.skip("the C walk (dicomtui/core/_scan.c) was not compiled")
    monkeypatch.setattr(header, "_scan", header._load_scan() if use_c else None)


def sparse(path: Path, head: bytes, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


# ---- item 7: huge non-DICOM files are refused from their first bytes ----

@pytest.mark.parametrize("head", [b"", os.urandom(4096), b"NIfTI header" * 30], ids=["zeros", "random", "text"])
def test_a_huge_non_dicom_file_is_rejected_fast(tmp_path: Path, head: bytes) -> None:
    """`truncate -s 100M x.nii; dicomtui import x.nii` took 29 s (pydicom, forced, read 12.5 million empty
    (0000,0000) elements); a 1 GB random file took 1.1 GB of memory."""
    path = sparse(tmp_path / "x.nii", head, 200 * MB)
    start = time.perf_counter()
    with pytest.raises(HeaderError, match="^not a DICOM file"):
        read_checked(str(path))
    assert time.perf_counter() - start < 2


def test_a_huge_non_dicom_file_is_one_rejection_of_the_import(tmp_path: Path) -> None:
    path = sparse(tmp_path / "x.nii", b"", 200 * MB)
    start = time.perf_counter()
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [path])
    assert time.perf_counter() - start < 5
    assert [(p.path, p.reason.split(" (")[0]) for p in report.rejected] == [(str(path), "not a DICOM file")]


def test_zeros_after_dicm_are_rejected_fast(tmp_path: Path) -> None:
    """A preamble, DICM, then zeros (a file zeroed by a crash): pydicom read it as (0000,0000) elements, 30 s for
    100 MB."""
    path = sparse(tmp_path / "z.dcm", b"\0" * 128 + b"DICM", 200 * MB)
    start = time.perf_counter()
    with pytest.raises(HeaderError, match=r"command element \(0000,xxxx\)"):
        read_checked(str(path))
    assert time.perf_counter() - start < 2


def _with_huge_private_value(tmp_path: Path, length: int) -> Path:
    """A synthetic CT slice with a private (7FDF,1000) OB value of ``length`` (sparse) before its Pixel Data."""
    data = write_series(tmp_path / "src", SeriesSpec(slices=1))[0].read_bytes()
    at = data.index(b"\xe0\x7f\x10\x00OW")
    path = tmp_path / "huge.dcm"
    with open(path, "wb") as f:
        f.write(data[:at] + b"\xdf\x7f\x10\x00LO\x04\x00BIG \xdf\x7f\x00\x10OB\x00\x00" + struct.pack("<I", length))
        f.seek(length, os.SEEK_CUR)
        f.write(data[at:])
    return path


@pytest.mark.parametrize("walk", [True, False], indirect=True, ids=["C", "Python"])
def test_a_huge_value_before_pixel_data_is_never_read(tmp_path: Path, walk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk used to read the file from its start in ever larger buffers (up to 64 MiB) to get past a value it
    skips; now each read starts after what it skips and none is over 16 KiB here."""
    path = _with_huge_private_value(tmp_path, 300 * MB)
    reads: list[int] = []
    real_pread, real_read = os.pread, os.read
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(n) or real_pread(fd, n, at))
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    record, warning = read_checked(str(path))
    assert record["has_pixels"] and record["Rows"] == 64 and warning == ""
    assert record["pixel_offset"] == os.path.getsize(path) - 64 * 64 * 2
    assert max(reads) <= header.FIRST_READ and len(reads) <= 3


def test_the_pydicom_reader_never_reads_pixel_data(tmp_path: Path) -> None:
    """A big-endian file (read by pydicom, not the walk) whose Pixel Data is 500 MB: its length is checked against
    the file, its bytes are not read (pydicom used to load them all)."""
    import tracemalloc

    data = Path(get_testdata_file("MR_small_bigendian.dcm", download=False)).read_bytes()
    at = data.index(b"\x7f\xe0\x00\x10OW")
    length = 500 * MB
    path = sparse(tmp_path / "big.dcm", data[:at] + b"\x7f\xe0\x00\x10OW\x00\x00" + struct.pack(">I", length),
                  at + 12 + length)
    tracemalloc.start()
    try:
        record = header.read_header(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record["has_pixels"] and record["TransferSyntaxUID"] == "1.2.840.10008.1.2.2"
    assert peak < 20 * MB


def test_the_pydicom_reader_still_notices_pixel_data_cut_short(tmp_path: Path) -> None:
    data = Path(get_testdata_file("MR_small_bigendian.dcm", download=False)).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:-100])
    with pytest.raises(HeaderError, match="^truncated: Pixel Data needs 8192 bytes at offset"):
        header.read_header(str(path))


# ---- item 13: corrupt headers are named; invalid UIDs refused or flagged ----

@pytest.mark.parametrize("walk", [True, False], indirect=True, ids=["C", "Python"])
def test_a_wrong_length_is_named_and_the_lost_pixel_data_said(tmp_path: Path, walk) -> None:
    """ImagePositionPatient's length changed (16 -> 13): the file imported as a CT without Pixel Data, silently."""
    path = write_series(tmp_path, SeriesSpec(slices=1))[0]
    data = bytearray(path.read_bytes())
    at = data.index(b"\x20\x00\x32\x00DS")
    assert data[at + 6] == 16
    data[at + 6] = 13
    path.write_bytes(bytes(data))
    record, warning = read_checked(str(path))
    assert not record["has_pixels"]
    assert warning.startswith("after the element (0020,0032) ")
    assert "the elements from it on were not read; Pixel Data not found" in warning


def test_a_damaged_element_is_a_warning_of_the_import(tmp_path: Path) -> None:
    path = write_series(tmp_path / "in", SeriesSpec(slices=1))[0]
    data = bytearray(path.read_bytes())
    data[data.index(b"\x20\x00\x32\x00DS") + 6] = 13
    path.write_bytes(bytes(data))
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
    assert report.instances_added == 1
    assert [("(0020,0032)" in w.reason and "Pixel Data not found" in w.reason) for w in report.warnings] == [True]


def _with_uid(tmp_path: Path, keyword: str, value: str) -> Path:
    ds = series_datasets(SeriesSpec(slices=1))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid UIDs written on purpose
        setattr(ds, keyword, value)
        path = tmp_path / "u.dcm"
        ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
@pytest.mark.parametrize(("value", "why"), [
    ("1.2.3\x004", "characters other than digits and dots"),
    ("1.2.\x1b[31m3", "characters other than digits and dots"),
    ("1.2.3.abc", "characters other than digits and dots"),
    ("1.2.3 4", "characters other than digits and dots"),
])
def test_a_key_uid_with_characters_no_uid_holds_is_rejected(tmp_path: Path, keyword: str, value: str,
                                                            why: str) -> None:
    path = _with_uid(tmp_path, keyword, value)
    with pytest.raises(HeaderError) as caught:
        read_checked(str(path))
    assert str(caught.value) == f"not importable: the {keyword} {value!r} is not a valid UID (PS3.5 9.1: {why})"


def test_trailing_nul_padding_of_a_uid_is_allowed(tmp_path: Path) -> None:
    path = _with_uid(tmp_path, "SOPInstanceUID", "1.2.3.45\x00")
    data = path.read_bytes()
    assert b"1.2.3.45\x00" in data
    record, warning = read_checked(str(path))
    assert record["SOPInstanceUID"] == "1.2.3.45" and warning == ""


@pytest.mark.parametrize(("keyword", "value", "why"), [
    ("SOPInstanceUID", "1.2.840.0113654.2.70.1", "a component with a leading zero"),
    ("StudyInstanceUID", "1.2..3", "an empty component"),
    ("SeriesInstanceUID", "1." + "2" * 70, "72 characters, more than 64"),
    ("FrameOfReferenceUID", "1.2.3\x00x", "characters other than digits and dots"),
    ("SOPClassUID", "CT Image Storage", "characters other than digits and dots"),
])
def test_other_invalid_uids_are_warnings(tmp_path: Path, keyword: str, value: str, why: str) -> None:
    """Old scanners wrote UIDs with leading zeros and over 64 characters (DCMTK, Orthanc and pydicom store them):
    flagged, imported. A UID other than the three keys is flagged whatever is wrong with it."""
    record, warning = read_checked(str(_with_uid(tmp_path, keyword, value)))
    assert record[keyword] == value.strip("\x00")
    assert warning == f"the {keyword} {value!r} is not a valid UID (PS3.5 9.1: {why})"


# ---- item 14: special files are named for what they are ----

@pytest.fixture
def specials(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_series(folder, SeriesSpec(slices=1))
    os.mkfifo(tmp_path / "fifo")
    (folder / "to_zero").symlink_to("/dev/zero")
    (folder / "to_fifo").symlink_to(tmp_path / "fifo")
    (folder / "to_nothing").symlink_to(tmp_path / "nothing")
    os.mkfifo(folder / "pipe")
    return folder


def test_special_files_in_a_folder_are_named(specials: Path) -> None:
    """Symlinks to /dev/zero or to a FIFO were "broken symbolic link"."""
    problems: list[Problem] = []
    found = scan([specials], problems)
    assert len(found) == 1
    assert sorted((Path(p.path).name, p.reason) for p in problems) == [
        ("pipe", "not a regular file (FIFO)"),
        ("to_fifo", "not a regular file (FIFO)"),
        ("to_nothing", "broken symbolic link"),
        ("to_zero", "not a regular file (character device)"),
    ]


def test_a_special_file_given_by_name_is_named(specials: Path) -> None:
    problems: list[Problem] = []
    assert scan([specials / "to_zero", specials / "pipe"], problems) == []
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        ("to_zero", "not a regular file (character device)"), ("pipe", "not a regular file (FIFO)")]


def test_dicomdir_entries_that_are_special_files_are_named(tmp_path: Path) -> None:
    """A DICOMDIR entry that is a FIFO or a device was "referenced by DICOMDIR but missing"."""
    media, images = make_media(tmp_path)
    images[0].unlink()
    os.mkfifo(images[0])
    images[1].unlink()
    images[1].symlink_to("/dev/zero")
    images[2].unlink()
    images[2].symlink_to(tmp_path / "nothing")
    problems: list[Problem] = []
    assert scan([media], problems) == []
    assert [(p.path, p.reason) for p in problems] == [
        (str(images[0]), "referenced by DICOMDIR but not a regular file (FIFO)"),
        (str(images[1]), "referenced by DICOMDIR but not a regular file (character device)"),
        (str(images[2]), "referenced by DICOMDIR but a broken symbolic link"),
    ]


def test_a_fifo_put_in_place_of_a_file_does_not_block_the_reader(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "late.dcm")
    for read in (lambda path: header.read_header(path, size=1000), header.read_header_pydicom):
        with pytest.raises(HeaderError, match=r"^not a regular file \(FIFO\)"):
            read(str(tmp_path / "late.dcm"))
