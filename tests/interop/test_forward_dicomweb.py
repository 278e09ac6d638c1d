"""A forward to a node that has only a DICOMweb URL goes by STOW-RS (issue 20): DCMTK storescu → our listener →
forward → Orthanc's DICOMweb plugin, checked with QIDO-RS."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.forward import load_routes
from dicomtui.core.net.forward_queue import ForwardQueue
from dicomtui.core.net.forwarder import Forwarding
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode
from dicomtui.core.net.query import QueryFilters
from dicomtui.core.net.web import qido
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program
from tests.interop.test_dicomweb import orthanc_dicomweb
from tests.interop.test_forward_dcmtk import _sent_uids, _storescu, _wait_for

pytestmark = pytest.mark.interop


def test_a_web_only_node_is_forwarded_to_by_stow(tmp_path: Path) -> None:
    require_program("storescu", "dcmtk")
    series = tmp_path / "series"
    write_series(series, SeriesSpec(slices=5, rows=16, cols=16))
    root = tmp_path / "db"
    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        assert main(["nodes", "add", "web", "--url", node.url]) == 0
        assert main(["route", "add", "--to", "web"]) == 0
        with Listener(root, LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1"),
                      forward=Forwarding(load_routes(), LocalNode())) as listener:
            _storescu(series, listener.port)
            with ForwardQueue(root) as queue:
                assert _wait_for(lambda: queue.counts() == {"web": {"sent": 5}}, seconds=60)
        found = qido(node, "image", QueryFilters())
    assert {f["SOPInstanceUID"] for f in found} == _sent_uids(series)
