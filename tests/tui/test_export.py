"""The export screen, driven by the pilot: x on the browser's selection, a folder, the layout and switches, the
files written with names from the data; an existing folder refused; Escape cancels between files, then closes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static, Switch

from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens import export as export_screen
from dicomtui.tui.screens.browser import BrowserScreen
from dicomtui.tui.screens.export import ExportScreen

from .conftest import make_db, settle, text

SIZE = (120, 34)
SERIES = "J1_Doe_Jane/20240115_Synthetic_study/1_Axial"


async def _open(app: DicomTuiApp, pilot, folder: Path) -> ExportScreen:
    await pilot.press("3", "x")  # the series pane: its cursor is on the 8-slice series
    screen = app.screen
    assert isinstance(screen, ExportScreen)
    assert text(screen.query_one(".pane-title")) == "Export series 1 Axial (8 files)"
    screen.query_one("#x-folder", Input).value = str(folder)
    return screen


async def test_x_exports_the_selected_series_then_refuses_to_overwrite(app: DicomTuiApp, tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, out)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        summary = text(screen.query_one("#x-summary", Static))
        assert summary.startswith(f"exported 8 files (0.1 MB) of 8 to {out} in ") and "(layout tree)" in summary
        assert sorted(p.name for p in (out / SERIES).iterdir()) == [f"{n:04d}.dcm" for n in range(1, 9)]

        await pilot.press("ctrl+s")  # the same folder again: nothing is overwritten
        await settle(app, pilot)
        assert "already exist; nothing was exported" in text(screen.query_one("#x-summary", Static))

        screen.query_one("#x-layout", Select).value = "flat"
        screen.query_one("#x-zip", Switch).value = True
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "(layout flat, ZIP)" in text(screen.query_one("#x-summary", Static))
        assert (tmp_path / "out.zip").is_file()
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)


async def test_escape_cancels_between_files_and_problems_are_listed(app: DicomTuiApp, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen hands its cancel event to the core's export: set while the third file is written (as Escape
    sets it while the export runs), the export stops before the fourth and the screen says so."""
    real = export_screen.export_files
    handed = []

    def export_files(plan, folder, options, progress, cancel):
        handed.append(cancel)

        def at_third(done: int, total: int) -> None:
            progress(done, total)
            if done == 3:
                cancel.set()

        return real(plan, folder, options, at_third, cancel)

    monkeypatch.setattr(export_screen, "export_files", export_files)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, tmp_path / "out")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert handed == [screen.cancel]
        assert "cancelled: 5 files not exported" in text(screen.query_one("#x-summary", Static))
        assert len(list((tmp_path / "out" / SERIES).iterdir())) == 3

        monkeypatch.setattr(export_screen, "export_files", real)
        screen.query_one("#x-folder", Input).value = str(tmp_path / "second")
        linked = Path(app.db.instance_files(screen.items)[0]["path"])  # the test database links its files
        linked.rename(linked.with_suffix(".moved"))  # a linked file that has gone: a row, not an error
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "exported 7 files (0.1 MB) of 8" in text(screen.query_one("#x-summary", Static))
        problems = screen.query_one("#x-problems", DataTable)
        assert problems.display and problems.row_count == 1
        assert "missing" in str(problems.get_row_at(0)[1])
        screen.action_cancel_or_close()  # not running: closes
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)



def test_export_screen_snapshot(snap_compare) -> None:
    """The form as the user first sees it at 120×34: the database at a fixed path (it shows in the header), the
    folder field set to a fixed path (the default one depends on where dicomtui runs)."""
    root = Path(tempfile.gettempdir()) / "dicomtui-snapshot-export"
    shutil.rmtree(root, ignore_errors=True)
    make_db(root)

    async def run_before(pilot) -> None:
        await pilot.press("3", "x")
        pilot.app.screen.query_one("#x-folder", Input).value = "/home/user/export"
        await pilot.pause()

    try:
        app = DicomTuiApp(root / "db", renderer="halfblock", settings_path=root / "config.toml")
        assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
    finally:
        shutil.rmtree(root, ignore_errors=True)
