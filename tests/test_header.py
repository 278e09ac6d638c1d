"""The fast header reader agrees with pydicom on every file pydicom ships, and refuses bad files with reasons."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file

from dicomtui.core import header
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False)).parent
ALL_FILES = sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def _both(path: Path):
    looks_dicom = path.read_bytes()[128:132] == b"DICM"
    results = []
    for reader in (lambda: header.read_header(str(path)), lambda: header.read_header_pydicom(str(path), looks_dicom)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = reader()
            results.append({k: v for k, v in rec.items() if v is not None and k != header.PIXEL_OFFSET})
        except header.HeaderError as exc:
            results.append(("rejected", str(exc)))
    return results


# pydicom reads these without complaint although they are cut short; the fast path notices.
TRUNCATED = {"MR_truncated.dcm", "rtplan_truncated.dcm"}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_fast_path_matches_pydicom(path: Path) -> None:
    fast, slow = _both(path)
    if path.name in TRUNCATED:
        assert fast[0] == "rejected" and "truncated" in fast[1]
        return
    assert fast == slow


def test_fast_path_is_used_for_plain_files() -> None:
    """The common case (explicit/implicit little endian with DICM) must not fall back to pydicom."""
    for name in ("CT_small.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm"):
        path = get_testdata_file(name, download=False)
        with open(path, "rb") as f:
            rec = header._fast(f.read(), os.path.getsize(path), f.fileno())
        assert rec["SOPInstanceUID"]


def test_pixel_offset_points_at_the_pixels() -> None:
    import pydicom

    path = get_testdata_file("CT_small.dcm", download=False)
    rec = header.read_header(path)
    ds = pydicom.dcmread(path)
    n = len(ds.PixelData)
    assert Path(path).read_bytes()[rec[header.PIXEL_OFFSET] : rec[header.PIXEL_OFFSET] + n] == ds.PixelData
    assert rec["Rows"] == 128 and rec["Columns"] == 128 and rec["BitsAllocated"] == 16
    assert rec["ImagePositionPatient"] == "-158.135803\\-179.035797\\-75.699997"


CHARSET_FILES = sorted(Path(p) for p in get_charset_files("chr*.dcm"))


def test_pydicom_character_set_files_are_there() -> None:
    assert len(CHARSET_FILES) >= 15  # so that the test below cannot pass by finding nothing


@pytest.mark.parametrize("path", CHARSET_FILES, ids=lambda p: p.name)
def test_character_sets_decode_like_pydicom(path: Path) -> None:
    """ISO 2022 escapes (Japanese, Korean, Chinese), GB18030, UTF-8, Latin/Cyrillic/Greek…: the same text as
    pydicom (ISO 2022 files used to be rejected: pydicom's decoder wants Python codec names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the odd escapes some of these files hold on purpose
        fast, slow = _both(path)
    assert fast == slow
    if fast.get("PatientName") is not None:
        assert fast["PatientName"] == str(pydicom.dcmread(path).PatientName)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n" * 20, "not a DICOM file"),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00\x08\x00", "truncated"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "f.dcm"
    path.write_bytes(data)
    with pytest.raises(header.HeaderError, match=reason):
        header.read_header(str(path))


def test_truncated_compressed_file(tmp_path: Path) -> None:
    data = Path(get_testdata_file("JPEG2000.dcm", download=False)).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 500])
    with pytest.raises(header.HeaderError, match="truncated"):
        header.read_header(str(path))


def test_normalise_name() -> None:
    assert header.normalise_name("Doe^John^^") == header.normalise_name("Doe^John ") == "Doe^John"


needs_c = pytest.mark.skipif(header._scan is None, reason="the C walk (dicomtui/core/_scan.c) was not compiled")


def test_c_walk_is_built_where_peers_are_required() -> None:
    """CI must test the compiled walk, not only fall back to Python silently (the build needs gcc)."""
    if os.environ.get("DICOMTUI_REQUIRE_PEERS") == "1" and os.environ.get("DICOMTUI_PURE_PYTHON") != "1":
        assert header._scan is not None, "dicomtui.core._scan was not built: is gcc installed?"


def _outcome(path: Path, use_c: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(header, "_scan", header._load_scan() if use_c else None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return header.read_header(str(path))
    except header.HeaderError as exc:
        return ("rejected", str(exc))


@needs_c
@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_c_walk_matches_python_walk(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _outcome(path, True, monkeypatch) == _outcome(path, False, monkeypatch)


@needs_c
def test_c_walk_survives_mutated_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit flips, cuts and length-field damage: never a crash, always the same verdict as the Python walk."""
    import random

    rng = random.Random(1147)
    sources = [get_testdata_file(n, download=False) for n in
               ("CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm", "rtplan.dcm", "nested_priv_SQ.dcm",
                "SC_rgb_rle.dcm", "UN_sequence.dcm")]
    target = tmp_path / "m.dcm"
    for i in range(4000):
        data = bytearray(Path(rng.choice(sources)).read_bytes())
        for _ in range(rng.randint(1, 4)):
            how = rng.random()
            at = rng.randrange(128, len(data))
            if how < 0.4:
                data[at] ^= 1 << rng.randrange(8)
            elif how < 0.7:
                data[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xfe\xff\x00\xe0",
                                                 b"SQ\x00\x00", b"UN\x00\x00", b"\x10\x00\xe0\x7f"])
            else:
                del data[at:]
                break
        target.write_bytes(bytes(data))
        assert _outcome(target, True, monkeypatch) == _outcome(target, False, monkeypatch), f"mutation {i}"


# ---- regressions a review found: each test is the reproduction, made to pass ----


def test_python_walk_rejects_absurd_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header, "_scan", None)
    good = write_series(tmp_path / "in", SeriesSpec(slices=2))[0].read_bytes()
    meta_end = 144 + int.from_bytes(good[140:144], "little")
    nest = b"".join(b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff" for _ in range(3000))
    (tmp_path / "in" / "deep.dcm").write_bytes(good[:meta_end] + nest)
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
    assert report.instances_added == 2
    assert [Path(p.path).name for p in report.rejected] == ["deep.dcm"]


# ---- issue 12: ISO 2022 IR 58 (pydicom 3.0.2 keeps its escape sequences in the text) ----


@pytest.mark.parametrize("name", [*(p.name for p in CHARSET_FILES), "ISO 2022 IR 58 (PS3.5 Annex K)"])
def test_every_walk_decodes_every_character_set_alike(name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """pydicom's character set files and PS3.5 Annex K's Chinese example: the C walk, the Python walk and the
    pydicom reader give the same record, with pydicom's PatientName, or dcmdump's where pydicom is wrong."""
    from tests.test_charsets import IR_58_NAME, write_ir_58

    if name.endswith("(PS3.5 Annex K)"):
        path, expected = write_ir_58(tmp_path), IR_58_NAME  # as `dcmdump +U8` shows it
    else:
        path = next(p for p in CHARSET_FILES if p.name == name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            patient_name = pydicom.dcmread(path).get("PatientName")
        expected = str(patient_name) if patient_name else None
    python = _outcome(path, False, monkeypatch)
    if header._scan is not None:
        assert _outcome(path, True, monkeypatch) == python
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = header.read_header_pydicom(str(path))
    def kept(record: dict) -> dict:  # the pydicom reader leaves out empty values and knows no pixel offset
        return {k: v for k, v in record.items() if v is not None and k != header.PIXEL_OFFSET}

    assert kept(python) == kept(slow)
    assert python.get("PatientName") == expected
    assert "\x1b" not in str(python.get("PatientName"))


@pytest.mark.parametrize(("name", "syntax"), [
    ("ExplVR_LitEndNoMeta.dcm", "1.2.840.10008.1.2.1"),
    ("ExplVR_BigEndNoMeta.dcm", "1.2.840.10008.1.2.2"),
])
def test_a_file_without_meta_records_the_encoding_it_has(name: str, syntax: str) -> None:
    """No file meta, so no TransferSyntaxUID: the index records the encoding the data set is in (pydicom's
    original_encoding), which `ls` shows and send offers — not implicit VR little endian for every such file
    (an implicit one stays implicit: tests/test_dicomfile.py's bare files)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not installed")
    assert header.read_header(path)["TransferSyntaxUID"] == syntax
