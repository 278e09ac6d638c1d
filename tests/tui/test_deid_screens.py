"""De-identification in the TUI (issue 17), driven by the pilot: the export screen's switch and profile options
write de-identified files named without the data's names, the mapping kept in the database folder; the preview
shows the diff of one file and steps through the selection; files that may show identity in their pixels are
listed and exported only once ticked."""

from __future__ import annotations

from pathlib import Path

import pydicom
from textual.widgets import DataTable, Input, SelectionList, Static, Switch

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.deid_preview import DeidPreviewScreen
from dicomtui.tui.screens.export import ExportScreen

from .conftest import settle, text

SIZE = (120, 40)


async def _deid_export_screen(app: DicomTuiApp, pilot, folder: Path) -> ExportScreen:
    await pilot.press("3", "x")  # the series pane: its cursor is on the first series
    screen = app.screen
    assert isinstance(screen, ExportScreen)
    screen.query_one("#x-folder", Input).value = str(folder)
    screen.query_one("#deid-on", Switch).value = True
    await settle(app, pilot)  # the burned-in look runs in a worker
    return screen


async def test_export_deidentified_from_the_screen(app: DicomTuiApp, db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with app.run_test(size=SIZE) as pilot:
        screen = await _deid_export_screen(app, pilot, out)
        options = screen.query_one("#deid-options", SelectionList)
        assert options.display and not options.disabled
        options.select("modified-dates")
        assert "No file may show identity" in text(screen.query_one("#deid-burned-text", Static))
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert text(screen.query_one("#x-summary", Static)).startswith("exported 8 files")
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 8 and all("Doe" not in str(p) and "J1" not in str(p) for p in files)
    pseudonym = database_mapping(db_path).known_patient("J1").pseudonym
    for path in files:
        data = path.read_bytes()
        assert b"Doe^Jane" not in data
        ds = pydicom.dcmread(path)
        assert ds.PatientID == pseudonym and ds.PatientIdentityRemoved == "YES"
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


async def test_the_preview_shows_one_file_and_steps_through_the_selection(app: DicomTuiApp, db_path: Path,
                                                                          tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        screen = await _deid_export_screen(app, pilot, tmp_path / "out")
        screen.query_one("#deid-preview").press()
        await pilot.pause()
        preview = app.screen
        assert isinstance(preview, DeidPreviewScreen)
        table = preview.query_one("#deid-changes", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert any(row[1] == "PatientName" and row[2] == "Doe^Jane" and row[3] == "DEID-" + row[3][5:]
                   for row in rows)
        assert ["added", "PatientIdentityRemoved", "", "YES"] in rows
        await pilot.pause()
        # every column fits in the dialog: the After column (the point of a preview) is not cut off at 120 columns
        used = sum(column.get_render_width(table) for column in table.columns.values())
        assert used <= table.scrollable_content_region.width, (used, table.scrollable_content_region.width)
        title = text(preview.query_one("#deid-preview-title"))
        assert title.startswith("De-identifying file 1 of 8")
        await pilot.press("n")
        assert text(preview.query_one("#deid-preview-title")).startswith("De-identifying file 2 of 8")
        await pilot.press("escape")
        assert app.screen is screen
    assert database_mapping(db_path).known_patient("J1") is None  # a preview adds nothing to the mapping


async def test_burned_in_files_are_listed_and_exported_only_when_ticked(tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(modality="US", patient_id="USPAT", patient_name="Sono^Sam", slices=3))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    out = tmp_path / "out"
    async with app.run_test(size=SIZE) as pilot:
        screen = await _deid_export_screen(app, pilot, out)
        assert "3 files may show identity in the pixels" in text(screen.query_one("#deid-burned-text", Static))
        burned = screen.query_one("#deid-burned", SelectionList)
        assert burned.display and burned.option_count == 3
        burned.select(burned.get_option_at_index(1).value)  # the user checked this one
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        summary = text(screen.query_one("#x-summary", Static))
        assert summary.startswith("exported 1 file") and "2 files may show identity" in summary
    assert len(list(out.rglob("*.dcm"))) == 1
