"""Snapshot tests at a fixed terminal size (half-block images, no cursor blink). After an intended change of a
screen: `pytest tests/tui/test_snapshots.py --snapshot-update`, then look at the SVGs before committing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from dicomtui.tui.app import DicomTuiApp

from .conftest import make_db

SIZE = (120, 34)


@pytest.fixture
def fixed_app(request: pytest.FixtureRequest):
    """The app on a database at a fixed path (it shows in the header and the status line)."""
    root = Path(tempfile.gettempdir()) / f"dicomtui-snapshot-{request.node.name}"
    shutil.rmtree(root, ignore_errors=True)
    make_db(root)
    yield DicomTuiApp(root / "db", renderer="halfblock", settings_path=root / "config.toml")
    shutil.rmtree(root, ignore_errors=True)


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_browser(snap_compare, fixed_app: DicomTuiApp) -> None:
    assert snap_compare(fixed_app, press=["down", "space"], terminal_size=SIZE)


def test_examine_with_warnings(snap_compare, fixed_app: DicomTuiApp) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("tab", "tab", "end", "e")
        await _settle(pilot)

    assert snap_compare(fixed_app, run_before=run_before, terminal_size=SIZE)


def test_viewer(snap_compare, fixed_app: DicomTuiApp) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("tab", "tab", "enter")
        await _settle(pilot)
        await pilot.press("up", "up")

    assert snap_compare(fixed_app, run_before=run_before, terminal_size=SIZE)
