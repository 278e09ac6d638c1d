"""The network screen's listener panel (issue 20), driven by the pilot: what ``dicomtui status`` says (received
today, free disk against the floor, refusing), and a listener already serving this database from another process
(``dicomtui listen`` started by the test, as a service would run it), which the screen names and does not
duplicate; instances sent to it by DCMTK storescu."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.nodes import LocalNode, Nodes
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.screens.network import NetworkScreen
from tests.conftest import require_program
from tests.interop.test_dimse import free_port

from .conftest import settle, text
from .test_network import SIZE, app_with_nodes

pytestmark = pytest.mark.interop


def panel(screen) -> str:
    return text(screen.query_one("#listener-status", Static))


async def read_status(app, pilot, screen: NetworkScreen) -> None:
    """Read the status now (the screen does every few seconds) and let it reach the panel."""
    screen.read_status()
    await settle(app, pilot)


def wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_the_panel_names_a_service_listener_and_does_not_start_a_second(tmp_path: Path) -> None:
    storescu = require_program("storescu", "dcmtk")
    root, port = tmp_path / "db", free_port()
    DicomDatabase.open(root).close()
    service = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(root), "listen", "--port", str(port),
                                "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: (root / f"listener-{port}.lock").exists()), service.stderr
        files = write_series(tmp_path / "in", SeriesSpec(slices=3))
        sent = subprocess.run([storescu, "-aec", "DICOMTUI", "127.0.0.1", str(port), *map(str, files)],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "TCP_NODELAY": "1"})
        assert sent.returncode == 0, sent.stderr
        app = app_with_nodes(root, tmp_path, Nodes(LocalNode(port=port, bind="127.0.0.1", min_free_bytes=0)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            screen = app.screen
            assert isinstance(screen, NetworkScreen)

            def received() -> bool:
                with DicomDatabase.open(root) as db:
                    return db.stats()["instances"] == 3

            assert wait_for(received)
            await read_status(app, pilot, screen)
            shown = panel(screen)
            assert f"Served by the service listener (pid {service.pid}): DICOMTUI on 127.0.0.1:{port} since " in shown
            assert "received today: 3" in shown and " free, no floor" in shown and "REFUSING" not in shown
            await pilot.press("l")
            await settle(app, pilot)
            assert app.listener is None  # not a second listener into this database
            assert text(screen.query_one("#net-message", Static)).startswith(
                f"✗ Served by the service listener (pid {service.pid})")
    finally:
        service.terminate()
        service.wait(timeout=30)
        service.stderr.close()  # type: ignore[union-attr]


async def test_the_panel_says_the_floor_and_refusing(tmp_path: Path) -> None:
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    starved = LocalNode(port=free_port(), bind="127.0.0.1", min_free_bytes=1 << 62)  # more than any disk holds
    app = app_with_nodes(root, tmp_path, Nodes(starved))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        await read_status(app, pilot, screen)
        shown = panel(screen)
        assert shown.startswith("Listener stopped (l starts it as DICOMTUI on 127.0.0.1:")
        assert "received today: 0" in shown and ", floor 4294967296.0 GiB" in shown
        assert "REFUSING new instances" in shown
        await pilot.press("l")  # ours starts (no other listener serves this database) and shows in the panel
        await settle(app, pilot)
        assert app.listener is not None
        await read_status(app, pilot, screen)
        assert panel(screen).startswith(f"Listener running as DICOMTUI on 127.0.0.1:{starved.port}")
        assert "Served by" not in panel(screen)  # our own identity file is not a service
        await pilot.press("l")
        await settle(app, pilot)
    assert app.listener is None


def test_status_words_show_open_associations_and_forwards() -> None:
    """Open associations (a count or a list) and pending forwards (summed over the nodes, as ``status`` gives
    them per node) are shown when status has them, and the panel works without them."""
    from dicomtui.tui.screens.network_text import service_text, status_line

    entry = {"pid": 12, "ae_title": "RESEARCH", "bind": "0.0.0.0", "port": 11112, "since": "2026-11-30T08:00:00+00:00"}
    assert service_text(entry) == ("Served by the service listener (pid 12): RESEARCH on 0.0.0.0:11112 since "
                                   "2026-11-30 08:00  ·  l does not start a second one")
    assert "2 associations open" in service_text(replace_dict(entry, open_associations=2))
    assert "1 association open" in service_text(replace_dict(entry, associations=[{"calling_ae": "CT1"}]))
    base = {"received_today": 1234, "disk": {"free": 3 * 2**30, "min_free": 2**30, "refusing": False}}
    assert status_line(base) == "received today: 1,234  ·  disk: 3.0 GiB free, floor 1.0 GiB"
    forwards = {"PACS": {"pending": 3, "sent": 9}, "BACKUP": {"pending": 1, "failed": 1}}
    assert status_line({**base, "forwards": forwards}).endswith("forwards: 4 pending, 1 failed")
    assert status_line({**base, "forwards": {"PACS": {"sent": 9}}}) == status_line(base)


def replace_dict(entry: dict, **changes) -> dict:
    return {**entry, **changes}
