"""Peers that keep Nagle's algorithm on (Debian's DCMTK without TCP_NODELAY=1, Orthanc's C-MOVE sub-associations,
many modalities) must not wait ~40 ms per message on our delayed ACKs: in both directions, our side acknowledges
every read at once (wire.quick_ack). Before it, each of these runs took 9.0 s; now 0.05-0.3 s (issue 15)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.retrieve import retrieve
from dicomtui.core.net.send import send
from dicomtui.core.net.wire import EXPLICIT_LE
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series
from tests.conftest import require_program
from tests.interop.test_dimse import free_port, wait_port
from tests.interop.test_orthanc import orthanc  # noqa: F401 - the Orthanc fixture

pytestmark = pytest.mark.interop
FILES = 200
# 200 messages stalled by delayed ACKs take 200 x 45 ms = 9 s; unstalled 0.05-0.3 s here. The bound leaves room for
# a loaded 2-core machine and still fails on any stall of more than ~10 ms per message.
BOUND_S = 3.0
NAGLE_ENV = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}  # Debian's DCMTK: Nagle on without it


@pytest.fixture
def listener(tmp_path: Path):
    """Our listener with --sync none: these tests time the network, not the disk's flushes (which the machine's
    other work makes vary by tens of ms)."""
    with Listener(tmp_path / "db", LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1", sync="none")) as server:
        yield server


@pytest.fixture
def small_files(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    write_series(folder, SeriesSpec(slices=FILES, rows=16, cols=16))
    return folder


def test_storescu_with_nagle_on_does_not_stall_our_listener(small_files: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    start = time.monotonic()
    done = subprocess.run(["storescu", "-aec", "DICOMTUI", "127.0.0.1", str(listener.port), "+sd", "+r",
                           str(small_files)], env=NAGLE_ENV, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-500:]
    assert seconds < BOUND_S, f"{FILES} files from storescu (Nagle on) took {seconds:.2f} s"
    deadline = time.monotonic() + 10
    while listener.indexed < FILES and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listener.indexed == FILES


def test_our_send_to_storescp_with_nagle_on_does_not_stall(tmp_path: Path, small_files: Path) -> None:
    require_program("storescp", "dcmtk")
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [small_files], "link")
        rows = [dict(r, path=str(db.abspath(r["path"], bool(r["stored"])))) for r in db.instances()]
    out, port = tmp_path / "received", free_port()
    out.mkdir()
    proc = subprocess.Popen(["storescp", "-aet", "REF", "-od", str(out), str(port)], env=NAGLE_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        start = time.monotonic()
        report = send(rows, RemoteNode("ref", "REF", "127.0.0.1", port))
        seconds = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert report.counts["success"] == FILES, report.error
    assert seconds < BOUND_S, f"{FILES} files to storescp (Nagle on) took {seconds:.2f} s"
    assert len(list(out.iterdir())) == FILES


def test_retrieve_from_orthanc_by_get_and_move_does_not_stall(tmp_path: Path, orthanc) -> None:  # noqa: F811
    """Orthanc sends the C-STOREs of a C-GET (on our association) and of a C-MOVE (on its sub-association to our
    listener) with Nagle on: 100 instances took 4.9 s by C-GET and ~5 s by C-MOVE, now 0.3-0.6 s each."""
    node, local = orthanc
    local = dataclasses.replace(local, sync="none")  # the network is timed, not the disk (see the listener fixture)
    rows = []
    for i, ds in enumerate(series_datasets(SeriesSpec(slices=100, rows=16, cols=16, patient_id="NAGLE01"))):
        path = tmp_path / "seed100" / f"{i:03d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        rows.append({"SOPInstanceUID": ds.SOPInstanceUID, "SOPClassUID": ds.SOPClassUID, "path": str(path),
                     "TransferSyntaxUID": EXPLICIT_LE})
    assert send(rows, node, LocalNode(ae_title="SEEDER")).counts["success"] == 100
    study = str(ds.StudyInstanceUID)
    for method in ("get", "move"):
        with DicomDatabase.open(tmp_path / f"db-{method}") as db:
            start = time.monotonic()
            report = retrieve(db, node, [study], method, local)
            seconds = time.monotonic() - start
            assert report.completed == 100 and not report.errors, report.errors
            assert db.stats()["instances"] == 100
        assert seconds < BOUND_S, f"C-{method.upper()} of 100 instances from Orthanc took {seconds:.2f} s"
