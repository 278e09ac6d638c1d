"""Our own SCP (dicomtui.core.net.scp, behind the Listener) and SCU (scu, behind send.send) against DCMTK and
each other: many files, compressed transfer syntaxes, rejections with DCMTK's own words, aborts mid-instance,
protocol errors, timeouts, and the send's reconnect. Every server is on 127.0.0.1 and stopped by its test."""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net import scp, wire
from dicomtui.core.net.associate import store_association
from dicomtui.core.net.echo import echo
from dicomtui.core.net.listener import Listener, store_written
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.send import send
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program
from tests.interop import test_dimse
from tests.interop.test_dimse import DCMTK_ENV

pytestmark = pytest.mark.interop
listener = test_dimse.listener  # the fixture, shared
# test file → the storescu option that proposes its transfer syntax (storescu proposes uncompressed ones otherwise)
COMPRESSED = {"JPEG2000.dcm": "-xw", "SC_rgb_rle.dcm": "-xr", "SC_rgb_jpeg_dcmtk.dcm": "-xy",
              "MR_small_jpeg_ls_lossless.dcm": "-xt", "image_dfl.dcm": "-xd"}


def _wait(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def _storescu(port: int, folder: Path, *args: str, aet: str = "STORESCU") -> subprocess.CompletedProcess:
    return subprocess.run(["storescu", "-aet", aet, "-aec", "DICOMTUI", *args, "127.0.0.1", str(port), "+sd", "+r",
                           str(folder)], capture_output=True, text=True, env=DCMTK_ENV, timeout=120)


def _without_meta(path: Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    return ds


def _incoming(server: Listener) -> list[Path]:
    return list((server.db_path / "incoming").iterdir())


def test_storescu_many_files_arrive_whole_with_valid_meta(tmp_path: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    folder = tmp_path / "many"
    for series in range(4):
        write_series(folder / str(series), SeriesSpec(series_number=series + 1, slices=150, rows=24, cols=24))
    out = _storescu(listener.port, folder)
    assert out.returncode == 0, out.stderr
    assert _wait(lambda: listener.indexed >= 600)
    with DicomDatabase.open(listener.db_path) as db:
        assert db.stats()["instances"] == 600 and db.check().ok
        stored = {r["SOPInstanceUID"]: db.abspath(r["path"], True) for r in db.instances()}
    sent = sorted(folder.rglob("*.dcm"))
    assert len(sent) == 600
    for path in sent[::50]:
        mine = pydicom.dcmread(stored[pydicom.dcmread(path).SOPInstanceUID])
        assert mine.file_meta.MediaStorageSOPInstanceUID == mine.SOPInstanceUID
        assert mine.file_meta.SourceApplicationEntityTitle == "STORESCU"
        assert mine.file_meta.ImplementationClassUID == wire.IMPLEMENTATION_UID
        assert _without_meta(stored[mine.SOPInstanceUID]) == _without_meta(path)
    assert listener.associations[-1].images == 600 and listener.associations[-1].ended == "released"
    assert not _incoming(listener)


def test_compressed_transfer_syntaxes_are_stored_as_received(tmp_path: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    folder = tmp_path / "compressed"
    for name, option in COMPRESSED.items():
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copy(get_testdata_file(name, download=False), folder / name)
        one = tmp_path / name
        one.mkdir()
        shutil.copy(folder / name, one / name)
        out = _storescu(listener.port, one, "-R", option)
        assert out.returncode == 0, out.stderr
    assert _wait(lambda: listener.indexed >= len(COMPRESSED))
    with DicomDatabase.open(listener.db_path) as db:
        rows = {r["SOPInstanceUID"]: r for r in db.instances()}
        for name in COMPRESSED:
            source = pydicom.dcmread(folder / name)
            row = rows[source.SOPInstanceUID]
            assert row["TransferSyntaxUID"] == source.file_meta.TransferSyntaxUID, name
            mine = pydicom.dcmread(db.abspath(row["path"], True))
            assert mine.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
            assert mine.PixelData == source.PixelData, name  # the compressed bytes, untouched


def test_our_send_to_our_listener_many_and_compressed(tmp_path: Path, listener: Listener) -> None:
    folder = tmp_path / "in"
    write_series(folder / "series", SeriesSpec(slices=400, rows=16, cols=16))
    for name in COMPRESSED:
        shutil.copy(get_testdata_file(name, download=False), folder / name)
    with DicomDatabase.open(tmp_path / "src") as db:
        import_paths_count = len(list(folder.rglob("*.dcm")))
        from dicomtui.core.indexer import import_paths

        import_paths(db, [folder], "link")
        rows = [dict(r, path=str(db.abspath(r["path"], bool(r["stored"])))) for r in db.instances()]
    assert len(rows) == import_paths_count
    report = send(rows, RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port))
    assert report.counts == {"success": len(rows), "warning": 0, "failure": 0}, report.items[:3]
    assert not report.notes and not any(i.decompressed for i in report.items)
    assert _wait(lambda: listener.indexed >= len(rows))
    with DicomDatabase.open(listener.db_path) as db:
        theirs = {r["SOPInstanceUID"]: r for r in db.instances()}
    for row in rows:
        assert theirs[row["SOPInstanceUID"]]["TransferSyntaxUID"] == row["TransferSyntaxUID"]


def test_rejections_in_dcmtk_words(tmp_path: Path) -> None:
    require_program("storescu", "dcmtk")
    write_series(tmp_path / "in", SeriesSpec(slices=2))
    local = LocalNode(port=0, bind="127.0.0.1", allow=["FRIEND"], max_associations=1)
    with Listener(tmp_path / "db", local) as server:
        out = _storescu(server.port, tmp_path / "in", aet="STRANGER")
        assert out.returncode != 0
        assert "Rejected Permanent" in out.stderr and "Calling AE Title Not Recognized" in out.stderr, out.stderr
        held = store_association(LocalNode(ae_title="FRIEND"), RemoteNode("us", "DICOMTUI", "127.0.0.1",
                                                                                 server.port),
                                        [(wire.VERIFICATION, wire.IMPLICIT_LE)])
        try:  # the one association allowed is taken
            busy = subprocess.run(["echoscu", "-aet", "FRIEND", "-aec", "DICOMTUI", "127.0.0.1", str(server.port)],
                                  capture_output=True, text=True, env=DCMTK_ENV, timeout=30)
            assert busy.returncode != 0
            assert "Rejected Transient" in busy.stderr and "Local Limit Exceeded" in busy.stderr, busy.stderr
        finally:
            held.release()
        assert _wait(lambda: all(a.ended for a in server.associations))
        out = _storescu(server.port, tmp_path / "in", aet="FRIEND")
        assert out.returncode == 0, out.stderr
        assert _wait(lambda: server.indexed >= 2)


def test_storescu_killed_mid_instance_leaves_nothing_partial(tmp_path: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    folder = tmp_path / "big"
    write_series(folder, SeriesSpec(slices=3, rows=2048, cols=2048))  # 8 MB each: the kill lands inside one
    proc = subprocess.Popen(["storescu", "-aec", "DICOMTUI", "--max-send-pdu", "4096", "127.0.0.1",
                             str(listener.port), "+sd", str(folder)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: bool(_incoming(listener)) or proc.poll() is not None, 60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait(lambda: bool(listener.associations) and all(a.ended == "aborted" for a in listener.associations))
    received = listener.associations[-1].images
    assert received < 3
    assert _wait(lambda: listener.indexed >= received)
    assert not _incoming(listener)  # the partial instance is gone
    with DicomDatabase.open(listener.db_path) as db:
        report = db.check()
        assert report.ok and not report.stale_temp, report
        assert db.stats()["instances"] == received
    result = echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port))
    assert result.ok, result.message


def _raw_pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxL", kind, len(body)) + body


def _read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        if not chunk:
            return 0, b""
        head += chunk
    kind, length = struct.unpack(">BxL", head)
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return kind, body


def test_protocol_errors_are_aborted_and_the_listener_serves_on(listener: Listener) -> None:
    for garbage in (_raw_pdu(0x04, b"\0\0\0\2\1\3"),  # P-DATA before any association
                    _raw_pdu(0x09, b"hello"),  # no such PDU type
                    _raw_pdu(0x01, b"\0\1" + b"\xff" * 30)):  # a truncated A-ASSOCIATE-RQ
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(garbage)
            kind, body = _read_pdu(sock)
            assert kind == wire.ABORT and body[2] == 2, (garbage[:1], kind, body)  # A-ABORT from the provider
    assert not listener.associations  # none of those was an association
    assert echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port)).ok


def test_a_silent_connection_is_dropped_after_the_artim_timeout(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scp, "ARTIM_S", 0.5)
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", max_associations=1)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            start = time.monotonic()
            kind, _body = _read_pdu(sock)  # an A-ABORT, then the connection closes
            assert kind in (0, wire.ABORT) and time.monotonic() - start < 5
        assert echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port)).ok


def test_send_reconnects_when_the_peer_stops_answering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = []

    def slow_once(root, tmp, size, durable):
        if not stalled:
            stalled.append(True)
            time.sleep(2.5)  # longer than the sender's timeout: it gives up on this association
        return store_written(root, tmp, size, durable)

    monkeypatch.setattr("dicomtui.core.net.listener.store_written", slow_once)
    files = write_series(tmp_path / "in", SeriesSpec(slices=5))
    rows = [{"SOPInstanceUID": pydicom.dcmread(p).SOPInstanceUID, "SOPClassUID": pydicom.dcmread(p).SOPClassUID,
             "TransferSyntaxUID": pydicom.dcmread(p).file_meta.TransferSyntaxUID, "path": str(p)} for p in files]
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server:
        report = send(rows, RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port, timeout=1))
        assert report.counts["success"] == 5, report.items
        assert len(report.notes) == 1 and "reconnected" in report.notes[0]
        assert _wait(lambda: server.indexed >= 5)
        with DicomDatabase.open(server.db_path) as db:
            assert db.stats()["instances"] == 5


def test_an_idle_association_is_aborted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scp, "IDLE_S", 0.5)
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server:
        held = store_association(LocalNode(ae_title="IDLER"), RemoteNode("us", "DICOMTUI", "127.0.0.1",
                                                                                server.port),
                                        [(wire.VERIFICATION, wire.IMPLICIT_LE)])
        try:
            assert _wait(lambda: bool(server.associations) and server.associations[0].ended == "aborted", 10)
            kind, _body = _read_pdu(held.sock)  # the listener said so before closing
            assert kind == wire.ABORT
        finally:
            held.abort()
        assert echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port)).ok
