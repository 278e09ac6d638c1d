"""Issue 11 item 12 in the viewer: a MONOCHROME1 radiograph is drawn with its lowest values white (inverted after
the window), the MONOCHROME2 one of the same values black; what the half-block image shows is compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_pixels import write_datasets
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.viewer import ViewerScreen

from .conftest import settle


@pytest.mark.parametrize("photometric, background", [("MONOCHROME2", 0), ("MONOCHROME1", 255)])
async def test_monochrome1_is_drawn_inverted(tmp_path: Path, photometric: str, background: int) -> None:
    datasets = series_datasets(SeriesSpec(slices=3))
    for ds in datasets:
        ds.PhotometricInterpretation = photometric
    write_datasets(tmp_path / "in", datasets)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("3", "enter")  # the series pane, load
        await settle(app, pilot)
        assert isinstance(app.screen, ViewerScreen)
        shown = app.screen.query_one("#slice-image").grey  # the window is the file's: C 40, W 400
        # the phantom's background is stored 1 (-1023 HU, below the window): black, or white for MONOCHROME1
        assert int(shown[0, 0]) == background and int(shown[shown.shape[0] // 2, shown.shape[1] // 2]) not in (0, 255)


@pytest.mark.parametrize("renderer", ["halfblock", "sixel", "kitty"])
async def test_a_colour_series_is_drawn_in_colour_by_every_renderer(tmp_path: Path, renderer: str) -> None:
    """Issue 11 item 7 through the renderers of issue 14: an RGB series reaches the half-block, sixel and kitty
    widgets as (H, W, 3) and is drawn in its colours (the phantom's red, green and blue ramps survive), with the
    pixel cursor reading R/G/B."""
    import numpy as np

    from dicomtui.core.synth_pixels import colour_series

    write_datasets(tmp_path / "in", colour_series(SeriesSpec(slices=3, rows=32, cols=32)))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    app = DicomTuiApp(tmp_path / "db", renderer=renderer, settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("3", "enter")  # the series pane, load
        await settle(app, pilot)
        assert isinstance(app.screen, ViewerScreen)
        image = app.screen.query_one("#slice-image")
        shown = image.grey if renderer == "halfblock" else image.pixels
        assert shown.ndim == 3 and shown.shape[2] == 3
        assert np.ptp(shown[..., 0].astype(int) - shown[..., 1].astype(int)) > 50  # not grey
        if renderer != "halfblock":
            assert image.escape((image.size.width, image.size.height))  # encodes without error
        await pilot.press("plus", "l", "shift+right", "tab")  # zoomed, the cursor, panned, the coronal plane
        await pilot.pause()
        await pilot.press("tab", "tab", "l")  # back to axial: the pixel cursor reads an R/G/B value
        await pilot.pause()
        assert "/" in str(app.screen.view.readout).split("=")[-1]
