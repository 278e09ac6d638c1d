"""`dicomtui status` shows what the listener does now (issue 20): its open associations (from the live state it
publishes), its log file, and the forwards pending or failed in the queue."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from dicomtui.cli import main
from dicomtui.core.forward import RetryPolicy, Route, Routes
from dicomtui.core.net import identity
from dicomtui.core.net.forwarder import Forwarding
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.send import send
from dicomtui.core.synth import SeriesSpec, write_series

from .interop.test_dimse import free_port
from .test_net_hostile import _associate
from .test_net_loopback import _wait


def _status(root: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["--db", str(root), "status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)



def test_status_shows_open_associations_the_log_file_and_forwards(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "add", "down", f"DOWN@127.0.0.1:{free_port()}"]) == 0  # nothing listens there
    root, log = tmp_path / "db", tmp_path / "listen.log"
    routes = Routes([Route("down")], RetryPolicy(max_tries=1))
    files = write_series(tmp_path / "series", SeriesSpec(slices=3, rows=16, cols=16))
    with Listener(root, LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1"),
                  forward=Forwarding(routes, LocalNode()), log_file=log) as server:
        info = _status(root, capsys)
        assert info["listeners"][0]["associations"] == [] and info["listeners"][0]["log_file"] == str(log)
        sock, kind = _associate(server.port, b"HOLDER")  # an association left open
        try:
            assert kind == 2
            assert _wait(lambda: len(_status(root, capsys)["listeners"][0]["associations"]) == 1)
            held = _status(root, capsys)["listeners"][0]["associations"][0]
            assert held["calling_ae"] == "HOLDER" and held["address"].startswith("127.0.0.1:") and held["since"]
            capsys.readouterr()
            assert main(["--db", str(root), "status"]) == 0
            text = capsys.readouterr().out
            assert "associations  1 open; HOLDER from 127.0.0.1:" in text and f"log           {log}" in text
        finally:
            sock.close()
        assert _wait(lambda: _status(root, capsys)["listeners"][0]["associations"] == [])
        rows = [{"path": str(f), "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": _uid(f),
                 "TransferSyntaxUID": "1.2.840.10008.1.2.1"} for f in files]
        report = send(rows, RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port))
        assert report.counts["success"] == 3
        assert _wait(lambda: _status(root, capsys)["forwards"] == {"down": {"failed": 3}})
        capsys.readouterr()
        assert main(["--db", str(root), "status"]) == 0
        assert "forwards        to down: 3 failed  (dicomtui route queue; route retry)" in capsys.readouterr().out
    assert not identity.state_file(root, server.port).exists()  # removed with the identity file at stop


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
