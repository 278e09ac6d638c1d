"""The TUI start screen lists the database's patients (pilot test on a generated database)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.app import DicomTuiApp


async def test_start_screen_lists_patients(tmp_path: Path) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^Jane", patient_id="J1", seed=1, slices=2))
    write_series(tmp_path / "in" / "b", SeriesSpec(patient_name="Roe^Rick", patient_id="R2", seed=2, slices=3))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    app = DicomTuiApp(tmp_path / "db")
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one("#patients", DataTable)
        assert table.row_count == 2
        assert [table.get_row_at(i)[:2] for i in range(2)] == [["Doe^Jane", "J1"], ["Roe^Rick", "R2"]]
        assert "2 patients, 2 studies, 2 series, 5 instances" in str(app.query_one("#status", Static).render())
        with DicomDatabase.open(tmp_path / "db") as db:  # another process adds data; r re-reads
            write_series(tmp_path / "in" / "c", SeriesSpec(patient_name="Poe^Ed", patient_id="E3", seed=3))
            import_paths(db, [tmp_path / "in" / "c"])
        await pilot.press("r")
        assert table.row_count == 3


async def test_a_folder_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.txt").write_text("hello")
    app = DicomTuiApp(tmp_path / "x")
    async with app.run_test(size=(100, 20)):
        assert "not a dicomtui database" in str(app.query_one("#status", Static).render())
