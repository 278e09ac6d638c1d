"""The viewer's W on a 4D item (issue 16, Volume → new DICOM series): every volume written as ONE new series by
default (each slice position once per volume, the loader's key on each volume's images), or only the shown volume
when chosen; colour sequences as RGB Secondary Capture; Enhanced offered only for one grey volume; the volumes of
a per-frame item (different grids) written one at a time, and the form says so. Checked by reloading what was
stored with our own loader: the same volumes (values and affine), in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from textual.widgets import Button, Checkbox, Input, RadioButton, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import choose, examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, uid, write_4d, write_mosaic
from dicomtui.core.synth_pixels import colour_series, write_datasets
from dicomtui.core.volume import Volume
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.save_series import SaveSeriesScreen
from dicomtui.tui.screens.viewer import ViewerScreen
from tests.test_frames_view import mixed_us_series
from tests.tui.conftest import settle, text

SIZE = (120, 40)
ECHOES = (10.0, 25.0, 40.0)
SLICES = 4


def multi_echo(folder: Path) -> None:
    """An MR series of 3 echoes × 4 slices (16×16): volume v is the phantom + 100 v, EchoTime 10, 25, 40 ms."""
    write_4d(folder, SeriesSpec(modality="MR", slices=SLICES, rows=16, cols=16, series_description="Multi-echo"),
             [{"EchoTime": echo} for echo in ECHOES])


def colour_time_series(folder: Path) -> None:
    """A colour series of 2 time points × 3 slices (RGB, 12×10), time point t's blue channel raised by 60 t."""
    datasets = []
    for t in range(2):
        for ds in colour_series(SeriesSpec(slices=3, rows=10, cols=12, modality="US", series_description="Doppler")):
            rgb = np.frombuffer(ds.PixelData, np.uint8).reshape(10, 12, 3).copy()
            rgb[..., 2] += 60 * t
            ds.PixelData = rgb.tobytes()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("colour4d", t, ds.InstanceNumber)
            ds.InstanceNumber += 3 * t
            ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions = t + 1, 2
            datasets.append(ds)
    write_datasets(folder, datasets)


def database(root: Path, write) -> Path:
    write(root / "in")
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    return root / "db"


def app_on(tmp_path: Path, write) -> tuple[Path, DicomTuiApp]:
    """The app (half-block renderer) on a database of what ``write`` writes into a folder."""
    db_path = database(tmp_path, write)
    return db_path, DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml")


async def open_form(app: DicomTuiApp, pilot, steps: int = 0) -> SaveSeriesScreen:
    """The only series loaded from the browser (Enter: its default loadable), ``steps`` × t, then W."""
    await pilot.press("3", "enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ViewerScreen)
    for _ in range(steps):
        await pilot.press("t")
    await pilot.press("W")
    await pilot.pause()
    assert isinstance(app.screen, SaveSeriesScreen)
    return app.screen


async def save(app: DicomTuiApp, pilot, screen: SaveSeriesScreen, number: int) -> str:
    screen.query_one("#series-number", Input).value = str(number)
    screen.query_one("#series-go", Button).press()
    await settle(app, pilot)
    return text(screen.query_one("#series-result", Static))


def stored(db_path: Path, number: int) -> tuple[list[pydicom.Dataset], list[Volume], str]:
    """The new series of SeriesNumber ``number``: its files' heads in instance order, our load of it (what
    examine selects by default, as Enter in the browser) and the plugin of that loadable."""
    with DicomDatabase.open(db_path, create=False, read_only=True) as db:
        (row,) = [s for s in db.series() if s["SeriesNumber"] == number]
        files = db.instance_files([Item(Level.SERIES, row["id"])])
        loadables = examine_series(db, [row["id"]])
        (chosen,) = choose(loadables)
        volumes = load(db, chosen)
    heads = sorted((pydicom.dcmread(f["path"], stop_before_pixels=True) for f in files),
                   key=lambda ds: int(ds.InstanceNumber))
    return heads, volumes, chosen.plugin


def assert_same(back: list[Volume], volumes: list[Volume]) -> None:
    assert len(back) == len(volumes)
    for ours, theirs in zip(volumes, back, strict=True):
        np.testing.assert_allclose(theirs.array, ours.array, atol=1e-3)
        np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)


async def test_w_on_a_4d_item_saves_every_volume_as_one_series(tmp_path: Path) -> None:
    db_path, app = app_on(tmp_path, multi_echo)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot)
        (item,) = app.loaded
        volumes = list(item.volumes)
        assert len(volumes) == 3 and [v.extra["value"] for v in volumes] == list(ECHOES)
        everything = screen.query_one("#series-all", RadioButton)
        assert everything.value and "All 3 volumes (one series" in str(everything.label)
        assert "Only the shown volume (t = 1 of 3: EchoTime 10.0 ms)" in str(
            screen.query_one("#series-shown", RadioButton).label)
        assert screen.query_one("#series-enhanced", Checkbox).disabled  # Enhanced holds one grey volume
        assert "not for 3 volumes" in text(screen.query_one("#series-enhanced-note", Static))
        result = await save(app, pilot, screen, 1010)
        assert "12 images (3 volumes of 4 slices)" in result and "12 stored in the database" in result, result

    heads, back, plugin = stored(db_path, 1010)
    assert len(heads) == SLICES * len(ECHOES) and plugin == "sequence"
    # each volume's images carry the echo it was told apart by, volume by volume in instance order
    assert [float(ds.EchoTime) for ds in heads] == [e for e in ECHOES for _ in range(SLICES)]
    assert_same(back, volumes)
    assert [v.extra["key"] for v in back] == ["EchoTime"] * 3 and [v.extra["value"] for v in back] == list(ECHOES)


async def test_only_the_shown_volume_when_chosen(tmp_path: Path) -> None:
    db_path, app = app_on(tmp_path, multi_echo)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot, steps=1)  # the second echo shown
        shown = app.loaded[0].volumes[1]
        only = screen.query_one("#series-shown", RadioButton)
        assert "t = 2 of 3: EchoTime 25.0 ms" in str(only.label)
        description = screen.query_one("#series-description", Input)
        proposed_all = description.value
        assert "3 volumes" in proposed_all and proposed_all.endswith("(derived)")
        await pilot.click("#series-shown")
        await pilot.pause()
        assert only.value and not screen.query_one("#series-all", RadioButton).value
        assert not screen.query_one("#series-enhanced", Checkbox).disabled  # one grey volume: Enhanced offered
        # the proposed description follows the choice (it no longer says "3 volumes"), and back again
        assert "volumes" not in description.value and description.value.endswith("(volume 2 of 3) (derived)")
        await pilot.click("#series-all")
        await pilot.pause()
        assert description.value == proposed_all
        await pilot.click("#series-shown")
        await pilot.pause()
        result = await save(app, pilot, screen, 1011)
        assert "New series" in result and "4 images" in result and "volumes of" not in result, result

    heads, back, plugin = stored(db_path, 1011)
    assert len(heads) == SLICES and plugin == "scalar"
    assert_same(back, [shown])


async def test_a_colour_sequence_is_one_rgb_secondary_capture_series(tmp_path: Path) -> None:
    db_path, app = app_on(tmp_path, colour_time_series)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot)
        volumes = list(app.loaded[0].volumes)
        assert len(volumes) == 2 and volumes[0].is_rgb
        await pilot.click("#series-shown")
        await pilot.pause()
        box = screen.query_one("#series-enhanced", Checkbox)
        assert box.disabled and "not for a colour volume" in text(screen.query_one("#series-enhanced-note", Static))
        box.value = True  # set behind the form's back: refused in a sentence, nothing written
        result = await save(app, pilot, screen, 1012)
        assert result.startswith("Nothing written: Enhanced holds one grey volume"), result
        await pilot.click("#series-all")
        await pilot.pause()
        assert not box.value
        result = await save(app, pilot, screen, 1012)
        assert "Secondary Capture" in result and "6 images (2 volumes of 3 slices)" in result, result
        await pilot.click("#series-shown")  # and one colour volume alone
        await pilot.pause()
        result = await save(app, pilot, screen, 1015)
        assert "Secondary Capture" in result and "3 images" in result and "volumes of" not in result, result

    heads, back, plugin = stored(db_path, 1012)
    assert plugin == "sequence"
    assert {(ds.PhotometricInterpretation, ds.SamplesPerPixel) for ds in heads} == {("RGB", 3)}
    assert [int(ds.TemporalPositionIdentifier) for ds in heads] == [1, 1, 1, 2, 2, 2]
    assert_same(back, volumes)
    heads, back, plugin = stored(db_path, 1015)
    assert plugin == "scalar" and [ds.PhotometricInterpretation for ds in heads] == ["RGB"] * 3
    assert_same(back, volumes[:1])


async def test_an_item_of_images_one_by_one_is_saved_one_image_at_a_time(tmp_path: Path) -> None:
    """A per-frame item (examine/frames_view.py: sizes and places differ) is saved as w saves it: the shown image."""
    db_path, app = app_on(tmp_path, mixed_us_series)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot, steps=1)  # image 2 of the per-frame item
        shown = app.loaded[0].volumes[1]
        assert not screen.query("#series-all")
        note = text(screen.query_one("#series-volumes-note", Static))
        assert "Only the shown image (2 of 4) is written: this item shows images one by one" in note, note
        result = await save(app, pilot, screen, 1013)
        assert "New series" in result, result

    heads, back, _plugin = stored(db_path, 1013)
    assert len(heads) == 1 and len(back) == 1
    np.testing.assert_allclose(back[0].array, shown.array, atol=1e-3)


async def test_volumes_of_different_grids_are_one_series_each(app: DicomTuiApp, db_path: Path) -> None:
    """Volumes that cannot share a series (core.export.volume_sequence.volumes_of refuses them) are not offered
    as one: the form says why, and writes the shown one."""
    small = Volume(np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4), np.eye(4), name="small")
    large = Volume(np.arange(3 * 3 * 4, dtype=np.int16).reshape(3, 3, 4), np.eye(4), name="large")
    async with app.run_test(size=SIZE) as pilot:
        screen = SaveSeriesScreen(db_path, [small, large], "two grids", None, shown=1)
        await app.push_screen(screen)
        await pilot.pause()
        assert not screen.query("#series-all")
        note = text(screen.query_one("#series-volumes-note", Static))
        assert "Only the shown volume (t = 2 of 2) is written: the 2 volumes differ in size or place" in note, note
        result = await save(app, pilot, screen, 1014)
        assert "3 images" in result and "volumes of" not in result, result


def diffusion_mosaics(folder: Path) -> None:
    """Three Siemens mosaics (4 tiles of 8×8 each) of a diffusion series: b 0, 1000, 1000 along x then y."""
    write_mosaic(folder, SeriesSpec(slices=4, rows=8, cols=8, modality="MR", series_description="DTI"), volumes=3,
                 bvalues=[0, 1000, 1000], gradients=[[0, 0, 0], [1, 0, 0], [0, 1, 0]])


async def test_a_mosaic_diffusion_series_is_saved_as_classic_images_with_its_b_values(tmp_path: Path) -> None:
    db_path, app = app_on(tmp_path, diffusion_mosaics)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_form(app, pilot)
        volumes = list(app.loaded[0].volumes)
        assert len(volumes) == 3 and [v.extra["bvalue"] for v in volumes] == [0, 1000, 1000]
        result = await save(app, pilot, screen, 1016)
        assert "12 images (3 volumes of 4 slices)" in result, result

    heads, back, plugin = stored(db_path, 1016)
    assert plugin == "sequence" and len(heads) == 12
    assert [float(ds.DiffusionBValue) for ds in heads[::4]] == [0, 1000, 1000]
    assert [list(map(float, ds.DiffusionGradientOrientation)) for ds in heads[4::4]] == [[1, 0, 0], [0, 1, 0]]
    assert_same(back, volumes)
    assert [v.extra["bvalue"] for v in back] == [0, 1000, 1000]
