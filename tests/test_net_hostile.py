"""The listener under hostile peers (issue 13, items 1-5), over raw sockets on 127.0.0.1: slow peers, announced
lengths that never arrive, a command and data set that disagree, huge peer-supplied values, refused callers. Every
timeout is made short through StoreSCP's parameters, so that each case takes a few seconds at most; every server
and socket a test opens is closed by that test."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from dicomtui.cli import main as cli_main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.net import scp as scp_module
from dicomtui.core.net import wire
from dicomtui.core.net.associate import store_association
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.scp import Handler, StoreSCP
from dicomtui.core.net.scu import read_for_sending
from dicomtui.core.net.status import Status
from dicomtui.core.synth import SeriesSpec, write_series

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


# ---- raw PDUs ------------------------------------------------------------------------------------------------

def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(body)) + body


def associate_rq(calling: bytes = b"PEER", called: bytes = b"ANY", user: bytes = b"") -> bytes:
    """An A-ASSOCIATE-RQ (PS3.8 9.3.2) proposing Verification in implicit VR little endian; ``user``: extra user
    information sub-items."""
    body = struct.pack(">HH", 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
    body += _item(0x10, wire.APPLICATION_CONTEXT.encode())
    body += _item(0x20, bytes([1, 0, 0, 0]) + _item(0x30, wire.VERIFICATION.encode())
                  + _item(0x40, wire.IMPLICIT_LE.encode()))
    body += _item(0x50, _item(0x51, struct.pack(">L", 16384)) + _item(0x52, b"1.2.3") + user)
    return struct.pack(">BxL", 1, len(body)) + body


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _answer(sock: socket.socket) -> int | None:
    """The type of the first PDU the server sends back (None: it closed the connection without one)."""
    try:
        head = sock.recv(1)
    except ConnectionResetError:
        return None
    return head[0] if head else None


def _associate(port: int, calling: bytes = b"PEER") -> tuple[socket.socket, int | None]:
    sock = _connect(port)
    sock.sendall(associate_rq(calling))
    kind = _answer(sock)
    if kind is not None:  # the rest of the reply, so that later reads start at the next PDU
        length = struct.unpack(">xL", _recv_exactly(sock, 5))[0]
        _recv_exactly(sock, length)
    return sock, kind


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed (or aborted) ``sock``; None when it had not within ``seconds``."""
    sock.settimeout(seconds)
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class Discard(Handler):
    pass


@contextlib.contextmanager
def scp(tmp_path: Path, **options) -> Iterator[StoreSCP]:
    counter = iter(range(1_000_000))

    def new_file():
        folder = tmp_path / "incoming"
        folder.mkdir(exist_ok=True)
        path = folder / f"{next(counter)}.part"
        import os

        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    server = StoreSCP("HOSTILE", "127.0.0.1", 0, Discard(), new_file, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=10)


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


# ---- 1. slow peers -------------------------------------------------------------------------------------------

def test_slow_peers_still_negotiating_do_not_lock_out_a_real_association(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """6 connections trickling an A-ASSOCIATE-RQ a byte at a time, 2 associations allowed: a real peer is
    accepted (it used to get "Rejected Transient, Local Limit Exceeded": connections still negotiating counted)."""
    stop = threading.Event()
    monkeypatch.setattr(scp_module, "ARTIM_S", 5.0)
    with scp(tmp_path, max_associations=2) as server, sockets() as slow:
        slow += [_connect(server.port) for _ in range(6)]

        def trickle() -> None:
            rq = associate_rq(b"SLOW")
            for byte in rq[:20]:
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(bytes([byte]))
                if stop.wait(0.1):
                    return

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            time.sleep(0.3)
            real, kind = _associate(server.port, b"REAL")
            real.close()
        finally:
            stop.set()
            thread.join()
    assert kind == wire.ASSOCIATE_AC


def test_the_artim_deadline_covers_the_whole_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A byte every 0.2 s kept a connection open for ever (the timeout applied per read): with ARTIM 1 s the
    server closes it about 1 s after it opened (PS3.8 9.1.5)."""
    monkeypatch.setattr(scp_module, "ARTIM_S", 1.0)
    with scp(tmp_path) as server, sockets() as opened:
        sock = _connect(server.port)
        opened.append(sock)
        rq = associate_rq()
        start = time.monotonic()
        closed_at = None
        for byte in rq[:40]:
            try:
                sock.send(bytes([byte]))
            except OSError:
                closed_at = time.monotonic() - start
                break
            if _closed_within(sock, 0.2) is not None:
                closed_at = time.monotonic() - start
                break
    assert closed_at is not None and closed_at < 3.0, closed_at


def test_an_established_association_must_send_each_pdu_within_the_idle_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the A-ASSOCIATE-AC, a P-DATA-TF trickled a byte every 0.2 s is aborted about idle_s after it began."""
    monkeypatch.setattr(scp_module, "IDLE_S", 1.0)
    with scp(tmp_path) as server, sockets() as opened:
        sock, kind = _associate(server.port)
        opened.append(sock)
        assert kind == wire.ASSOCIATE_AC
        pdu = wire.PDU_HEADER.pack(wire.P_DATA, 100) + bytes(100)
        start = time.monotonic()
        answer = None
        for byte in pdu[:40]:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.2)
            try:
                answer = sock.recv(1)
                break
            except TimeoutError:
                continue
        took = time.monotonic() - start
    assert answer in (bytes([wire.ABORT]), b""), answer
    assert took < 3.0, took


def test_connections_above_the_cap_are_closed_at_once_and_logged(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dicomtui.scp")
    with scp(tmp_path, max_associations=1, max_connections=3, artim_s=10.0) as server, sockets() as opened:
        opened += [_connect(server.port) for _ in range(3)]
        time.sleep(0.2)
        extra = _connect(server.port)
        opened.append(extra)
        took = _closed_within(extra, 2.0)
    assert took is not None and took < 1.0
    assert any("refused a connection from 127.0.0.1" in r.getMessage() for r in caplog.records)


# ---- 2. memory amplification ---------------------------------------------------------------------------------

def _hold_announcing(port: int, n: int, header: bytes, opened: list[socket.socket], established: bool) -> None:
    for _ in range(n):
        if established:
            sock, kind = _associate(port)
            assert kind == wire.ASSOCIATE_AC
        else:
            sock = _connect(port)
        opened.append(sock)
        sock.sendall(header + bytes(2))  # 8 bytes: a PDU header and the first 2 of the announced length


def test_an_announced_request_length_is_not_allocated(tmp_path: Path) -> None:
    """60 connections announcing a 4 MiB A-ASSOCIATE-RQ and sending 8 bytes: the RSS grows by little (it grew by
    4 MiB each: the announced length was allocated before any byte arrived); each is aborted (above the cap)."""
    with scp(tmp_path) as server, sockets() as opened:
        time.sleep(0.2)
        before = _rss_kb()
        _hold_announcing(server.port, 60, wire.PDU_HEADER.pack(wire.ASSOCIATE_RQ, 4 << 20), opened, False)
        time.sleep(0.5)
        grown_mb = (_rss_kb() - before) / 1024
        answers = [_answer(sock) for sock in opened[:3]]
    assert grown_mb < 40, f"RSS grew by {grown_mb:.0f} MB"
    assert answers == [wire.ABORT] * 3


def test_an_announced_data_pdu_length_is_not_allocated(tmp_path: Path) -> None:
    """40 associations each announcing a 1 MiB P-DATA-TF (our maximum) and sending 2 of its bytes: the RSS grows by
    a buffer of 64 KiB each, not 1 MiB."""
    with scp(tmp_path, max_associations=50) as server, sockets() as opened:
        time.sleep(0.2)
        before = _rss_kb()
        _hold_announcing(server.port, 40, wire.PDU_HEADER.pack(wire.P_DATA, wire.MAX_PDU), opened, True)
        time.sleep(0.5)
        grown_mb = (_rss_kb() - before) / 1024
    assert grown_mb < 25, f"RSS grew by {grown_mb:.0f} MB"


# ---- 3. command and data set disagree ------------------------------------------------------------------------

def _send_claiming(tmp_path: Path, server: Listener, path: Path, sop_class: str, sop_instance: str) -> int:
    data, offset, transfer = read_for_sending(str(path))
    assoc = store_association(LocalNode(ae_title="LIAR"), RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port),
                              [(sop_class, transfer)])
    try:
        return assoc.store(assoc.context_for(sop_class, transfer), sop_class, sop_instance,
                           memoryview(data)[offset:])
    finally:
        assoc.release()


@pytest.mark.parametrize("claim", ["class", "instance"])
def test_a_data_set_that_does_not_match_its_request_is_refused(tmp_path: Path, claim: str) -> None:
    """The command's Affected SOP Class/Instance UID differs from the data set's: 0xA900 (PS3.4 B.2.3), the file
    is neither kept nor indexed (it was answered Success and indexed under the data set's UIDs)."""
    [path] = write_series(tmp_path / "in", SeriesSpec(slices=1, rows=16, cols=16))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.SOPClassUID == CT
    sop_class, sop_instance = (MR, ds.SOPInstanceUID) if claim == "class" else (CT, ds.SOPInstanceUID + ".9")
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server:
        status = _send_claiming(tmp_path, server, path, sop_class, sop_instance)
        honest = _send_claiming(tmp_path, server, path, CT, ds.SOPInstanceUID)
    assert status == 0xA900 == Status.DATASET_MISMATCH
    assert honest == Status.SUCCESS
    with DicomDatabase.open(tmp_path / "db") as db:
        stored = [p for p in (tmp_path / "db").rglob("*") if p.is_file() and "dicom" in p.parts]
        assert len(stored) == 1  # the honest one only
        assert db.totals()["instances"] == 1
    assert not list((tmp_path / "db" / "incoming").glob("*"))


# ---- 4. log amplification ------------------------------------------------------------------------------------

def test_peer_supplied_values_reach_the_log_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 60,000-character Implementation Version Name (the most an item length allows): the request
    is aborted as malformed and no log line, ours or pynetdicom's, is longer than a few hundred characters."""
    pynetdicom_log = logging.getLogger("pynetdicom")
    saved = pynetdicom_log.level
    pynetdicom_log.setLevel(logging.NOTSET)  # as in a fresh process: the listener quiets it
    caplog.set_level(logging.DEBUG)
    try:
        with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1")) as server, sockets() as opened:
            sock = _connect(server.port)
            opened.append(sock)
            sock.sendall(associate_rq(user=_item(0x55, b"X" * 60_000)))
            kind = _answer(sock)
    finally:
        pynetdicom_log.setLevel(saved)
    assert kind == wire.ABORT
    assert any("malformed A-ASSOCIATE-RQ" in r.getMessage() for r in caplog.records)
    longest = max(len(r.getMessage()) for r in caplog.records)
    assert longest < 1000, longest


def test_peer_text_escapes_and_cuts() -> None:
    assert wire.peer_text("AE\x1b[31m") == "AE\\x1b[31m"
    assert wire.peer_text("X" * 1000, 10) == "XXXXXXXXXX…[1000 chars]"
    assert wire.peer_text(b"ok") == "ok"


# ---- 5. defaults and refused callers -------------------------------------------------------------------------

def test_listen_help_says_it_binds_all_interfaces_and_how_to_restrict(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["listen", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ALL network interfaces" in text and "--bind 127.0.0.1" in text and "--allow" in text


def test_a_refused_caller_is_logged_with_its_address_and_ae(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dicomtui.scp")
    with scp(tmp_path, allow=["FRIEND"]) as server:
        sock, kind = _associate(server.port, b"STRANGER")
        sock.close()
    assert kind == wire.ASSOCIATE_RJ
    [record] = [r for r in caplog.records if "rejected an association" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "STRANGER" in message and "127.0.0.1" in message and "not in the allowed list" in message
