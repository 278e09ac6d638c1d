"""The TUI driven by Textual's pilot on a generated database: browser, import, delete, metadata, examine,
viewer, databases, settings and help."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.browser import BrowserScreen
from dicomtui.tui.screens.confirm import ConfirmScreen
from dicomtui.tui.screens.examine import ExamineScreen
from dicomtui.tui.screens.import_ import ImportScreen, complete_directory
from dicomtui.tui.screens.metadata import MetadataScreen
from dicomtui.tui.screens.viewer import ViewerScreen
from dicomtui.tui.widgets.tables import MarkTable

from .conftest import settle, text

SIZE = (120, 34)


def rows(app: DicomTuiApp, level: str) -> list[list[str]]:
    table = app.screen.query_one(f"#{level}-table", MarkTable)
    return [table.get_row_at(i)[1:] for i in range(table.row_count)]




async def test_browser_panes_narrow_each_other(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        assert [r[:2] for r in rows(app, "patient")] == [["Doe^Jane", "J1"], ["Roe^Rick", "R2"]]
        assert [r[:2] for r in rows(app, "study")] == [["2024-01-15", "Synthetic study"]]
        assert [r[2] for r in rows(app, "series")] == ["Axial", "Gapped"]
        assert "2 patients, 2 studies, 3 series, 17 instances" in text(app.screen.query_one("#status", Static))
        await pilot.press("down")  # cursor on Roe: his study and series
        assert [r[1] for r in rows(app, "study")] == ["MR brain"]
        assert [r[2] for r in rows(app, "series")] == ["T1"]
        await pilot.press("up", "space", "down", "space")  # both marked: both studies
        assert len(rows(app, "study")) == 2
        assert [r[2] for r in rows(app, "series")] == ["Axial", "Gapped"]  # the series of the study at the cursor
        await pilot.press("tab", "ctrl+a")  # every study marked: every series
        assert len(rows(app, "series")) == 3
        assert "4 marked" in text(app.screen.query_one("#status", Static))


async def test_filter_as_you_type_and_keep_the_cursor(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"roe")
        assert [r[0] for r in rows(app, "patient")] == ["Roe^Rick"]
        await pilot.press("backspace", "backspace", "backspace", "escape")
        assert len(rows(app, "patient")) == 2
        await pilot.press("slash", *"j?")  # a wildcard matches a whole value: the ID J1
        assert [r[0] for r in rows(app, "patient")] == ["Doe^Jane"]
        await pilot.press("backspace", "backspace", *"r2", "enter")  # the ID column matches too
        assert [r[0] for r in rows(app, "patient")] == ["Roe^Rick"]


async def test_a_patient_name_typed_in_the_studies_filter_finds_their_studies(app: DicomTuiApp) -> None:
    """The studies pane shows the patient's name, so its filter finds it (it listed 0 studies before the column
    model: the studies' search did not look at the patient's columns)."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space", "down", "space")  # both patients marked: both their studies listed
        await pilot.press("tab", "slash", *"rick")
        assert app.screen.focused.id == "study-filter"
        assert [r[1] for r in rows(app, "study")] == ["MR brain"]
        assert "Studies (1)" in str(app.screen.query_one("#study-title").render())
        await pilot.press(*["backspace"] * 4, *"doe^jane")
        assert [r[1] for r in rows(app, "study")] == ["Synthetic study"]
        await pilot.press(*["backspace"] * 8, *"r2")  # and the PatientID, which ls studies shows
        assert [r[1] for r in rows(app, "study")] == ["MR brain"]


async def test_keys_typed_right_after_slash_reach_the_filter(app: DicomTuiApp) -> None:
    """A burst (a paste, a slow ssh link: one terminal read) of / and text: the text lands in the filter box,
    and a / typed in the box is a character."""
    from textual import events

    async with app.run_test(size=SIZE) as pilot:
        for key, char in [("slash", "/"), ("r", "r"), ("o", "o"), ("e", "e")]:
            app.post_message(events.Key(key, char))
        await pilot.pause()
        assert app.screen.query_one("#patient-filter", Input).value == "roe"
        await pilot.press("slash")
        assert app.screen.query_one("#patient-filter", Input).value == "roe/"


async def test_the_browser_sees_another_process_add_data(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")  # the cursor stays on Roe^Rick when a patient sorted before him appears
        write_series(tmp_path / "more", SeriesSpec(patient_name="Abe^Al", patient_id="A0", seed=9, slices=2))
        with DicomDatabase.open(app.db_path) as other:
            import_paths(other, [tmp_path / "more"])
        app.screen.poll()  # what the 2-second timer runs
        await pilot.pause()
        assert [r[0] for r in rows(app, "patient")] == ["Abe^Al", "Doe^Jane", "Roe^Rick"]
        table = app.screen.query_one("#patient-table", MarkTable)
        assert table.get_row_at(table.cursor_row)[1] == "Roe^Rick"


async def test_import_through_the_modal(tmp_path: Path) -> None:
    folder = tmp_path / "incoming data"
    write_series(folder / "s", SeriesSpec(patient_name="New^Patient", patient_id="N1", slices=4, seed=5))
    (folder / "notes.txt").write_text("not DICOM")
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        assert "empty: press i" in text(app.screen.query_one("#status", Static))
        await pilot.press("i")
        assert isinstance(app.screen, ImportScreen)
        path_input = app.screen.query_one("#import-path", Input)
        path_input.value = str(folder)
        await pilot.press("enter")
        await settle(app, pilot)
        summary = text(app.screen.query_one("#import-summary", Static))
        assert "1 patient, 1 study, 1 series, 4 instances added" in summary and "1 rejected" in summary
        rejected = app.screen.query_one("#import-rejected", DataTable)
        assert rejected.row_count == 1 and "notes.txt" in str(rejected.get_row_at(0)[0])
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)
        assert [r[0] for r in rows(app, "patient")] == ["New^Patient"]


async def test_a_large_import_uses_the_worker_processes(tmp_path: Path) -> None:
    """Over POOL_THRESHOLD files the importer starts processes from the TUI's worker thread (forkserver), while
    Textual has replaced sys.stderr: that used to fail with "bad value(s) in fds_to_keep"."""
    from dicomtui.core.indexer import POOL_THRESHOLD
    from dicomtui.core.synth import replicate

    template = write_series(tmp_path / "t", SeriesSpec(slices=50, rows=8, cols=8))
    replicate(template, POOL_THRESHOLD // 50 + 1, tmp_path / "many", patients=3)
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        screen.query_one("#import-path", Input).value = str(tmp_path / "many")
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.report is not None, text(app.screen.query_one(".details", Static))
        assert screen.report.instances_added == (POOL_THRESHOLD // 50 + 1) * 50


async def test_escape_cancels_a_running_import(tmp_path: Path) -> None:
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        screen.cancel_event.set()  # as Escape does while running: the import stops at the next batch
        write_series(tmp_path / "s", SeriesSpec(slices=3))
        screen.query_one("#import-path", Input).value = str(tmp_path / "s")
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.report is not None and screen.report.cancelled
        assert "Import cancelled" in text(screen.query_one("#import-summary", Static))


def test_directory_completion(tmp_path: Path) -> None:
    (tmp_path / "studies-2024").mkdir()
    (tmp_path / "studies-2025").mkdir()
    (tmp_path / "study.txt").write_text("")
    assert complete_directory(str(tmp_path / "stu")) == str(tmp_path / "studies-2024") + "/"
    assert complete_directory(str(tmp_path / "studies-2025")) is None  # complete already
    assert complete_directory(str(tmp_path / "nothing")) is None


async def test_delete_asks_and_keeps_linked_files(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab")  # the series table
        assert app.screen.focused.id == "series-table"
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "8 instances" in app.screen.details and "8 linked files stay" in app.screen.details
        await pilot.press("n")
        assert len(rows(app, "series")) == 2
        await pilot.press("d", "y")
        await settle(app, pilot)
        assert [r[2] for r in rows(app, "series")] == ["Gapped"]
        assert len(list((tmp_path / "in" / "a").iterdir())) == 8  # linked files are never deleted


async def test_metadata_screen_filters_steps_and_folds(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, MetadataScreen)
        table = screen.query_one("#metadata-table", MarkTable)
        keywords = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert "PatientName" in keywords and "TransferSyntaxUID" in keywords
        assert "file 1/8" in text(screen.query_one("#metadata-file", Static))
        await pilot.press("n")
        assert "file 2/8" in text(screen.query_one("#metadata-file", Static))
        await pilot.press("slash", *"patientname")
        assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == ["PatientName"]
        assert "Doe^Jane" in str(table.get_row_at(0)[3])
        screen.query_one("#metadata-filter", Input).value = "re:("
        await pilot.pause()
        assert "regular expression" in text(screen.query_one("#metadata-status", Static)).lower()
        await pilot.press("escape")  # leaves the filter box…
        assert isinstance(app.screen, MetadataScreen)
        await pilot.press("escape")  # …then the screen
        assert isinstance(app.screen, BrowserScreen)


async def test_examine_shows_warnings_and_asks_before_loading(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "down", "e")  # the gapped series
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ExamineScreen)
        assert any(item.selected for item in screen.loadables)
        warnings = text(screen.query_one("#loadable-warnings", Static))
        assert "missing" in warnings.lower()
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Load anyway?" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, ViewerScreen)


async def test_a_second_enter_does_not_load_twice_and_a_load_does_not_close_a_dialog(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab")
        series = app.screen.selected_series()
        app.load_series(series)
        app.load_series(series)  # Enter again while the first load runs
        await settle(app, pilot)
        assert len(app.loaded) == 1
        await pilot.press("escape", "i")
        first = app.loaded[0]
        app._loaded([first])  # a load that ends while the import dialog is open
        await pilot.pause()
        assert isinstance(app.screen, ImportScreen) and len(app.loaded) == 2


async def test_viewer_steps_slices_planes_windows_and_saves(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "enter")  # the 8-slice axial series, no warnings
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ViewerScreen)
        overlay = screen.query_one("#overlay", Static)
        assert "axial 5/8" in text(overlay)
        await pilot.press("up")
        assert "axial 6/8" in text(overlay) and "S 10.0 mm" in text(overlay)  # the side's letter, no sign
        await pilot.press("end")
        assert "axial 8/8" in text(overlay)
        await pilot.press("home", "down")
        assert "axial 1/8" in text(overlay)
        await pilot.press("tab")
        assert "coronal 33/64" in text(overlay)
        await pilot.press("2")
        preset = screen.item.volume.windows[1]
        labels = "\n".join(screen.view.render_line(y).text for y in range(screen.view.size.height))
        assert f"W {preset.width:.0f} L {preset.center:.0f} ({preset.name})" in labels  # in the image's corner
        await pilot.press("l")
        assert "= " in text(overlay)  # the pixel value under the cursor
        image = screen.query_one("#slice-image")
        assert image.size.width > 10 and "▀" in image.render_line(image.size.height // 2).text
        await pilot.press("w")
        path = tmp_path / "out.nii.gz"
        app.screen.query_one("#save-path", Input).value = str(path)
        await pilot.press("enter")
        await settle(app, pilot)
        assert path.is_file()
        assert "Written" in text(app.screen.query_one("#save-result", Static))


async def test_open_and_create_databases(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        app.screen.query_one("#database-path", Input).value = str(tmp_path / "second")
        await pilot.press("enter", "y")  # not a database yet: asked before it is created
        await pilot.pause()
        assert app.db.root == tmp_path / "second" and rows(app, "patient") == []
        assert text(app.screen.query_one("#status", Static)).startswith("0 patients")  # not the old counts
        saved = tomllib.loads((tmp_path / "config.toml").read_text())
        assert saved["recent_databases"][0] == str(tmp_path / "second")
        await pilot.press("o")
        await pilot.press("enter")  # the recent list: the first database
        await pilot.pause()
        assert app.db.root == tmp_path / "db" and len(rows(app, "patient")) == 2


async def test_settings_are_saved_and_the_keymap_applies(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("comma")
        app.screen.query_one("#set-keymap", Input).value = "imprt=ctrl+t"
        await pilot.press("ctrl+s")
        assert "no binding has the id 'imprt'" in text(app.screen.query_one("#settings-error", Static))
        app.screen.query_one("#set-keymap", Input).value = "import=ctrl+t; quit=ctrl+q,q"
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = tomllib.loads((tmp_path / "config.toml").read_text())
        assert saved["keymap"] == {"import": "ctrl+t", "quit": "ctrl+q,q"}  # alternatives inside one entry
        await pilot.press("ctrl+t")
        assert isinstance(app.screen, ImportScreen)
        await pilot.press("escape", "question_mark")
        table = app.screen.query_one("#help-table", MarkTable)
        assert ("everywhere", "ctrl+q q", "quit", "Leave dicomtui") in [
            tuple(table.get_row_at(i)) for i in range(table.row_count)]  # help shows the remap


async def test_help_lists_every_binding_with_its_id(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        table = app.screen.query_one("#help-table", MarkTable)
        ids = {table.get_row_at(i)[2] for i in range(table.row_count)}
        assert {"load", "import", "delete", "metadata", "examine", "slice_next", "save", "quit"} <= ids


async def test_a_folder_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.txt").write_text("hello")
    app = DicomTuiApp(tmp_path / "x", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE):
        assert "not a dicomtui database" in text(app.screen.query_one("#status", Static))


async def test_long_results_scroll_with_the_cursor(tmp_path: Path) -> None:
    """Only the rows on screen are drawn; the cursor scrolls the table, End goes to the last row, marks (ctrl+a)
    cover every row, and a refill keeps the cursor on its record."""
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#patient-table", MarkTable)
        table.focus()
        table.fill([{"id": n, "PatientName": f"P{n:04d}"} for n in range(450)])
        await pilot.pause()
        assert table.row_count == 450 and table.scroll_y == 0
        await pilot.press("end")
        assert table.cursor_row == 449 and table.scroll_y > 400
        assert "P0449" in table.render_line(table.scrollable_content_region.height - 1).text
        await pilot.press("ctrl+a")
        assert len(table.selection()) == 450 and table.get_row_at(449)[0] == "●"
        await pilot.press("home", "pagedown")
        assert table.cursor_row > 10 and table.cursor_key == str(table.cursor_row)
        table.fill([{"id": n, "PatientName": f"P{n:04d}"} for n in range(100, 450)])  # a refill keeps the cursor
        assert table.cursor_key == str(table.rows_by_key[table.cursor_key]["id"])
        assert int(table.cursor_key) > 10
