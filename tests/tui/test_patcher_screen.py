"""The patcher screen, driven by the pilot: ctrl+r on the import screen, a broken folder, ctrl+s writes the fixed
copies with the report as a table, ctrl+o imports them (copy mode) through the import screen; a destination
inside the source is refused in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, RadioButton, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.import_ import ImportScreen
from dicomtui.tui.screens.patcher import PatcherScreen, default_destination

from .. import patcher_fixtures as fx
from .conftest import settle, text

SIZE = (120, 40)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the fixtures write invalid values on purpose


async def _open(app: DicomTuiApp, pilot, source: Path) -> PatcherScreen:
    await pilot.press("i")
    assert isinstance(app.screen, ImportScreen)
    app.screen.query_one("#import-path", Input).value = str(source)
    await pilot.press("ctrl+r")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PatcherScreen)
    assert screen.query_one("#p-source", Input).value == str(source)
    assert screen.query_one("#p-dest", Input).value == f"{source}-patched"
    return screen


async def test_ctrl_r_patches_a_broken_folder_then_ctrl_o_imports_the_result(tmp_path: Path) -> None:
    source = tmp_path / "broken"
    fx.missing_ids(source)
    (source / "notes.txt").write_text("not DICOM\n" * 10)
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, source)
        assert all(box.value for box in screen.query("#p-rules Checkbox").results(Checkbox))
        assert not screen.query_one("#p-dry-run", Checkbox).value
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        summary = text(screen.query_one("#p-summary", Static))
        assert summary.startswith(f"Wrote 5 files into {source}-patched") and "1 file skipped" in summary
        table = screen.query_one("#p-report", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert ("PatientA/s1/IM0.dcm", "ids",
                "PatientID was missing: 'PatientA' (the patient folder's name)") in [tuple(r) for r in rows]
        assert tuple(rows[-1][:2]) == ("notes.txt", "skipped")
        assert not screen.query_one("#p-import", Button).disabled

        await pilot.press("ctrl+o")
        await settle(app, pilot)
        importer = app.screen
        assert isinstance(importer, ImportScreen)
        assert importer.query_one("#import-path", Input).value == f"{source}-patched"
        assert importer.query_one("#mode-copy", RadioButton).value
        assert "2 series, 5 instances added" in text(importer.query_one("#import-summary", Static))
    with DicomDatabase.open(tmp_path / "fresh") as db:
        assert len(db.instances()) == 5


async def test_a_destination_inside_the_source_is_refused_rules_can_be_left_out_and_dry_run(tmp_path: Path) -> None:
    source = tmp_path / "broken"
    fx.missing_ids(source)
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, source)
        screen.query_one("#p-dest", Input).value = str(source / "fixed")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "never in place" in text(screen.query_one("#p-summary", Static))
        assert screen.query_one("#p-import", Button).disabled

        for box in screen.query("#p-rules Checkbox").results(Checkbox):
            box.value = False
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert text(screen.query_one("#p-summary", Static)) == "Nothing patched: choose at least one rule."

        screen.query_one("#p-rule-dates", Checkbox).value = True
        screen.query_one("#p-dest", Input).value = str(tmp_path / "out")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "0 changed" in text(screen.query_one("#p-summary", Static))  # no dates to fix there

        screen.query_one("#p-rule-ids", Checkbox).value = True
        screen.query_one("#p-dry-run", Checkbox).value = True
        screen.query_one("#p-dest", Input).value = str(tmp_path / "dry")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert text(screen.query_one("#p-summary", Static)).startswith("Would write 5 files")
        assert not (tmp_path / "dry").exists() and screen.query_one("#p-import", Button).disabled
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ImportScreen)


def test_the_default_destination_is_beside_the_source() -> None:
    assert default_destination("/data/scans/") == "/data/scans-patched"
    assert default_destination("") == ""
