"""Text in ISO 2022 IR 58 (Chinese, GB 2312) reads as dcmdump shows it: in the header walk, the database, `ls`,
`ls --json`, `show` and `show --json` (pydicom 3.0.2 keeps the escape sequences ``ESC $ ) A`` in the text)."""

from __future__ import annotations

import json
import re
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.dataelem import DataElement

from dicomtui.core import charsets, header
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program

from .test_cli import run

# PS3.5 Annex K, Example 1: "Zhang^XiaoDong=张^小东" with Specific Character Set "\ISO 2022 IR 58"; each GB 2312
# component group starts with ESC $ ) A (GB 2312 designated to G1).
IR_58_PN = b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab"
IR_58_NAME = "Zhang^XiaoDong=张^小东"  # as `dcmdump +U8` (DCMTK 3.6.7) shows it
IR_58_LO = b"CT \x1b$)A\xd0\xa1\xb6\xab\\\x1b$)A\xd5\xc5 "  # two values, each with its escape, padded
IR_58_DESCRIPTION = "CT 小东\\张"


def write_ir_58(folder: Path, patient_id: str = "IR58") -> Path:
    """One generated image whose PatientName and StudyDescription are PS3.5 Annex K's ISO 2022 IR 58 text."""
    (path,) = write_series(folder, SeriesSpec(slices=1, rows=8, cols=8, patient_id=patient_id))
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 58"]
    ds[0x00100010] = DataElement(0x00100010, "PN", IR_58_PN)  # bytes: written as they are
    ds[0x00081030] = DataElement(0x00081030, "LO", IR_58_LO)
    ds.save_as(path)
    return path


def test_pydicom_3_0_2_keeps_the_escapes() -> None:
    """The reason for the work-around; when this fails, pydicom decodes ESC $ ) A itself: drop charsets' fix."""
    encodings = charsets.python_encodings(["", "ISO 2022 IR 58"])
    from pydicom.charset import decode_bytes

    assert "\x1b$)A" in decode_bytes(IR_58_PN, encodings, set(charsets.PN_DELIMITERS))


def test_decode_iso_2022_ir_58() -> None:
    encodings = charsets.python_encodings(["", "ISO 2022 IR 58"])
    assert charsets.decode(IR_58_PN, encodings, charsets.PN_DELIMITERS) == IR_58_NAME
    assert charsets.text_values(IR_58_PN + b"= ", "PN", encodings) == [IR_58_NAME]
    assert charsets.text_values(IR_58_LO, "LO", encodings) == ["CT 小东", "张"]
    assert charsets.text_values(IR_58_LO, "US", encodings) is None


def test_a_delimiter_resets_to_the_first_character_set() -> None:
    """PS3.5 6.1.2.5.3: after "^" the bytes are in the first character set again (here Latin-1), not GB 2312."""
    encodings = charsets.python_encodings(["ISO 2022 IR 100", "ISO 2022 IR 58"])
    assert charsets.decode(b"\x1b$)A\xd5\xc5^M\xfcller", encodings, charsets.PN_DELIMITERS) == "张^Müller"


def test_bytes_that_are_not_gb_2312_fall_back_to_pydicom() -> None:
    """No exception: pydicom's own reading of the fragment (it warns and decodes with the first character set)."""
    from pydicom.charset import decode_bytes

    encodings = charsets.python_encodings(["", "ISO 2022 IR 58"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = charsets.decode(b"\x1b$)A\xff\xff", encodings, charsets.PN_DELIMITERS)
        assert text == decode_bytes(b"\x1b$)A\xff\xff", encodings, set(charsets.PN_DELIMITERS))


@pytest.mark.parametrize("walk", ["c", "python", "pydicom"])
def test_every_header_walk_decodes_ir_58(tmp_path: Path, walk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(write_ir_58(tmp_path))
    if walk == "pydicom":
        record = header.read_header_pydicom(path)
    else:
        if walk == "c" and header._scan is None:
            pytest.skip("the C walk (dicomtui/core/_scan.c) was not compiled")
        monkeypatch.setattr(header, "_scan", header._load_scan() if walk == "c" else None)
        record = header.read_header(path)
    assert record["PatientName"] == IR_58_NAME
    assert record["StudyDescription"] == IR_58_DESCRIPTION


def test_the_database_holds_the_decoded_name(tmp_path: Path) -> None:
    """The TUI's browser shows the database's rows: the name is right there."""
    write_ir_58(tmp_path / "in")
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        assert [p["PatientName"] for p in db.patients()] == [IR_58_NAME]
        assert [s["StudyDescription"] for s in db.studies()] == [IR_58_DESCRIPTION]


def test_ls_and_show_print_the_chinese_name(tmp_path: Path) -> None:
    write_ir_58(tmp_path / "in")
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0

    out = run("--db", db, "ls", "patients")
    assert out.returncode == 0, out.stderr
    assert IR_58_NAME in out.stdout and "\x1b" not in out.stdout
    assert [p["PatientName"] for p in json.loads(run("--db", db, "ls", "patients", "--json").stdout)] == [
        IR_58_NAME]

    out = run("--db", db, "show", "IR58")
    assert "0\t(0010,0010)\tPatientName\tPN\t" + IR_58_NAME + "\t" in out.stdout.splitlines()
    assert "0\t(0008,1030)\tStudyDescription\tLO\t" + IR_58_DESCRIPTION + "\t" in out.stdout.splitlines()
    rows = {row["keyword"]: row["value"] for row in json.loads(run("--db", db, "show", "IR58", "--json").stdout)}
    assert rows["PatientName"] == IR_58_NAME and rows["StudyDescription"] == IR_58_DESCRIPTION


def _dcmdump_name(path: Path) -> str | None:
    """PatientName as `dcmdump +U8` shows it; None when its iconv cannot convert the character set."""
    out = subprocess.run(["dcmdump", "+U8", "+L", "+P", "0010,0010", str(path)], capture_output=True)
    if b"not supported" in out.stderr:
        return None  # e.g. ISO 2022 IR 87 with glibc's iconv: DCMTK says so and leaves the bytes
    match = re.search(rb"^\(0010,0010\) PN \[(.*)\]", out.stdout, re.M)
    return match.group(1).decode("utf-8").rstrip("=") if match else ""


CHARSET_FILES = sorted(Path(p) for p in get_charset_files("chr*.dcm"))


@pytest.mark.interop
def test_patient_names_read_as_dcmdump_shows_them(tmp_path: Path) -> None:
    """pydicom's character set files and PS3.5 Annex K's ISO 2022 IR 58 example, against DCMTK: the same
    PatientName (DCMTK keeps empty trailing component groups ("=") that we and pydicom drop)."""
    require_program("dcmdump", "dcmtk")
    compared = 0
    for path in [*CHARSET_FILES, write_ir_58(tmp_path)]:
        expected = _dcmdump_name(path)
        if expected is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = header.read_header(str(path)).get("PatientName") or ""
        assert ours == expected, path.name
        compared += 1
    assert compared >= 12  # all but the Japanese ISO 2022 IR 87 files, which this DCMTK cannot convert
