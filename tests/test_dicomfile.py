"""Files without preamble, "DICM" or file meta (issue 12, case 1) and the library's warnings (case 6): given
such files, when imported, then they load, show and send as the files with a header do, copy mode stores them as
PS3.10 files, and pydicom's warnings are reported per file instead of printed."""

from __future__ import annotations

import subprocess
import threading
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from dicomtui.core import dicomfile
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.metadata import tag_rows
from dicomtui.core.net import wire
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.scp import StoreSCP
from dicomtui.core.net.scu import read_for_sending
from dicomtui.core.net.send import send
from dicomtui.core.pixels import read_slice, read_stack
from dicomtui.core.synth import SeriesSpec, write_series
from tests.interop.test_dimse import storescp  # noqa: F401 - fixture
from tests.test_net_loopback import Recorder, _temp_files, _wait

IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
MISMATCH_WARNING = "Expected explicit VR, but found implicit VR - using implicit VR for reading"


def bare(source: Path, dest: Path, explicit: bool) -> Path:
    """``source``'s data set alone: no preamble, no "DICM", no file meta (as old scanners write it)."""
    ds = Dataset(pydicom.dcmread(source))
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest, enforce_file_format=False, implicit_vr=not explicit, little_endian=True)
    assert dest.read_bytes()[:2] == b"\x08\x00" and dest.read_bytes()[128:132] != b"DICM"
    return dest


def mismatched(source: Path, dest: Path) -> Path:
    """A file whose meta says explicit VR little endian while its data set is implicit VR: pydicom warns."""
    ds = pydicom.dcmread(source)
    data = BytesIO()
    Dataset(ds).save_as(data, enforce_file_format=False, implicit_vr=True, little_endian=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(dicomfile.file_meta(ds.SOPClassUID, ds.SOPInstanceUID, EXPLICIT) + data.getvalue())
    return dest


@pytest.fixture
def originals(tmp_path: Path) -> list[Path]:
    return write_series(tmp_path / "orig", SeriesSpec(slices=2, rows=16, cols=12))


@pytest.fixture
def bare_files(tmp_path: Path, originals: list[Path]) -> list[Path]:
    return [bare(originals[0], tmp_path / "bare" / "IMPL", explicit=False),
            bare(originals[1], tmp_path / "bare" / "EXPL", explicit=True)]


# ---- the layout --------------------------------------------------------------------------------------------

def test_the_layout_of_a_part10_file_and_of_bare_data_sets(originals: list[Path], bare_files: list[Path]) -> None:
    head = originals[0].read_bytes()
    layout = dicomfile.layout_of(head[: dicomfile.HEAD_SIZE])
    assert layout is not None and layout.has_meta
    assert layout.transfer_syntax == pydicom.dcmread(originals[0]).file_meta.TransferSyntaxUID
    assert head[layout.dataset_offset: layout.dataset_offset + 2] == b"\x08\x00"
    assert dicomfile.read_layout(bare_files[0]) == dicomfile.Layout(0, IMPLICIT, False)
    assert dicomfile.read_layout(bare_files[1]) == dicomfile.Layout(0, EXPLICIT, False)
    # a file meta group written without preamble and "DICM": the data set starts after it
    with_group2 = head[132:]
    found = dicomfile.layout_of(with_group2)
    assert found == dicomfile.Layout(layout.dataset_offset - 132, layout.transfer_syntax, False)


def test_the_file_meta_we_write_reads_back_in_pydicom() -> None:
    data = dicomfile.file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", IMPLICIT)
    meta = pydicom.dcmread(BytesIO(data + b"\x08\x00\x18\x00\x08\x00\x00\x001.2.3.4\x00")).file_meta
    assert (meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID,
            meta.ImplementationClassUID) == ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", IMPLICIT,
                                            wire.IMPLEMENTATION_UID)
    assert wire.file_meta is dicomfile.file_meta  # one writer of file meta, for the SCP and the copies


# ---- opening -------------------------------------------------------------------------------------------------

def test_a_bare_data_set_opens_only_when_the_header_walk_accepted_it(bare_files: list[Path]) -> None:
    for path, syntax in zip(bare_files, (IMPLICIT, EXPLICIT), strict=True):
        opened = dicomfile.read_dataset(path, pixels=True)
        assert (opened.has_meta, opened.transfer_syntax) == (False, syntax)
        assert opened.dataset.pixel_array.shape == (16, 12)
        with pytest.raises(InvalidDicomError):
            dicomfile.read_dataset(path, accepted=False)


def test_pixels_of_bare_files_equal_those_of_the_originals(originals: list[Path], bare_files: list[Path]) -> None:
    for original, path in zip(originals, bare_files, strict=True):
        inst = {"Rows": 16, "Columns": 12, "BitsAllocated": 16, "PixelRepresentation": 1,
                "TransferSyntaxUID": IMPLICIT, "pixel_offset": None}
        np.testing.assert_array_equal(read_slice(path, inst), pydicom.dcmread(original).pixel_array)


def test_show_rows_of_a_bare_file_have_no_file_meta(bare_files: list[Path], originals: list[Path]) -> None:
    rows = tag_rows(bare_files[1])
    assert not [r for r in rows if r.tag.startswith("(0002,")]  # none made up
    assert dicomfile.read_dataset(bare_files[1]).meta_added
    assert [r.keyword for r in rows] == [r.keyword for r in tag_rows(originals[1]) if not r.tag.startswith("(0002,")]


def test_a_file_meta_group_without_preamble_is_read_and_shown(tmp_path: Path, originals: list[Path]) -> None:
    path = tmp_path / "NOPREAMBLE"
    path.write_bytes(originals[0].read_bytes()[132:])  # group 0002 first, no preamble, no "DICM"
    opened = dicomfile.read_dataset(path, pixels=True)
    assert (opened.has_meta, opened.meta_added) == (False, False)
    np.testing.assert_array_equal(opened.dataset.pixel_array, pydicom.dcmread(originals[0]).pixel_array)
    assert [r.keyword for r in tag_rows(path)] == [r.keyword for r in tag_rows(originals[0])]


# ---- the library's warnings ------------------------------------------------------------------------------------

def test_captured_warnings_are_per_thread_and_every_time() -> None:
    def warn() -> None:
        warnings.warn("odd value", UserWarning, stacklevel=1)

    seen: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        for _ in range(2):  # the default filter would show the second one never
            with dicomfile.captured_warnings() as caught:
                warn()
            seen.setdefault(name, []).extend(caught)

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        warn()  # not captured: goes where it went before
    assert seen == {"a": ["odd value"] * 2, "b": ["odd value"] * 2}
    assert [str(w.message) for w in outside] == ["odd value"]
    assert dicomfile._state["open"] == 0 and dicomfile._ALWAYS not in warnings.filters


def test_a_load_reports_pydicom_warnings_per_file(tmp_path: Path, originals: list[Path]) -> None:
    path = mismatched(originals[0], tmp_path / "odd" / "IM1")
    inst = {"Rows": 16, "Columns": 12, "BitsAllocated": 16, "PixelRepresentation": 1,
            "TransferSyntaxUID": EXPLICIT, "pixel_offset": None}
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped would fail the read
        stack = read_stack([path], [inst], notes=notes)
    np.testing.assert_array_equal(stack[0], pydicom.dcmread(originals[0]).pixel_array)
    assert notes == [f"{path}: {MISMATCH_WARNING}"]


# ---- send ------------------------------------------------------------------------------------------------------

def test_bare_files_are_sent_as_their_data_set_and_arrive_as_part10_files(tmp_path: Path, db: DicomDatabase,
                                                                         bare_files: list[Path]) -> None:
    assert read_for_sending(bare_files[0]) is None  # not known to be DICOM: not sent as it is
    data, offset, syntax = read_for_sending(bare_files[1], accepted=True)
    assert (offset, syntax) == (0, EXPLICIT) and data == bare_files[1].read_bytes()

    report = import_paths(db, [tmp_path / "bare"])
    assert report.instances_added == 2 and not report.rejected
    rows = db.instances()
    handler = Recorder()
    server = StoreSCP("LOOP", "127.0.0.1", 0, handler, _temp_files(tmp_path / "incoming"))
    server.start()
    try:
        result = send(rows, RemoteNode("loop", "LOOP", "127.0.0.1", server.port), LocalNode(ae_title="SENDER"))
        assert _wait(lambda: handler.ended_how == ["released"])
    finally:
        server.stop()
    assert result.counts == {"success": 2, "warning": 0, "failure": 0}, result.summary()
    for path in bare_files:
        sent = dicomfile.read_dataset(path, pixels=True).dataset
        got = handler.received[sent.SOPInstanceUID]
        layout = dicomfile.layout_of(got[: dicomfile.HEAD_SIZE])
        assert layout is not None and layout.has_meta
        assert layout.transfer_syntax == dicomfile.read_layout(path).transfer_syntax
        assert got[layout.dataset_offset:] == path.read_bytes()  # the data set, byte for byte
        received = pydicom.dcmread(BytesIO(got))
        assert received.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
        np.testing.assert_array_equal(received.pixel_array, sent.pixel_array)


@pytest.mark.interop
def test_bare_files_sent_to_dcmtk_storescp_arrive_as_valid_part10_files(tmp_path: Path, db: DicomDatabase,
                                                                       bare_files: list[Path], storescp) -> None:  # noqa: F811
    node, received = storescp
    import_paths(db, [tmp_path / "bare"])
    result = send(db.instances(), node)
    assert result.counts == {"success": 2, "warning": 0, "failure": 0}, result.summary()
    got = {pydicom.dcmread(p).SOPInstanceUID: p for p in received.iterdir()}  # no force: PS3.10 files
    for path in bare_files:
        sent = dicomfile.read_dataset(path, pixels=True)
        theirs = pydicom.dcmread(got[sent.dataset.SOPInstanceUID])
        assert theirs.file_meta.TransferSyntaxUID == sent.transfer_syntax
        assert Dataset(theirs) == Dataset(sent.dataset)
    dcmdump = subprocess.run(["dcmdump", "-M", *map(str, got.values())], capture_output=True, text=True, timeout=60)
    assert dcmdump.returncode == 0 and "(0002,0010)" in dcmdump.stdout, dcmdump.stderr
