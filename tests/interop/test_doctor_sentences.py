"""Every failure sentence of the doctor, and of a retrieve whose images would land elsewhere, against the real peer
that causes it (issue 14, items 21 and 22): all on 127.0.0.1, every server stopped by its test."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import NetworkError, ServiceNotOffered
from dicomtui.core.net.doctor import doctor
from dicomtui.core.net.identity import identity_file, serves
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.query import query
from dicomtui.core.net.retrieve import retrieve
from tests.conftest import require_program
from tests.interop.test_dimse import DCMTK_ENV, free_port, storescp, wait_port  # noqa: F401 - storescp fixture
from tests.interop.test_orthanc import orthanc  # noqa: F401 - the Orthanc fixture

pytestmark = pytest.mark.interop
NO_QUERY = "the peer accepted the association but no Study Root C-FIND context — it offers no query"


def _marks(report) -> list[tuple[str, bool | None]]:
    return [(check.name, check.ok) for check in report]


# ---- item 22: a storage-only peer ---------------------------------------------------------------------------------

def test_query_of_storescp_says_it_offers_no_query_at_once(storescp) -> None:  # noqa: F811
    node, _out = storescp
    start = time.monotonic()
    with pytest.raises(ServiceNotOffered) as caught:
        query(node, "study")
    assert NO_QUERY in str(caught.value) and "REF@127.0.0.1" in str(caught.value)
    assert "timed out" not in str(caught.value) and time.monotonic() - start < 5


def test_doctor_of_storescp_fails_at_query_in_those_words(tmp_path: Path, storescp) -> None:  # noqa: F811
    node, _out = storescp
    with DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, node, LocalNode(port=free_port(), bind="127.0.0.1"))
    assert _marks(report) == [("network", True), ("echo", True), ("query", False), ("move to us", None)]
    assert NO_QUERY in report[2].detail and "AE titles it knows" not in report[2].detail


def test_doctor_of_our_own_listener_fails_at_query_too(tmp_path: Path) -> None:
    with Listener(tmp_path / "theirs", LocalNode(ae_title="STORE", port=0, bind="127.0.0.1")) as server, \
            DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, RemoteNode("l", "STORE", "127.0.0.1", server.port), LocalNode(port=free_port()))
    assert _marks(report)[:3] == [("network", True), ("echo", True), ("query", False)]
    assert NO_QUERY in report[2].detail


def test_doctor_of_a_peer_that_refuses_our_ae_fails_at_echo(tmp_path: Path) -> None:
    local = LocalNode(ae_title="STRANGER", port=free_port(), bind="127.0.0.1")
    with Listener(tmp_path / "theirs", LocalNode(ae_title="STORE", port=0, bind="127.0.0.1", allow=["FRIEND"])) \
            as server, DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, RemoteNode("l", "STORE", "127.0.0.1", server.port), local)
    assert _marks(report) == [("network", True), ("echo", False), ("query", None), ("move to us", None)]
    assert "rejected the association: our calling AE title is not recognised" in report[1].detail


def test_doctor_of_a_closed_port_fails_at_network(tmp_path: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, RemoteNode("x", "X", "127.0.0.1", free_port(), timeout=3), LocalNode(port=free_port()))
    assert _marks(report) == [("network", False), ("echo", None), ("query", None), ("move to us", None)]
    assert "cannot connect to 127.0.0.1" in report[0].detail and "is the peer running" in report[0].detail


def test_doctor_of_orthanc_not_knowing_our_ae_fails_at_query(tmp_path: Path, orthanc) -> None:  # noqa: F811
    node, local = orthanc
    with DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, node, LocalNode(ae_title="NOBODY", port=local.port, bind="127.0.0.1"))
    assert _marks(report)[:3] == [("network", True), ("echo", True), ("query", False)]
    # Orthanc accepts the association, then aborts it at the C-FIND (its log: "This AET is not listed in
    # configuration option DicomModalities")
    assert "stopped answering the C-FIND (timeout or abort)" in report[2].detail
    assert "AE titles it knows (ours: NOBODY)" in report[2].detail


# ---- item 21: the move destination's port held by someone else ----------------------------------------------------

def test_move_refuses_when_another_databases_listener_holds_our_port(tmp_path: Path, orthanc) -> None:  # noqa: F811
    node, local = orthanc
    study_uid = query(node, "study", local=local)[0]["StudyInstanceUID"]
    with Listener(tmp_path / "other", local) as other, DicomDatabase.open(tmp_path / "db") as db:
        with pytest.raises(NetworkError, match=f"port {local.port} is held by a program that is not this "
                                               f"database's listener"):
            retrieve(db, node, [study_uid], "move", local)
        assert db.stats()["instances"] == 0 and other.indexed == 0  # refused before anything was sent
        report = doctor(db, node, local)
        assert _marks(report) == [("network", True), ("echo", True), ("query", True), ("move to us", False)]
        assert "not this database's listener" in report[3].detail


def test_move_to_this_databases_listener_in_another_process(tmp_path: Path, orthanc) -> None:  # noqa: F811
    """`dicomtui listen` on the same database, in another process: recognised by its identity file, and the images
    it indexes are counted as retrieved."""
    node, local = orthanc
    study_uid = query(node, "study", local=local)[0]["StudyInstanceUID"]
    DicomDatabase.open(tmp_path / "db").close()
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "listen", "--ae",
                             local.ae_title, "--port", str(local.port), "--bind", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(local.port, 30)
        deadline = time.monotonic() + 10
        while not serves(tmp_path / "db", local.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        with DicomDatabase.open(tmp_path / "db") as db:
            report = retrieve(db, node, [study_uid], "move", local)
            assert report.completed == 6 and not report.errors, report.errors
            assert db.stats()["instances"] == 6
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert not identity_file(tmp_path / "db", local.port).exists()  # removed when the listener stopped


def test_move_counts_only_what_arrived_in_this_database(tmp_path: Path, orthanc) -> None:  # noqa: F811
    """Orthanc sends our AE title to the port of its entry, where DCMTK storescp receives; our listener waits on
    another port. The peer reports success; the retrieve reports what reached this database: nothing."""
    require_program("storescp", "dcmtk")
    node, local = orthanc
    study_uid = query(node, "study", local=local)[0]["StudyInstanceUID"]
    out = tmp_path / "elsewhere"
    out.mkdir()
    proc = subprocess.Popen(["storescp", "-aet", local.ae_title, "-od", str(out), str(local.port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = LocalNode(ae_title=local.ae_title, port=free_port(), bind="127.0.0.1")
    try:
        wait_port(local.port)
        with DicomDatabase.open(tmp_path / "db") as db:
            report = retrieve(db, node, [study_uid], "move", ours)
            assert db.stats()["instances"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert len(list(out.iterdir())) == 6  # they went to storescp
    assert report.completed == 0
    # one C-MOVE per series (2 of 3 instances): each says what the peer sent and what arrived here
    arrived = [e for e in report.errors if "reports 3 instances sent to DICOMTUI, but only 0 arrived in this "
                                           "database" in e]
    assert len(arrived) == 2 and f"another host or port than ours ({ours.port})" in arrived[0], report.errors


def test_doctor_of_orthanc_with_our_port_wrong_in_its_entry_fails_at_move(tmp_path: Path, orthanc) -> None:  # noqa: F811
    """Orthanc knows our AE title but at another port (nothing listens there): it cannot open the sub-association
    and answers 0xC000; the doctor says what the peer's entry for us must hold, with our real port."""
    node, local = orthanc
    ours = LocalNode(ae_title=local.ae_title, port=free_port(), bind="127.0.0.1")
    with DicomDatabase.open(tmp_path / "db") as db:
        report = doctor(db, node, ours)
    assert _marks(report) == [("network", True), ("echo", True), ("query", True), ("move to us", False)]
    assert "without sending anything" in report[3].detail
    assert f'"DicomModalities": {{"dicomtui": ["DICOMTUI", "<this host>", {ours.port}]}}' in report[3].detail
