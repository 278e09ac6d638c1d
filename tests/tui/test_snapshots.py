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


@pytest.fixture
def seg_app(request: pytest.FixtureRequest):
    """The app on a database at a fixed path holding a CT and a SEG of two segments on it (highdicom)."""
    import numpy as np

    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.indexer import import_paths
    from dicomtui.core.synth import SeriesSpec

    from ..seg_data import write_ct, write_seg

    root = Path(tempfile.gettempdir()) / f"dicomtui-snapshot-{request.node.name}"
    shutil.rmtree(root, ignore_errors=True)
    ct = write_ct(root / "in" / "ct", SeriesSpec(slices=6, rows=48, cols=48, pixel_spacing=(1.0, 1.0),
                                                 origin=(0.0, 0.0, 0.0)))
    labels = np.zeros((6, 48, 48), np.uint8)
    labels[1:5, 8:30, 8:30] = 1
    labels[1:5, 30:42, 20:40] = 2
    write_seg(root / "in" / "seg" / "seg.dcm", ct, labels)
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    app = DicomTuiApp(root / "db", renderer="halfblock", settings_path=root / "config.toml")
    yield app
    shutil.rmtree(root, ignore_errors=True)


def test_viewer_with_a_segmentation_overlay(snap_compare, seg_app: DicomTuiApp) -> None:
    """A SEG loaded from the database: its CT in the viewer, the segments' outlines in their colours, the legend."""
    async def run_before(pilot) -> None:
        await pilot.press("3", "down", "enter")  # the SEG series
        for _ in range(3):
            await _settle(pilot)

    assert snap_compare(seg_app, run_before=run_before, terminal_size=SIZE)
