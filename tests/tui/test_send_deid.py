"""The send dialog de-identifies when asked (issue 17) and, for a node with both a DIMSE address and a DICOMweb
URL, sends over STOW-RS after ``w`` (issue 18), as the network screen asks it; driven by the pilot against DCMTK
storescp and Orthanc with its DICOMweb plugin, started on 127.0.0.1 by the tests."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from textual.widgets import DataTable, Static, Switch

from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.net.nodes import Nodes
from dicomtui.tui.screens.send import SendScreen
from tests.interop.test_dicomweb import orthanc_dicomweb
from tests.interop.test_dimse import storescp  # noqa: F401 - fixture

from .conftest import settle, text
from .test_network import SIZE, app_with_nodes

pytestmark = pytest.mark.interop


async def _deidentify_on(app, pilot) -> SendScreen:
    await pilot.press("tab", "tab", "s")  # the 8-slice series
    screen = app.screen
    assert isinstance(screen, SendScreen)
    screen.query_one("#deid-on", Switch).value = True
    await settle(app, pilot)
    screen.query_one("#send-nodes", DataTable).focus()
    return screen


async def test_send_deidentified_copies_to_storescp(db_path: Path, tmp_path: Path, storescp) -> None:  # noqa: F811
    node, received = storescp
    app = app_with_nodes(db_path, tmp_path, Nodes(remotes={"store": node}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _deidentify_on(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "8 sent, 0 with warnings, 0 failed" in text(screen.query_one("#send-summary", Static))
    files = [p for p in received.rglob("*") if p.is_file()]
    pseudonym = database_mapping(db_path).known_patient("J1").pseudonym
    assert len(files) == 8
    for path in files:
        assert b"Doe^Jane" not in path.read_bytes()
        assert pydicom.dcmread(path).PatientID == pseudonym


async def test_w_sends_to_a_node_with_both_over_stow(db_path: Path, tmp_path: Path) -> None:
    from dicomtui.core.net.query import QueryFilters
    from dicomtui.core.net.web import qido

    with orthanc_dicomweb(tmp_path / "orthanc") as web:
        dimse_port = json.loads((tmp_path / "orthanc" / "orthanc.json").read_text())["DicomPort"]
        both = replace(web, name="both", ae_title="ORTHANC", host="127.0.0.1", port=dimse_port)
        app = app_with_nodes(db_path, tmp_path, Nodes(remotes={"both": both}))
        async with app.run_test(size=SIZE) as pilot:
            screen = await _deidentify_on(app, pilot)
            table = screen.query_one("#send-nodes", DataTable)
            assert [str(c) for c in table.get_row_at(0)] == ["both", both.address, "C-STORE"]
            await pilot.press("w")
            assert [str(c) for c in table.get_row_at(0)] == ["both", web.url, "STOW-RS"]
            await pilot.press("enter")
            await settle(app, pilot)
            summary = text(screen.query_one("#send-summary", Static))
            assert summary.startswith(web.url) and "8 sent, 0 with warnings, 0 failed" in summary
        pseudonym = database_mapping(db_path).known_patient("J1").pseudonym
        assert [s["PatientID"] for s in qido(web, "study")] == [pseudonym]
        assert qido(web, "study", QueryFilters(patient_id="J1")) == []
