"""The TUI examine screen of a CT that a SEG refers to says so ("This series is referenced by 1 segmentation")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual.widgets import Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.examine import ExamineScreen

from .seg_data import write_ct, write_seg


async def test_examine_screen_says_what_refers_to_the_series(tmp_path: Path) -> None:
    ct = write_ct(tmp_path / "in" / "ct")
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[2:4, 3:7, 3:7] = 1
    write_seg(tmp_path / "in" / "seg" / "seg.dcm", ct, labels)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        ct_id = db.find("series", ct[0].SeriesInstanceUID)["id"]
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        app.examine_series([ct_id])
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ExamineScreen)
        shown = str(app.screen.query_one("#loadable-warnings", Static).render())
        assert "This series is referenced by 1 segmentation." in shown


async def test_loading_a_seg_opens_the_viewer_on_the_ct_and_its_labels(tmp_path: Path) -> None:
    from dicomtui.tui.screens.viewer import ViewerScreen

    ct = write_ct(tmp_path / "in" / "ct")
    labels = np.zeros((6, 16, 16), np.uint8)
    labels[2:4, 3:7, 3:7] = 1
    seg = write_seg(tmp_path / "in" / "seg" / "seg.dcm", ct, labels)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        seg_id = db.find("series", seg.SeriesInstanceUID)["id"]
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        app.load_series([seg_id])
        for _ in range(3):
            await pilot.pause()
            await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("down", "up")  # the next item and back: no failure on a label volume
        await pilot.pause()
        # the SEG is drawn on the CT it refers to, not shown as a volume of its own
        item = app.screen.item
        assert item is not None and not item.volume.is_labels
        assert [o.is_labels for o in item.overlays] == [True]
