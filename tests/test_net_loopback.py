"""Our C-STORE client (scu, behind send) against our C-STORE server (scp, behind the Listener) on 127.0.0.1, no
DCMTK: bytes arrive intact, statuses come back, a stranger is rejected, a cancelled send stops and releases.
Every server a test starts is stopped by that test."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import NetworkError
from dicomtui.core.net import wire
from dicomtui.core.net.associate import store_association
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.scp import Association, Handler, StoreSCP
from dicomtui.core.net.scu import AssociationFailed, StoreAssociation, read_for_sending
from dicomtui.core.net.send import send
from dicomtui.core.net.status import Status
from dicomtui.core.synth import SeriesSpec, write_series


class Recorder(Handler):
    """Keeps each received file's bytes; answers ``statuses[sop_instance]`` (default success)."""

    def __init__(self, statuses: dict[str, int] | None = None):
        self.received: dict[str, bytes] = {}
        self.statuses = statuses or {}
        self.ended_how: list[str] = []

    def stored(self, assoc: Association, tmp: Path, size: int) -> int:
        data = tmp.read_bytes()
        tmp.unlink()
        assert len(data) == size
        sop = pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID
        self.received[sop] = data
        return self.statuses.get(sop, Status.SUCCESS)

    def ended(self, assoc: Association, how: str) -> None:
        self.ended_how.append(how)


def _temp_files(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()

    def new_file() -> tuple[Path, int]:
        path = folder / f"{next(counter)}.part"
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    return new_file


def _rows(files: list[Path]) -> list[dict[str, str]]:
    rows = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows.append({"path": str(path), "SOPClassUID": ds.SOPClassUID, "SOPInstanceUID": ds.SOPInstanceUID,
                     "TransferSyntaxUID": ds.file_meta.TransferSyntaxUID})
    return rows


def _wait(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return write_series(tmp_path / "in", SeriesSpec(slices=4, rows=32, cols=32))


def test_scu_to_scp_bytes_arrive_intact_with_their_statuses(tmp_path: Path, files: list[Path]) -> None:
    rows = _rows(files)
    refused = rows[1]["SOPInstanceUID"]
    handler = Recorder({refused: Status.OUT_OF_RESOURCES})
    server = StoreSCP("LOOP", "127.0.0.1", 0, handler, _temp_files(tmp_path / "incoming"))
    server.start()
    try:
        contexts = [(rows[0]["SOPClassUID"], rows[0]["TransferSyntaxUID"])]
        assoc = store_association(LocalNode(ae_title="SENDER"), RemoteNode("loop", "LOOP", "127.0.0.1", server.port),
                                  contexts)
        statuses = []
        for row in rows:
            data, offset, transfer = read_for_sending(row["path"])
            context_id = assoc.context_for(row["SOPClassUID"], transfer)
            statuses.append(assoc.store(context_id, row["SOPClassUID"], row["SOPInstanceUID"],
                                        memoryview(data)[offset:]))
        assoc.release()
        assert _wait(lambda: handler.ended_how == ["released"])
    finally:
        server.stop()
    assert statuses == [0, 0xA700, 0, 0]
    assert set(handler.received) == {row["SOPInstanceUID"] for row in rows}
    for row in rows:
        sent, sent_at, transfer = read_for_sending(row["path"])
        got = handler.received[row["SOPInstanceUID"]]
        got_at, got_transfer = wire.dataset_offset(got[: 1 << 16])
        assert got[got_at:] == sent[sent_at:]  # the dataset, byte for byte
        assert got_transfer == transfer
        meta = pydicom.dcmread(BytesIO(got), stop_before_pixels=True).file_meta
        assert meta.SourceApplicationEntityTitle == "SENDER"
        assert meta.ImplementationClassUID == wire.IMPLEMENTATION_UID
    assert not list((tmp_path / "incoming").iterdir())  # every temp file was handed over


def test_a_stranger_is_rejected_in_words(tmp_path: Path) -> None:
    server = StoreSCP("LOOP", "127.0.0.1", 0, Recorder(), _temp_files(tmp_path / "incoming"), allow=["FRIEND"])
    server.start()
    try:
        node = RemoteNode("loop", "LOOP", "127.0.0.1", server.port)
        with pytest.raises(NetworkError, match="LOOP@127.0.0.1.* rejected the association: our calling AE title "
                                               "is not recognised"):
            store_association(LocalNode(ae_title="STRANGER"), node, [(wire.VERIFICATION, wire.IMPLICIT_LE)])
        store_association(LocalNode(ae_title="FRIEND"), node, [(wire.VERIFICATION, wire.IMPLICIT_LE)]).release()
    finally:
        server.stop()


def test_an_ended_association_frees_its_slot_before_the_peer_closes(tmp_path: Path) -> None:
    """With one association allowed, a stranger that has read its A-ASSOCIATE-RJ but keeps its socket open (our
    side then waits up to 2 s for it to close, so the reject is not destroyed by a reset) does not make the next
    caller "local limit exceeded"."""
    server = StoreSCP("LOOP", "127.0.0.1", 0, Recorder(), _temp_files(tmp_path / "incoming"), allow=["FRIEND"],
                      max_associations=1)
    server.start()
    node = RemoteNode("loop", "LOOP", "127.0.0.1", server.port)
    try:
        stranger = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with stranger.dup():  # the client closes its socket on a reject; the duplicate keeps the connection open
            with pytest.raises(AssociationFailed):
                StoreAssociation.open(stranger, "STRANGER", "LOOP", [(wire.VERIFICATION, wire.IMPLICIT_LE)], 10)
            store_association(LocalNode(ae_title="FRIEND"), node, [(wire.VERIFICATION, wire.IMPLICIT_LE)]).release()
    finally:
        server.stop()


def test_send_to_the_listener_and_its_association_summary(tmp_path: Path, files: list[Path]) -> None:
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server:
        port = server.port
        report = send(_rows(files), RemoteNode("us", "DICOMTUI", "127.0.0.1", port), LocalNode("LOOPER"))
        assert report.counts == {"success": 4, "warning": 0, "failure": 0} and not report.error
        assert _wait(lambda: server.indexed == 4 and server.associations[0].ended == "released")
        stats = server.associations[0]
        assert stats.images == 4 and stats.failures == 0
        assert stats.summary().startswith("association from LOOPER (127.0.0.1:")
        assert " released: 4 images, " in stats.summary()
        with DicomDatabase.open(server.db_path) as db:
            assert db.stats()["instances"] == 4
    assert report.summary() == f"sent to DICOMTUI@127.0.0.1:{port}: 4 succeeded, 0 with warnings, 0 failed"


def test_a_cancelled_send_stops_between_objects_and_releases(tmp_path: Path, files: list[Path]) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 2:
            cancel.set()

    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server:
        report = send(_rows(files), RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port), progress=progress,
                      cancel=cancel)
        assert _wait(lambda: server.indexed == 2 and server.associations[0].ended == "released")
    assert report.cancelled and report.not_sent == 2 and len(report.items) == 2
    assert report.counts["success"] == 2
    assert report.error.startswith("cancelled: 2 of 4 instances not sent to DICOMTUI@127.0.0.1:")
    assert report.problems() == [report.error]


def test_a_rejection_is_always_told_as_one(tmp_path: Path) -> None:
    """pynetdicom's requestor may see the transport closed by a fast reject before it waits for the answer, and
    then calls it an abort (1 in 60 to 1 in 300 here); we read the A-ASSOCIATE-RJ PDU as it arrives, so each of 300
    rejections is worded as a rejection."""
    from dicomtui.core.net.echo import echo

    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", allow=["FRIEND"])) as server:
        node = RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port)
        messages = [echo(node, LocalNode(ae_title="STRANGER")).message for _ in range(300)]
    assert all("our calling AE title is not recognised" in m for m in messages), set(messages)


def test_large_instances_arrive_intact_while_the_receive_buffer_grows(tmp_path: Path) -> None:
    """2 MiB images (several full 1 MiB P-DATA-TF PDUs each): the SCP's buffer starts at 64 KiB and grows only as
    bytes arrive (issue 13: an announced length is never allocated up front); every byte still arrives."""
    files = write_series(tmp_path / "in", SeriesSpec(slices=2, rows=1024, cols=1024))
    rows = _rows(files)
    handler = Recorder()
    server = StoreSCP("LOOP", "127.0.0.1", 0, handler, _temp_files(tmp_path / "incoming"))
    server.start()
    try:
        assoc = store_association(LocalNode(ae_title="SENDER"), RemoteNode("loop", "LOOP", "127.0.0.1", server.port),
                                  [(rows[0]["SOPClassUID"], rows[0]["TransferSyntaxUID"])])
        statuses = []
        for row in rows:
            data, offset, transfer = read_for_sending(row["path"])
            statuses.append(assoc.store(assoc.context_for(row["SOPClassUID"], transfer), row["SOPClassUID"],
                                        row["SOPInstanceUID"], memoryview(data)[offset:]))
        assoc.release()
        assert _wait(lambda: handler.ended_how == ["released"])
    finally:
        server.stop()
    assert statuses == [0, 0]
    for row in rows:
        sent, sent_at, _transfer = read_for_sending(row["path"])
        got = handler.received[row["SOPInstanceUID"]]
        got_at, _ = wire.dataset_offset(got[: 1 << 16])
        assert len(sent) - sent_at > 2 * wire.MAX_PDU - 4096
        assert got[got_at:] == sent[sent_at:]
