"""The edit's hand walk of a file's head (core/export/head_walk.py) against pydicom's ``read_partial``: the same
raw elements (VR, length, bytes, value_tell), the same stop offset, file meta and original encoding, the same
decoded values — for our generated files (explicit and implicit VR) and pydicom's own test files (deflate, big
endian, bare data sets, undefined-length sequences: the walk declines them and pydicom reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.filereader import read_partial

from dicomtui.core.export.head_walk import head_of_dataset, walk_head
from dicomtui.core.export.rewrite import read_head
from dicomtui.core.synth import SeriesSpec, write_series

LAST_TAGS = (0x00080005, 0x00100010, 0x0020000E, 0x0028FFFF)


def _pydicom_files() -> list[Path]:
    import pydicom.data

    shipped = Path(pydicom.data.__file__).parent / "test_files"  # the files in the wheel: nothing downloaded
    return sorted(p for p in shipped.glob("*.dcm") if p.stat().st_size < 1 << 20)  # < 1 MiB: quick


def _files(tmp_path: Path) -> list[Path]:
    ours = [write_series(tmp_path / f"s{implicit}", SeriesSpec(slices=1, implicit=implicit))[0]
            for implicit in (False, True)]
    return ours + _pydicom_files()


def _same(path: Path, last_tag: int) -> bool:
    """Asserts parity when the walk reads ``path``; whether it did."""
    walked = walk_head(path, last_tag)
    if walked is None:
        return False
    ds, stop = walked.ds, walked.stop
    with open(path, "rb") as fp:
        ref = read_partial(fp, stop_when=lambda tag, vr, length: tag > last_tag, force=True)
        ref_stop = fp.tell()
    assert stop == ref_stop, path
    theirs_head = head_of_dataset(ref, ref_stop)  # what the edit uses: the same from either reader
    assert walked.spans.keys() == theirs_head.spans.keys() and walked.syntax == theirs_head.syntax, path
    # where pydicom kept the element raw, the same span (it converts SpecificCharacterSet at once: no span there)
    assert all(walked.spans[t] == span for t, span in theirs_head.spans.items() if span is not None), path
    assert (walked.implicit, walked.little) == (theirs_head.implicit, theirs_head.little), path
    assert (walked.charsets, walked.character_set) == (theirs_head.charsets, theirs_head.character_set), path
    assert walked.raw.keys() == theirs_head.raw.keys(), path
    for tag, (vr, value, tell) in theirs_head.raw.items():
        if value is not None:  # pydicom left it raw: the same VR, bytes and offset
            assert walked.raw[tag] == (vr, value, tell), (path, hex(tag))
    assert list(ds.keys()) == list(ref.keys()), path
    assert ds.original_encoding == ref.original_encoding, path
    assert ds.original_character_set == ref.original_character_set, path
    assert ds.file_meta.TransferSyntaxUID == ref.file_meta.TransferSyntaxUID, path
    for tag in ref.keys():  # noqa: SIM118 - a Dataset iterates over elements
        mine, theirs = ds.get_item(tag), ref.get_item(tag)
        if getattr(theirs, "value_tell", None) is not None:  # raw in both: the same bytes at the same place
            assert (mine.length, mine.value, mine.value_tell) == (theirs.length, theirs.value, theirs.value_tell)
        assert ds[tag].VR == ref[tag].VR and ds[tag].value == ref[tag].value, (path, tag)
    return True


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # pydicom's own odd test files, decoded by both readers
def test_the_hand_walk_reads_what_pydicom_reads(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert len(files) > 20, "pydicom's test files are missing"
    walked = [path for path in files for last in LAST_TAGS if _same(path, last)]
    assert {files[0], files[1]} <= set(walked)  # ours: explicit and implicit VR
    assert len(set(walked)) > len(files) // 2  # the plain case is most files; the others went to pydicom


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_small_bigendian.dcm"])
def test_the_walk_declines_what_it_does_not_read_and_read_head_still_reads_it(name: str) -> None:
    path = next(p for p in _pydicom_files() if p.name == name)
    assert walk_head(path, 0x0020000E) is None
    assert len(read_head(path, 0x0020000E).spans) > 5


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.filterwarnings("ignore:The value length")
def test_the_raw_text_shortcut_shows_what_pydicom_converts(tmp_path: Path) -> None:
    """head_text decodes raw ASCII text values itself: for every top-level element of every file read by either
    reader, the text equals pydicom's converted value shown by as_text (multi-values, padding, AE's spaces)."""
    from dicomtui.core.export.rewrite import head_text
    from dicomtui.core.export.tagpath import as_text

    shortcut = 0
    for path in _files(tmp_path):
        head = read_head(path, 0x0028FFFF)
        with open(path, "rb") as fp:
            ref = read_partial(fp, stop_when=lambda tag, vr, length: tag > 0x0028FFFF, force=True)
        for tag in ref.keys():  # noqa: SIM118 - a Dataset iterates over elements
            raw = head.ds.get_item(tag)
            shortcut += bool(getattr(raw, "is_raw", False) and isinstance(raw.value, bytes) and raw.value.isascii())
            try:
                expected = as_text(ref[tag].value)
            except Exception:  # noqa: BLE001 - a value pydicom cannot convert is not shown by the plan either
                continue
            assert head_text(head, tag) == expected, (path.name, hex(tag))
    assert head_text(head, 0x7FE00010) is None and shortcut > 500
