"""The viewer's "save as DICOM series" (W): the shown volume written as a new series into the database, derived
from the series it was loaded from (issue 16, Volume → new DICOM series, TUI part)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from textual.widgets import Button, Checkbox, Input, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.levels import Item, Level
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.save_series import SaveSeriesScreen
from dicomtui.tui.screens.viewer import ViewerScreen

from .conftest import settle, text

SIZE = (120, 34)


async def test_the_viewer_saves_the_shown_volume_as_a_series_of_its_study(app: DicomTuiApp, db_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "enter")  # the 8-slice axial series of Doe^Jane
        await settle(app, pilot)
        assert isinstance(app.screen, ViewerScreen)
        volume = app.screen.item.volume
        with DicomDatabase.open(db_path, create=False, read_only=True) as db:
            source = db.get("series", db.find("instance", volume.instance_uids[0])["series_fk"])
        await pilot.press("W")
        screen = app.screen
        assert isinstance(screen, SaveSeriesScreen)
        assert source["SeriesInstanceUID"] in text(screen.query_one("#series-reference"))
        screen.query_one("#series-number", Input).value = "x"
        await pilot.press("enter")
        assert "SeriesNumber is a whole number" in text(screen.query_one("#series-result", Static))
        screen.query_one("#series-description", Input).value = "Axial smoothed"
        screen.query_one("#series-number", Input).value = "1002"
        await pilot.press("enter")
        await settle(app, pilot)
        result = text(screen.query_one("#series-result", Static))
        assert "New series" in result and "8 images" in result and "stored in the database" in result, result

    with DicomDatabase.open(db_path, create=False, read_only=True) as db:
        new = [s for s in db.series([source["study_fk"]]) if s["SeriesNumber"] == 1002]
        assert len(new) == 1 and new[0]["SeriesDescription"] == "Axial smoothed"
        files = db.instance_files([Item(Level.SERIES, new[0]["id"])])
    assert len(files) == 8
    first = pydicom.dcmread(files[0]["path"], stop_before_pixels=True)
    assert first.ReferencedSeriesSequence[0].SeriesInstanceUID == source["SeriesInstanceUID"]
    assert first.Modality == "CT" and first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    slices = [pydicom.dcmread(f["path"]) for f in files]
    stored = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    assert np.allclose(stored, volume.array, atol=1e-3)  # the values round-trip (slices in instance order)


async def test_the_enhanced_option_writes_one_multi_frame_image(app: DicomTuiApp, db_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "enter")
        await settle(app, pilot)
        await pilot.press("W")
        screen = app.screen
        screen.query_one("#series-enhanced", Checkbox).value = True
        screen.query_one("#series-number", Input).value = "1003"
        screen.query_one("#series-go", Button).press()
        await settle(app, pilot)
        result = text(screen.query_one("#series-result", Static))
        assert "1 image of 8 frames" in result, result
    with DicomDatabase.open(db_path, create=False, read_only=True) as db:
        (new,) = [s for s in db.series() if s["SeriesNumber"] == 1003]
        (f,) = db.instance_files([Item(Level.SERIES, new["id"])])
    assert int(pydicom.dcmread(f["path"], stop_before_pixels=True).NumberOfFrames) == 8


async def test_the_form_takes_a_uid_root_and_a_folder_the_files_are_also_written_to(
        app: DicomTuiApp, db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "derived"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "enter")
        await settle(app, pilot)
        await pilot.press("W")
        screen = app.screen
        assert isinstance(screen, SaveSeriesScreen)
        screen.query_one("#series-uid-root", Input).value = "1.02.3"
        screen.query_one("#series-go", Button).press()
        await pilot.pause()
        assert "Nothing written: '1.02.3.' is not a UID root" in text(screen.query_one("#series-result", Static))
        screen.query_one("#series-uid-root", Input).value = "1.2.826.0.1.3680043.10.999"
        screen.query_one("#series-folder", Input).value = str(out)
        screen.query_one("#series-number", Input).value = "1004"
        screen.query_one("#series-go", Button).press()
        await settle(app, pilot)
        result = text(screen.query_one("#series-result", Static))
        assert f"8 written to {out}" in result and "8 stored in the database" in result, result
        screen.query_one("#series-go", Button).press()  # the same folder again: nothing overwritten
        await settle(app, pilot)
        assert "exists; choose an empty folder" in text(screen.query_one("#series-result", Static))
    written = sorted(out.glob("*.dcm"))
    assert len(written) == 8
    ds = pydicom.dcmread(written[0], stop_before_pixels=True)
    assert ds.SeriesInstanceUID.startswith("1.2.826.0.1.3680043.10.999.") and ds.SeriesNumber == 1004
    assert ds.SOPInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    with DicomDatabase.open(db_path, create=False, read_only=True) as db:
        assert db.find("series", str(ds.SeriesInstanceUID)) is not None
