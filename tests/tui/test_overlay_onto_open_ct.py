"""A SEG or RT structure set loaded while its CT is open in the viewer goes onto that CT (the CT is not loaded a
second time as the image it refers to) and the viewer shows that CT, even when another item is newer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import series_datasets
from dicomtui.core.synth_rt import Roi, rtstruct_dataset, slice_positions, write_datasets
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.viewer import ViewerScreen

from ..seg_data import SPEC, write_ct, write_seg


def _square(z: float) -> np.ndarray:
    return np.array([[2.5, 2.5, z], [8.5, 2.5, z], [8.5, 8.5, z], [2.5, 8.5, z]], dtype=float)


def _write_object(kind: str, folder: Path, ct: list) -> str:
    """A SEG (highdicom) or an RTSTRUCT (pydicom) on ``ct`` in ``folder``; its series UID."""
    if kind == "seg":
        labels = np.zeros((6, 16, 16), np.uint8)
        labels[2:4, 3:7, 3:7] = 1
        return write_seg(folder / "seg.dcm", ct, labels).SeriesInstanceUID
    rs = rtstruct_dataset(ct, [Roi("box", [_square(z) for z in slice_positions(ct)[2:4]], (255, 0, 0))])
    write_datasets(folder, [rs])
    return rs.SeriesInstanceUID


async def _load(app: DicomTuiApp, pilot, series_id: int) -> None:
    app.load_series([series_id])
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
async def test_an_object_loaded_while_its_ct_is_open_goes_onto_it_and_shows_it(kind: str, tmp_path: Path) -> None:
    ct = write_ct(tmp_path / "in" / "ct")
    other = series_datasets(replace(SPEC, series_number=2, series_description="Other"))
    write_datasets(tmp_path / "in" / "other", other)
    object_uid = _write_object(kind, tmp_path / "in" / "object", ct)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        ids = [db.find("series", uid)["id"] for uid in (ct[0].SeriesInstanceUID, other[0].SeriesInstanceUID,
                                                        object_uid)]
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        await _load(app, pilot, ids[0])  # the CT, then another series: the newest item is not the CT
        await _load(app, pilot, ids[1])
        assert isinstance(app.screen, ViewerScreen) and app.screen.item is app.loaded[1]
        ct_item = app.loaded[0]
        await _load(app, pilot, ids[2])
        assert len(app.loaded) == 2  # no second CT item
        assert [o.is_labels for o in ct_item.overlays] == [True]
        assert app.screen.item is ct_item
        assert app.screen.query_one("#loaded-list").highlighted == 0
        assert "+1 overlay" in str(app.screen.query_one("#loaded-list").get_option_at_index(0).prompt)
