"""TUI fixtures: a generated database and the app on it, with the half-block renderer and no cursor blink."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.app import DicomTuiApp


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "cursor_blink", False)


def make_db(root: Path) -> Path:
    """Two patients: Doe^Jane with a CT study (an 8-slice axial series and a 6-slice series missing one slice),
    Roe^Rick with an MR study of 3 slices."""
    write_series(root / "in" / "a", SeriesSpec(patient_name="Doe^Jane", patient_id="J1", seed=1, slices=8,
                                               series_number=1, series_description="Axial"))
    gap = [(-16.0, -16.0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0, 12.0)]
    write_series(root / "in" / "b", SeriesSpec(patient_name="Doe^Jane", patient_id="J1", seed=1, slices=6,
                                               series_uid="1.2.826.0.1.3680043.9.7433.9.2", series_number=2,
                                               series_description="Gapped", positions=gap))
    write_series(root / "in" / "c", SeriesSpec(patient_name="Roe^Rick", patient_id="R2", seed=2, slices=3,
                                               modality="MR", study_description="MR brain",
                                               series_description="T1"))
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    return root / "db"


def text(widget) -> str:
    """What a Static (or any widget with a simple render) shows."""
    return str(widget.render())


async def settle(app: DicomTuiApp, pilot) -> None:
    """Let handlers run and workers finish, then let their results reach the screen."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return make_db(tmp_path)


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> DicomTuiApp:
    return DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml")
