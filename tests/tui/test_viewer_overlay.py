"""Overlays in the viewer (issue 19): a label volume and a dose loaded with a CT go onto it (not into the list as
items of their own), drawn in their colours by half-blocks (both colour systems), sixel and kitty, in every
plane; g steps outlines → filled → hidden, < and > move the dose threshold; the legend names the segments; the
pixel cursor line gives segment names, dose and SUV; a PET window reads in SUV."""

from __future__ import annotations

import numpy as np
import pytest

from dicomtui.core.volume import Segment, Volume, WindowPreset, window_presets
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.viewer import ViewerScreen
from dicomtui.tui.widgets.halfblocks import HalfBlocks, palette_256
from dicomtui.tui.widgets.slice_view import SliceView, ViewerItem

from .conftest import text

SIZE = (120, 34)
MAGENTA, CYAN = (255, 0, 255), (0, 160, 255)
CT_UID = "1.2.826.0.1.3680043.9.7433.19.1"


def ct() -> Volume:
    """A 40×48×12 CT (1 mm, 2 mm slices) of 40 HU inside a disc, -1000 outside."""
    k, j, i = np.meshgrid(np.arange(12), np.arange(48), np.arange(40), indexing="ij")
    array = np.where((i - 20) ** 2 + (j - 24) ** 2 < 18 ** 2, 40.0, -1000.0).astype(np.float32)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    return Volume(array, affine, name="CT", modality="CT", windows=window_presets("CT", "40", "400", array),
                  series_uid=CT_UID)


def seg(ref: str = CT_UID, affine: np.ndarray | None = None) -> Volume:
    """Two segments on the CT's grid: "Liver" a box (columns 10-19, rows 14-29, slices 3-8), "Tumour" a
    smaller box beside it (columns 22-27, rows 20-25, slices 4-7)."""
    array = np.zeros((12, 48, 40), dtype=np.uint8)
    array[3:9, 14:30, 10:20] = 1
    array[4:8, 20:26, 22:28] = 2
    return Volume(array, np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine, name="SEG", modality="SEG",
                  segments=(Segment(1, "Liver", MAGENTA), Segment(2, "Tumour", CYAN)), referenced_series_uid=ref)


def dose() -> Volume:
    """A 4 mm dose grid over the CT: 0 Gy at x = 0 rising to 60 Gy at x = 36 mm."""
    x = np.linspace(0.0, 60.0, 10, dtype=np.float32)
    array = np.broadcast_to(x, (7, 13, 10)).copy()
    return Volume(array, np.diag([4.0, 4.0, 4.0, 1.0]), name="RT Dose", modality="RTDOSE", units="GY")


async def open_viewer(app: DicomTuiApp, pilot, *items: ViewerItem) -> SliceView:
    app._loaded(list(items))  # what a load ends with (app._volumes_loaded)
    await pilot.pause()
    assert isinstance(app.screen, ViewerScreen)
    return app.screen.query_one(SliceView)


def shown(view: SliceView) -> np.ndarray:
    return view.query_one("#slice-image", HalfBlocks).grey


def coloured(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(image == rgb, axis=-1).sum()) if image.ndim == 3 else 0


def legend(app: DicomTuiApp) -> str:
    return text(app.screen.query_one("#overlay-legend"))


async def test_a_segmentation_goes_onto_its_ct_and_toggles(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("CT", [ct()]), ViewerItem("SEG", [seg()]))
        assert len(app.loaded) == 1 and [v.name for v in app.loaded[0].overlays] == ["SEG"]
        assert "+1 overlay" in str(app.screen.query_one("#loaded-list").get_option_at_index(0).prompt)
        view.index = 5  # both segments are in slice 5
        await pilot.pause()
        outlines = shown(view)
        assert coloured(outlines, MAGENTA) > 20 and coloured(outlines, CYAN) > 10
        assert legend(app).startswith("Overlays outlines (g):") and "■ Liver" in legend(app)
        assert "■ Tumour" in legend(app)
        await pilot.press("g")
        filled = shown(view)
        assert view.overlay_style.mode == "filled" and "filled" in legend(app)
        tinted = np.any(filled != outlines, axis=-1) & ~np.all(outlines == MAGENTA, axis=-1)
        assert tinted.sum() > coloured(outlines, MAGENTA)  # the inside is tinted now
        await pilot.press("g")
        assert view.overlay_style.mode == "off" and "hidden" in legend(app)
        hidden = shown(view)
        assert coloured(hidden, MAGENTA) == 0 and coloured(hidden, CYAN) == 0
        await pilot.press("g")
        assert view.overlay_style.mode == "outline"
        view.index = 0  # no segment in slice 0
        await pilot.pause()
        assert coloured(shown(view), MAGENTA) == 0


async def test_the_segments_are_drawn_in_every_plane(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("CT + SEG", [ct(), seg()]))  # a loader's report: both
        assert len(app.loaded) == 1 and len(app.loaded[0].volumes) == 1
        for plane, s in (("coronal", 24), ("sagittal", 14)):  # coronal row 24 (y), sagittal column 14 (x)
            await pilot.press(plane[0])
            view.index = s if plane == "sagittal" else len(view.current_view()) - 1 - s
            await pilot.pause()
            assert coloured(shown(view), MAGENTA) > 10, plane


async def test_cursor_line_gives_segments_dose_and_suv(app: DicomTuiApp) -> None:
    pet = ct()
    pet.modality, pet.suv_factors = "PT", {"bw": 0.05}
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("PET", [pet]), ViewerItem("SEG", [seg()]),
                                 ViewerItem("Dose", [dose()]))
        assert len(app.loaded) == 1 and len(app.loaded[0].overlays) == 2
        view.index = 5
        view.cursor = (16, 12)  # row 16, column 12: x = 12 mm (dose 20 Gy), inside "Liver", value 40
        await pilot.pause()
        line = text(app.screen.query_one("#overlay"))
        assert "voxel (12, 16, 5)" in line and "Liver · dose 20 Gy · SUVbw 2" in line
        assert legend(app).endswith("│ cursor: Liver · dose 20 Gy · SUVbw 2")  # where a long line has room
        assert "dose ≥ 6 Gy (10% of 60 Gy)" in legend(app)
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert "dose ≥ 12 Gy (20% of 60 Gy)" in legend(app)
        view.cursor = (2, 2)  # outside the disc and the segments: no segment, dose 3.3 Gy
        await pilot.pause()
        assert "Liver" not in text(app.screen.query_one("#overlay"))


async def test_dose_wash_follows_its_threshold(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("CT", [ct()]), ViewerItem("Dose", [dose()]))
        view.index = 5
        await pilot.pause()

        def washed() -> int:
            image = shown(view)
            return int((image.ndim == 3) and np.sum(~((image[..., 0] == image[..., 1])
                                                      & (image[..., 1] == image[..., 2]))))

        low = washed()
        for _ in range(10):
            await pilot.press("greater_than_sign")
        assert view.overlay_style.dose_threshold == pytest.approx(0.6)
        high = washed()
        assert 0 < high < low


async def test_pet_window_reads_in_suv(app: DicomTuiApp) -> None:
    pet = ct()
    pet.modality, pet.suv_factors = "PT", {"bw": 0.001, "lbm": 0.0008}
    pet.windows = [WindowPreset("SUV 0-5", 2500.0, 5000.0)]  # in Bq/ml: SUV 0-5 with the factor 0.001
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("PET", [pet]))
        corner = "".join(view.render_line(y).text for y in range(view.size.height))
        assert "SUV 0-5 " in corner and "(SUV" not in corner  # the preset's name is the window: said once
        await pilot.press("right_square_bracket")  # wider by 15 %: SUV 0-5 around the same level
        corner = "".join(view.render_line(y).text for y in range(view.size.height))
        assert "SUV -0.375-5.38" in corner


async def test_an_overlay_without_its_image_says_why(app: DicomTuiApp) -> None:
    elsewhere = np.diag([3.0, 3.0, 3.0, 1.0])
    elsewhere[:3, 3] = 500
    async with app.run_test(size=SIZE) as pilot:
        await open_viewer(app, pilot, ViewerItem("CT", [ct()]), ViewerItem("SEG", [seg("9.8.7", elsewhere)]))
        assert len(app.loaded) == 2 and app.loaded[1].overlays == app.loaded[1].volumes
        notes = [n.message for n in app._notifications]
        assert any("9.8.7 is not loaded" in n for n in notes), notes


def test_segment_colours_survive_the_256_colour_palette() -> None:
    """Half-blocks in 256 colours: a segment colour (outline) and its tint over grey (filled) land on colour
    cube entries, not on the grey ramp: the segments stay apart from the image and from each other."""
    from dicomtui.core.overlay import OverlayStyle, overlay_slice
    from dicomtui.core.viewgeom import acquired
    from dicomtui.core.volume import display

    base, labels = ct(), seg()
    pv = acquired(base, "axial")
    for mode in ("outline", "filled"):
        image = overlay_slice(base, pv, 5, [labels], display(pv.slice(5), 40, 400), OverlayStyle(mode))
        codes = palette_256(image)
        for number in (1, 2):
            where = labels.array[5] == number
            if mode == "outline":
                from dicomtui.core.overlay import outline

                where = outline(labels.array[5]) & where
            cube = codes[where]
            assert np.all((cube >= 16) & (cube < 232)), (mode, number)
            r, g, b = (cube - 16) // 36, (cube - 16) // 6 % 6, (cube - 16) % 6
            assert np.all((r != g) | (g != b)), (mode, number)  # never one of the cube's greys
        outline_codes = {int(c) for c in codes[np.all(image == MAGENTA, axis=-1)]}
        assert outline_codes == {201} or mode == "filled"  # magenta: cube (5, 0, 5)


@pytest.mark.parametrize("renderer", ["sixel", "kitty"])
async def test_graphics_renderers_get_the_overlay(renderer: str, db_path, tmp_path) -> None:
    app = DicomTuiApp(db_path, renderer=renderer, settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ViewerItem("CT", [ct()]), ViewerItem("SEG", [seg()]))
        view.index = 5
        await pilot.pause()
        pixels = view.query_one("#slice-image").pixels
        assert pixels.ndim == 3 and coloured(pixels, MAGENTA) > 50 and coloured(pixels, CYAN) > 30
        await pilot.press("plus")  # zoomed 2×: rows 12-35, columns 10-29 of the slice
        pixels = view.query_one("#slice-image").pixels
        magenta = np.all(pixels == MAGENTA, axis=-1)
        columns = np.flatnonzero(magenta.any(axis=0))
        middle = magenta[:, (columns.min() + columns.max()) // 2]
        assert middle.sum() == 2  # the box's top and bottom edges, one screen pixel each: lines, not bands


def test_help_lists_the_overlay_keys() -> None:
    from dicomtui.tui.screens.help import binding_rows

    rows = binding_rows([("viewer", ViewerScreen.BINDINGS)])
    keys = {binding_id: keys for _, keys, _, binding_id in rows}
    assert keys["overlay_mode"] == "g"
    assert keys["dose_threshold_down"] == "<" and keys["dose_threshold_up"] == ">"
