"""An enhanced multi-frame time series opened from the browser is ONE viewer item of all its time points
(core/examine/multiframe.py's 4D loadable): t steps through them, and W offers "All 4 volumes" and saves them as
one new series that our loader reads back as the same 4D image."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import RadioButton

from tests.test_multiframe_4d import TIME_POINTS, time_series
from tests.tui.test_save_series_4d import SIZE, app_on, assert_same, open_form, save, stored


async def test_w_on_an_enhanced_time_series_offers_all_its_volumes(tmp_path: Path) -> None:
    db_path, app = app_on(tmp_path, lambda folder: time_series(folder / "dce.dcm"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot, steps=1)  # the second time point shown
        (item,) = app.loaded
        assert item.name == "1: DCE (4 volumes over 4 time points)"
        volumes = list(item.volumes)
        assert [v.extra["value"] for v in volumes] == list(range(1, TIME_POINTS + 1))
        everything = screen.query_one("#series-all", RadioButton)
        assert everything.value and f"All {TIME_POINTS} volumes (one series" in str(everything.label)
        assert "t = 2 of 4: TemporalPositionIdentifier 2" in str(screen.query_one("#series-shown", RadioButton).label)
        result = await save(app, pilot, screen, 1020)
        assert f"20 images ({TIME_POINTS} volumes of 5 slices)" in result, result

    heads, back, plugin = stored(db_path, 1020)
    assert plugin == "sequence" and [int(ds.TemporalPositionIdentifier) for ds in heads[::5]] == [1, 2, 3, 4]
    assert_same(back, volumes)
