"""The network screen and send dialog, driven by the pilot against real peers: DCMTK storescp and echoscu,
Orthanc (query, retrieve, doctor) and our own listener started from the screen."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode, save_nodes
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.network import NetworkScreen
from dicomtui.tui.screens.node_form import NodeForm
from dicomtui.tui.screens.send import SendScreen
from dicomtui.tui.widgets.tables import MarkTable
from tests.conftest import require_program
from tests.interop.test_dimse import free_port, storescp  # noqa: F401 - fixture
from tests.interop.test_orthanc import orthanc  # noqa: F401 - fixture

from .conftest import settle, text

pytestmark = pytest.mark.interop

SIZE = (120, 34)




def app_with_nodes(db_path: Path, tmp_path: Path, nodes: Nodes) -> DicomTuiApp:
    save_nodes(nodes, tmp_path / "nodes.toml")
    return DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml",
                       nodes_path=tmp_path / "nodes.toml")


async def test_add_edit_and_remove_a_node(db_path: Path, tmp_path: Path) -> None:
    app = app_with_nodes(db_path, tmp_path, Nodes())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "a")
        assert isinstance(app.screen, NodeForm)
        for field, value in [("#n-name", "pacs"), ("#n-ae", "THEIRS"), ("#n-host", "127.0.0.1"), ("#n-port", "0")]:
            app.screen.query_one(field, Input).value = value
        await pilot.press("ctrl+s")
        assert "port must be 1 to 65535" in text(app.screen.query_one("#n-error", Static))  # refused, as the CLI
        app.screen.query_one("#n-port", Input).value = "4242"
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = tomllib.loads((tmp_path / "nodes.toml").read_text())
        assert saved["nodes"]["pacs"]["ae_title"] == "THEIRS" and saved["nodes"]["pacs"]["port"] == 4242
        await pilot.press("u")
        app.screen.query_one("#n-name", Input).value = "archive"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert list(tomllib.loads((tmp_path / "nodes.toml").read_text())["nodes"]) == ["archive"]
        await pilot.press("x", "y")
        await pilot.pause()
        assert tomllib.loads((tmp_path / "nodes.toml").read_text())["nodes"] == {}


async def test_listener_echo_and_refused_connection(db_path: Path, tmp_path: Path) -> None:
    port = free_port()
    nodes = Nodes(LocalNode(ae_title="DICOMTUI", port=port, bind="127.0.0.1"),
                  {"self": RemoteNode("self", "DICOMTUI", "127.0.0.1", port, timeout=5)})
    app = app_with_nodes(db_path, tmp_path, nodes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "c")
        await settle(app, pilot)
        assert "cannot connect" in text(app.screen.query_one("#net-message", Static)).lower() or \
            "refused" in text(app.screen.query_one("#net-message", Static)).lower()
        await pilot.press("l")
        assert app.listener is not None and "Listener running" in text(app.screen.query_one("#listener-status"))
        echoscu = require_program("echoscu", "dcmtk")  # DCMTK reaches the listener the screen started
        assert subprocess.run([echoscu, "-aec", "DICOMTUI", "127.0.0.1", str(port)], timeout=30).returncode == 0
        await pilot.press("c")
        await settle(app, pilot)
        assert "answers C-ECHO" in text(app.screen.query_one("#net-message", Static))
        app.screen.refresh_listener()
        assert app.screen.query_one("#associations", DataTable).row_count >= 2
        app.open_database(tmp_path / "other")  # the listener moves with the database
        assert app.listener is not None and app.listener.db_path == tmp_path / "other"
        await pilot.press("l")
        assert app.listener is None
        await settle(app, pilot)  # stopped in a worker: open associations finish their writes


async def test_send_the_selection_to_storescp(db_path: Path, tmp_path: Path, storescp) -> None:  # noqa: F811
    node, received = storescp
    app = app_with_nodes(db_path, tmp_path, Nodes(remotes={"store": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "s")  # the 8-slice series
        assert isinstance(app.screen, SendScreen)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "8 sent, 0 with warnings, 0 failed" in text(app.screen.query_one("#send-summary", Static))
        assert len(list(received.rglob("*"))) >= 8


async def test_escape_cancels_a_send_between_instances(db_path: Path, tmp_path: Path, storescp,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The dialog hands its cancel event to the core's send: set (as Escape sets it) while the third instance
    goes, the send stops before the fourth, releases the association and the dialog says so."""
    from dicomtui.core.net import send as send_module

    node, received = storescp
    real_send = send_module.send
    handed = []

    def send_escaped_after_three(files, node, local, progress, cancel, **kwargs):
        handed.append(cancel)

        def progress_then_escape(done: int, total: int) -> None:
            progress(done, total)
            if done == 3:
                cancel.set()

        return real_send(files, node, local, progress_then_escape, cancel=cancel, **kwargs)

    monkeypatch.setattr("dicomtui.core.net.send.send", send_escaped_after_three)
    app = app_with_nodes(db_path, tmp_path, Nodes(remotes={"store": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "s")  # the 8-slice series
        screen = app.screen
        assert isinstance(screen, SendScreen)
        await pilot.press("enter")
        await settle(app, pilot)
        assert handed == [screen.cancel]
        summary = text(screen.query_one("#send-summary", Static))
        assert summary.startswith("Cancelled: the association was released")
        assert len([p for p in received.rglob("*") if p.is_file()]) == 3
        await pilot.press("escape")  # no longer running: Escape closes
        assert not isinstance(app.screen, SendScreen)


async def test_query_retrieve_and_doctor_against_orthanc(tmp_path: Path, orthanc) -> None:  # noqa: F811
    node, local = orthanc
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(local, {"orthanc": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        screen.query_one("#q-name", Input).value = "müller"
        screen.query_one("#q-name", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        results = screen.query_one("#query-results", MarkTable)
        assert results.row_count == 1 and results.get_row_at(0)[1] == "Müller^Hans"
        await pilot.press("enter")  # the study's series
        await settle(app, pilot)
        assert results.row_count == 2 and screen.level == "series"
        assert sorted(str(results.get_row_at(i)[5]) for i in range(2)) == ["CT", "MR"]
        await pilot.press("ctrl+a", "r")  # C-MOVE (the preset's method): the screen's listener is not running,
        await settle(app, pilot)  # so the core starts one for the duration
        assert "Done: 6 retrieved" in text(screen.query_one("#net-message", Static))
        with DicomDatabase.open(tmp_path / "db") as db:
            assert db.stats()["instances"] == 6
        screen.query_one("#nodes-table").focus()
        await pilot.press("D")
        await settle(app, pilot)
        report = text(screen.query_one("#net-message", Static))
        assert "✓ echo" in report and "✓ query" in report and "✓ move to us" in report


async def test_the_tui_listener_forwards_by_the_routes(db_path: Path, tmp_path: Path, series_folder: Path,
                                                        storescp) -> None:  # noqa: F811
    """A rule of routes.toml applies to what the TUI's own listener receives, as to `dicomtui listen`'s."""
    import time

    from dicomtui.core.forward import Route, Routes, save_routes

    node, received = storescp
    port = free_port()
    nodes = Nodes(LocalNode(ae_title="DICOMTUI", port=port, bind="127.0.0.1"), {"ref": node})
    save_routes(Routes(rules=[Route(to="ref")]))
    app = app_with_nodes(db_path, tmp_path, nodes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "l")
        assert app.listener is not None
        storescu = require_program("storescu", "dcmtk")
        subprocess.run([storescu, "-aec", "DICOMTUI", "+sd", "+r", "127.0.0.1", str(port), str(series_folder)],
                       timeout=60, check=True)
        deadline = time.monotonic() + 30
        while len([p for p in received.rglob("*") if p.is_file()]) < 15 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert len([p for p in received.rglob("*") if p.is_file()]) == 15
        await pilot.press("l")
        await settle(app, pilot)
