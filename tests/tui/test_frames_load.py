"""Issue 14 item 7 in the TUI: a series that is not one volume, loaded from the browser with Enter, is ONE
per-frame item (its images one by one, each at its own size) that t/T step and p plays at the file's rate; and the
load path's messages: what loading found beyond examine's warnings is said once, and an empty default selection
says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_pixels import structured_report, undecodable, write_datasets
from dicomtui.core.viewgeom import cine_rate
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.viewer import ViewerScreen
from dicomtui.tui.widgets.slice_view import SliceView
from tests.test_frames_view import mixed_us_series
from tests.tui.conftest import settle, text

SIZE = (120, 40)


def database(root: Path, write) -> Path:
    write(root / "in")
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    return root / "db"


def messages(app: DicomTuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def load_the_series(app: DicomTuiApp, pilot) -> None:
    await pilot.press("3", "enter")  # the series pane, Enter: the default loadables
    await settle(app, pilot)


async def test_a_mixed_size_series_is_one_item_stepped_with_t_and_played_with_p(tmp_path: Path) -> None:
    db_path = database(tmp_path, lambda folder: mixed_us_series(folder, cine_rate=40))
    app = DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await load_the_series(app, pilot)
        assert isinstance(app.screen, ViewerScreen), messages(app)
        (item,) = app.loaded  # one per-frame item, not one item per size
        assert item.name == "1: Axial (images one by one)" and len(item.volumes) == 4
        view = app.screen.query_one(SliceView)
        overlay = app.screen.query_one("#overlay")
        image = app.screen.query_one("#slice-image")
        assert "1/4: image 1: 60x40 MONOCHROME2" in text(overlay)
        assert image.grey.shape[0] / image.grey.shape[1] == pytest.approx(40 * 0.3 / (60 * 0.2), rel=0.1)
        await pilot.press("t")
        assert view.time == 1 and "2/4: image 2: 48x64 MONOCHROME2" in text(overlay)
        assert image.grey.shape[0] / image.grey.shape[1] == pytest.approx(64 * 0.6 / (48 * 0.4), rel=0.1)
        await pilot.press("T", "T")  # back past the first: wraps to the colour image
        assert view.time == 3 and "4/4: image 4: 24x20 RGB" in text(overlay)
        await pilot.press("plus", "shift+left", "l", "m")  # zoom, pan, cursor, measure a colour image
        assert view.zoom == 2 and view.cursor is not None and len(view.measure) == 1 and "voxel" in text(overlay)
        await pilot.press("p")
        # playing at the first image's CineRate (the 2 s notice saying so may be gone on a loaded machine)
        assert view.playing and cine_rate(item.volumes[0]) == 40
        await pilot.pause(0.3)
        await pilot.press("p")
        stopped = view.time
        await pilot.pause(0.1)
        assert view.time == stopped and not view.playing


async def test_what_a_load_found_is_said_once(tmp_path: Path) -> None:
    """A file no decoder reads: left out by name, the others load, and the user is told (examine could not know)."""
    def write(folder: Path) -> None:
        datasets = series_datasets(SeriesSpec(slices=4, rows=16, cols=16))
        datasets[1] = undecodable(datasets[1])
        write_datasets(folder, datasets)

    app = DicomTuiApp(database(tmp_path, write), renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await load_the_series(app, pilot)
        assert isinstance(app.screen, ViewerScreen)
        said = [m for m in messages(app) if "left out, unreadable" in m]
        assert len(said) == 1 and "IM00002.dcm" in said[0] and said[0].startswith("1: Axial: left out")
        await pilot.press("b", "enter")  # loaded again: said again, once for this load
        await settle(app, pilot)
        assert len([m for m in messages(app) if "left out, unreadable" in m]) == 2


async def test_nothing_loadable_says_why(tmp_path: Path) -> None:
    db_path = database(tmp_path, lambda folder: write_datasets(folder, [structured_report(SeriesSpec())]))
    app = DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await load_the_series(app, pilot)
        assert not app.loaded
        (said,) = [m for m in messages(app) if "Nothing loadable" in m]
        assert said.startswith("Nothing loadable in the selection: ") and "a structured report" in said, said


async def test_w_saves_the_image_shown_and_x_gives_a_loaded_items_memory_back(tmp_path: Path) -> None:
    """Images one by one cannot be one 4D file: w proposes the shown image, numbered. A closed item loaded from the
    browser is freed (the app's per-item bookkeeping holds it weakly)."""
    import gc
    import weakref

    import nibabel
    from textual.widgets import Input, Static

    db_path = database(tmp_path, mixed_us_series)
    app = DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        await load_the_series(app, pilot)
        await pilot.press("t", "w")
        field = app.screen.query_one("#save-path", Input)
        assert field.value.endswith("_2.nii.gz"), field.value
        field.value = str(tmp_path / "two.nii.gz")
        await pilot.press("enter")
        await settle(app, pilot)
        assert "Written" in text(app.screen.query_one("#save-result", Static))
        assert nibabel.load(tmp_path / "two.nii.gz").shape[:2] == (48, 64)
        await pilot.press("escape")
        alive = weakref.ref(app.loaded[0].volumes[0].array)
        await pilot.press("x")
        await pilot.pause()
        assert app.loaded == []
        gc.collect()
        assert alive() is None
