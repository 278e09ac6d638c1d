"""Tag rows for the metadata viewer and `show`: sequences, private tags, character sets, long values, filters,
broken files, and every file pydicom ships."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset

from dicomtui.core.metadata import DEFER_SIZE, MetadataError, TagRow, filter_rows, rows_as_text, tag_rows
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series

REF_SEQ, REF_UID = (0x0008, 0x1140), (0x0008, 0x1155)


def write(tmp_path: Path, edit: Callable[[Dataset], None], name: str = "f.dcm") -> Path:
    """One small generated CT image, changed by ``edit``, saved as ``name``."""
    ds = series_datasets(SeriesSpec(slices=1, rows=8, cols=8))[0]
    edit(ds)
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def by_keyword(rows: list[TagRow], keyword: str) -> TagRow:
    (row,) = [r for r in rows if r.keyword == keyword]
    return row


def with_references(ds: Dataset) -> None:
    """ReferencedImageSequence: two items; the second holds a nested sequence."""
    first, second, nested = Dataset(), Dataset(), Dataset()
    first.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    first.ReferencedSOPInstanceUID = "1.2.3.1"
    second.ReferencedSOPInstanceUID = "1.2.3.2"
    nested.CodeValue = "T-A0100"
    nested.CodeMeaning = "Brain"
    second.PurposeOfReferenceCodeSequence = [nested]
    ds.ReferencedImageSequence = [first, second]


def test_file_meta_comes_first_then_the_dataset_in_tag_order(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, lambda ds: None))
    assert rows[0].tag == "(0002,0000)" and rows[0].keyword == "FileMetaInformationGroupLength"
    groups = [int(r.tag[1:5], 16) for r in rows]
    assert groups == sorted(groups) and groups.count(2) >= 5
    syntax = by_keyword(rows, "TransferSyntaxUID")
    assert (syntax.vr, syntax.value) == ("UI", "1.2.840.10008.1.2.1 (Explicit VR Little Endian)")
    assert by_keyword(rows, "ImageType").value == "ORIGINAL\\PRIMARY\\AXIAL"  # multi-valued: joined with \
    assert by_keyword(rows, "FileMetaInformationVersion").value == "2 bytes: 00 01"
    assert all(r.depth == 0 and r.path == ((int(r.tag[1:5], 16), int(r.tag[6:10], 16)),) for r in rows)


def test_nested_sequences_become_items_and_their_elements(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, with_references))
    start = next(i for i, r in enumerate(rows) if r.keyword == "ReferencedImageSequence")
    seq = rows[start]
    assert (seq.is_sequence, seq.item_count, seq.vr, seq.value, seq.depth) == (True, 2, "SQ", "2 items", 0)
    tree = [(r.depth, r.keyword, r.value, r.path) for r in rows[start + 1:start + 11]]
    assert tree == [
        (1, "Item 1", "2 elements", (REF_SEQ, 0)),
        (2, "ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)",
         (REF_SEQ, 0, (0x0008, 0x1150))),
        (2, "ReferencedSOPInstanceUID", "1.2.3.1", (REF_SEQ, 0, REF_UID)),
        (1, "Item 2", "2 elements", (REF_SEQ, 1)),
        (2, "ReferencedSOPInstanceUID", "1.2.3.2", (REF_SEQ, 1, REF_UID)),
        (2, "PurposeOfReferenceCodeSequence", "1 item", (REF_SEQ, 1, (0x0040, 0xA170))),
        (3, "Item 1", "2 elements", (REF_SEQ, 1, (0x0040, 0xA170), 0)),
        (4, "CodeValue", "T-A0100", (REF_SEQ, 1, (0x0040, 0xA170), 0, (0x0008, 0x0100))),
        (4, "CodeMeaning", "Brain", (REF_SEQ, 1, (0x0040, 0xA170), 0, (0x0008, 0x0104))),
        (0, "PatientName", "Synthetic^Patient", ((0x0010, 0x0010),)),
    ]
    assert rows[start + 1].is_item and rows[start + 1].tag == "(FFFE,E000)" and not seq.is_item
    assert len({r.path for r in rows}) == len(rows)  # a path names one row: what a UI folds by


def test_private_tags_name_their_creator(tmp_path: Path) -> None:
    def edit(ds: Dataset) -> None:
        ds.private_block(0x0011, "DICOMTUI TEST", create=True).add_new(0x01, "LO", "secret")

    rows = tag_rows(write(tmp_path, edit))
    creator = next(r for r in rows if r.tag == "(0011,0010)")
    assert (creator.keyword, creator.value, creator.creator) == ("Private Creator", "DICOMTUI TEST", "")
    element = next(r for r in rows if r.tag == "(0011,1001)")
    assert (element.keyword, element.value, element.creator) == ("Private tag data", "secret", "DICOMTUI TEST")

    known = tag_rows(pydicom.data.get_testdata_file("CT_small.dcm", download=False))
    fidelity = next(r for r in known if r.tag == "(0009,1001)")  # in pydicom's private dictionary
    assert (fidelity.keyword, fidelity.creator, fidelity.value) == ("[Full fidelity]", "GEMS_IDEN_01",
                                                                    "GE_GENESIS_FF")


@pytest.mark.parametrize("charset, name, encoded", [
    ("ISO_IR 100", "Müller^Hans", "Müller^Hans".encode("latin-1")),
    ("ISO_IR 192", "山田^太郎", "山田^太郎".encode()),
])
def test_names_are_decoded_with_the_files_character_set(tmp_path: Path, charset: str, name: str,
                                                        encoded: bytes) -> None:
    def edit(ds: Dataset) -> None:
        ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.StudyDescription = name.replace("^", " ")

    path = write(tmp_path, edit)
    assert encoded in path.read_bytes()  # the file really holds that encoding
    rows = tag_rows(path)
    assert by_keyword(rows, "PatientName").value == name
    assert by_keyword(rows, "StudyDescription").value == name.replace("^", " ")


def test_iso_2022_names_from_pydicoms_charset_files() -> None:
    path = next(p for p in pydicom.data.get_charset_files("chrH31.dcm"))
    assert by_keyword(tag_rows(path), "PatientName").value == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_pixel_data_is_left_out_unless_asked(tmp_path: Path) -> None:
    path = write(tmp_path, lambda ds: None)
    assert not [r for r in tag_rows(path) if r.tag.startswith("(7FE0,")]
    (pixels,) = [r for r in tag_rows(path, include_pixel_data=True) if r.tag == "(7FE0,0010)"]
    assert pixels.vr == "OW" and pixels.value.startswith("128 bytes: ") and pixels.value.endswith(" …")
    assert len(pixels.value.split(": ")[1].split()) == 16 + 1  # 16 bytes in hex, then the ellipsis


def test_long_values_are_shortened_with_their_length(tmp_path: Path) -> None:
    def edit(ds: Dataset) -> None:
        ds.ImageComments = "x" * 1000
        ds.AdditionalPatientHistory = "line one\r\nline\ttwo" + "y" * (DEFER_SIZE + 10)  # deferred at read
        ds.private_block(0x0013, "DICOMTUI BLOB", create=True).add_new(0x01, "OB", bytes(range(256)) * 40)

    rows = tag_rows(write(tmp_path, edit), max_value_len=100)
    assert by_keyword(rows, "ImageComments").value == "x" * 100 + "… (1000 chars)"
    history = by_keyword(rows, "AdditionalPatientHistory").value
    assert history.startswith("line one␍␊line␉twoyyy") and history.endswith(
        f"… ({DEFER_SIZE + 28} chars)")  # control characters shown, so one value stays one line
    blob = next(r for r in rows if r.tag == "(0013,1001)")
    assert blob.value == "10240 bytes: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f …"
    assert blob.creator == "DICOMTUI BLOB"


def test_filter_by_substring_keeps_the_parents_of_nested_matches(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, with_references))
    found = filter_rows(rows, "brain")  # case-insensitive, on the value
    assert [(r.depth, r.keyword) for r in found] == [
        (0, "ReferencedImageSequence"), (1, "Item 2"), (2, "PurposeOfReferenceCodeSequence"), (3, "Item 1"),
        (4, "CodeMeaning")]
    assert [r.keyword for r in filter_rows(rows, "patientname")] == ["PatientName"]
    assert [r.keyword for r in filter_rows(rows, "(0010,0020)")] == ["PatientID"]
    assert [r.keyword for r in filter_rows(rows, "00100020")] == ["PatientID"]
    assert {r.vr for r in filter_rows(rows, "re:^PN$")} == {"PN"}
    assert filter_rows(rows, "") == rows and filter_rows(rows, "no such text anywhere") == []


def test_filter_by_regular_expression(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, with_references))
    found = filter_rows(rows, r"re:^referencedsop\w*uid$")  # case-insensitive, searched in each field
    assert [(r.depth, r.keyword) for r in found] == [
        (0, "ReferencedImageSequence"), (1, "Item 1"), (2, "ReferencedSOPClassUID"),
        (2, "ReferencedSOPInstanceUID"), (1, "Item 2"), (2, "ReferencedSOPInstanceUID")]
    with pytest.raises(ValueError, match=r"bad regular expression '\(unclosed': missing \)"):
        filter_rows(rows, "re:(unclosed")


def test_rows_as_text_is_one_indented_line_per_row(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, with_references))
    lines = rows_as_text(rows).splitlines()
    assert len(lines) == len(rows)
    assert "(0010,0010) PN PatientName: Synthetic^Patient" in lines
    assert "(0008,1140) SQ ReferencedImageSequence: 2 items" in lines
    assert "  Item 2 (2 elements)" in lines
    assert "        (0008,0104) LO CodeMeaning: Brain" in lines


def test_rows_serialise_to_json(tmp_path: Path) -> None:
    rows = tag_rows(write(tmp_path, with_references))
    data = json.loads(json.dumps([r.to_dict() for r in rows]))
    item = next(d for d in data if d["keyword"] == "CodeMeaning")
    assert item["path"] == ["(0008,1140)", 1, "(0040,A170)", 0, "(0008,0104)"]
    assert set(item) == {"depth", "tag", "keyword", "vr", "value", "path", "is_sequence", "item_count", "creator"}


def test_missing_non_dicom_and_truncated_files_raise_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"nothing\.dcm: no such file"):
        tag_rows(tmp_path / "nothing.dcm")
    with pytest.raises(MetadataError, match="is a directory"):
        tag_rows(tmp_path)
    (tmp_path / "notes.txt").write_text("hello, not an image\n" * 20)
    with pytest.raises(MetadataError, match=r"notes\.txt: not a DICOM file"):
        tag_rows(tmp_path / "notes.txt")
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(MetadataError, match=r"empty\.dcm: empty file"):
        tag_rows(tmp_path / "empty.dcm")

    (whole,) = write_series(tmp_path / "series", SeriesSpec(slices=1))
    data = whole.read_bytes()
    for cut, where in ((len(data) - 100, "Pixel Data"), (600, "data element")):
        short = tmp_path / f"cut{cut}.dcm"
        short.write_bytes(data[:cut])
        with pytest.raises(MetadataError, match=rf"cut{cut}\.dcm: truncated: .*{where}"):
            tag_rows(short)


TRUNCATED_TEST_FILES = {"rtplan_truncated.dcm", "MR_truncated.dcm"}  # pydicom reads them without a word


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's own read of its odd files
def test_every_file_pydicom_ships_and_reads_gives_rows() -> None:
    read, truncated = 0, set()
    for name in pydicom.data.get_testdata_files() + pydicom.data.get_charset_files():
        try:
            pydicom.dcmread(name)
        except Exception:  # noqa: BLE001 - files pydicom itself rejects are not ours to show
            continue
        try:
            rows = tag_rows(name)
        except MetadataError as exc:
            assert "truncated" in str(exc), exc
            truncated.add(Path(name).name)
            continue
        assert rows and all(isinstance(r.value, str) and "\n" not in r.value for r in rows), name
        with_pixels = tag_rows(name, include_pixel_data=True)
        assert len(with_pixels) >= len(rows), name
        read += 1
    assert read > 150 and truncated == TRUNCATED_TEST_FILES
    encapsulated = tag_rows(pydicom.data.get_testdata_file("examples_jpeg2k.dcm", download=False),
                            include_pixel_data=True)[-1]
    assert (encapsulated.tag, encapsulated.value) == (
        "(7FE0,0010)", "undefined length (encapsulated): fe ff 00 e0 00 00 00 00 fe ff 00 e0 00 00 01 00 …")


def test_deep_sequences_of_an_rt_plan() -> None:
    rows = tag_rows(pydicom.data.get_testdata_file("rtplan.dcm", download=False))
    beam, control, dose_ref = (0x300A, 0x00B0), (0x300A, 0x0111), (0x300C, 0x0050)
    number = next(r for r in rows if r.path == (beam, 0, control, 0, dose_ref, 1, (0x300C, 0x0051)))
    assert (number.depth, number.keyword, number.value) == (6, "ReferencedDoseReferenceNumber", "2")
    assert max(r.depth for r in rows) == 6
    assert by_keyword(rows, "BeamSequence").item_count == 1
