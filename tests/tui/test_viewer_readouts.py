"""The viewer's readouts as a radiologist reads them: orientation letters at the edges, the cursor as a voxel
index of the volume (zoomed or not), its patient position in LPS mm and its value with a unit, slice positions
as "A 39.0 mm", window/level and zoom in the image's corner, a scale bar; pan, a one-pixel crosshair, a distance
measurement, closing an item, and an oblique volume on its true anatomical planes."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.volume import Volume, window_presets
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.viewer import ViewerScreen
from dicomtui.tui.widgets.slice_view import SliceView, ViewerItem

from .conftest import text

SIZE = (120, 34)
SHAPE = (20, 64, 80)  # slices, rows, columns


def ct_volume(direction: np.ndarray | None = None, spacing=(0.8, 0.6, 2.0)) -> Volume:
    """A CT volume whose voxel value is 1000·k + 10·j + i·0.01 rounded… kept simple: 100·k + j + i/100, so any
    value read back names its voxel. Axial, origin (-30, -20, 10) mm unless ``direction`` turns it."""
    nk, nj, ni = SHAPE
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    array = (100 * k + j + i / 100).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if direction is None else direction) * np.array(spacing)
    affine[:3, 3] = (-30.0, -20.0, 10.0)
    return Volume(array, affine, name="phantom", modality="CT", windows=window_presets("CT", "40", "400", array))


def voxel_of(value: float) -> tuple[int, int, int]:
    k, rest = divmod(round(value * 100), 10000)
    j, i = divmod(rest, 100)
    return i, j, k


async def open_viewer(app: DicomTuiApp, pilot, volume: Volume) -> SliceView:
    app.loaded.append(ViewerItem("phantom", [volume]))
    app.action_viewer()
    await pilot.pause()
    assert isinstance(app.screen, ViewerScreen)
    return app.screen.query_one(SliceView)


def overlay(app: DicomTuiApp) -> str:
    return text(app.screen.query_one("#overlay"))


def labels(view: SliceView) -> list[str]:
    return [view.render_line(y).text for y in range(view.size.height)]


def middle_third(row: str, box) -> str:
    """What a label row shows above / below the middle third of the image (where its edge letter goes)."""
    return row[box.x + box.w // 3:box.x + 2 * box.w // 3].strip()


def readout(app: DicomTuiApp) -> tuple[tuple[int, int, int], tuple[float, float, float], float, str]:
    m = re.search(r"voxel \((\d+), (\d+), (\d+)\)  LPS \((\S+), (\S+), (\S+)\) mm  = (\S+) ?(\S*)", overlay(app))
    assert m, overlay(app)
    g = m.groups()
    return (int(g[0]), int(g[1]), int(g[2])), (float(g[3]), float(g[4]), float(g[5])), float(g[6]), g[7]


async def test_the_cursor_is_a_voxel_of_the_volume_zoomed_or_not(app: DicomTuiApp) -> None:
    vol = ct_volume()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, vol)
        await pilot.press("l", "l", "j")
        ijk, lps, value, unit = readout(app)
        assert ijk == voxel_of(value)  # the index names the voxel whose value is shown
        assert np.allclose(lps, (vol.affine @ [*ijk, 1])[:3], atol=0.05)
        assert unit == "HU"
        await pilot.press("plus", "plus")  # zoom 4: the same pixel, the same voxel (not an index of the crop)
        assert readout(app)[0] == ijk and view.cursor is not None
        # the mouse over a cell of the zoomed image reads a voxel inside the zoomed crop, not the crop's index
        top, left, h, w = view.crop()
        assert (top, left) != (0, 0)
        box = view._box
        await pilot.hover(SliceView, offset=(box.x + 1, box.y + 1))  # over the image widget, inside the view
        i, j, k = readout(app)[0]
        assert view.cursor == (top + int(1.5 / box.h * h), left + int(1.5 / box.w * w))
        assert (i, j) == (view.cursor[1], view.cursor[0])  # axial: column = i, row = j for this volume


async def test_positions_letters_corner_and_scale_bar(app: DicomTuiApp) -> None:
    vol = ct_volume()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, vol)
        shown = labels(view)
        box = view._box
        assert shown[box.y - 1].strip().startswith("W 400 L 40")  # the window in the image's top-left corner
        assert middle_third(shown[box.y - 1], box) == "A"
        assert middle_third(shown[box.y + box.h], box) == "P"
        middle = shown[box.y + box.h // 2]
        assert middle[:box.x].strip() == "R" and middle[box.x + box.w:].strip() == "L"
        bar = re.search(r"├(─*)┤ (\d+) mm", shown[box.y + box.h])
        assert bar, shown[box.y + box.h]
        cells, mm = len(bar.group(1)) + 2, float(bar.group(2))
        mm_per_cell = SHAPE[2] * 0.8 / box.w
        assert abs(cells * mm_per_cell - mm) <= mm_per_cell / 2 + 1e-9  # within half a cell
        await pilot.press("plus")
        assert "zoom 2×" in labels(view)[box.y - 1]
        await pilot.press("c")  # coronal: slices along y; y = -20 + 0.6·j, the middle slice j = 32 → y = -0.8
        assert "A 0.8 mm" in overlay(app)
        await pilot.press("home")  # y = -20: anterior 20 mm, written as the side, not as a sign
        assert "A 20.0 mm" in overlay(app) and "P -" not in overlay(app)
        shown = labels(view)
        box = view._box
        assert middle_third(shown[box.y - 1], box) == "S" and middle_third(shown[box.y + box.h], box) == "I"


async def test_pan_when_zoomed_by_keys_and_by_mouse(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ct_volume())
        await pilot.press("shift+right")
        assert view.crop()[:2] == (0, 0)  # nothing to pan at zoom 1
        await pilot.press("plus")
        start = view.crop()
        await pilot.press("shift+right", "shift+down")
        moved = view.crop()
        assert moved[1] > start[1] and moved[0] > start[0]
        for _ in range(20):
            await pilot.press("shift+right")
        assert view.crop()[1] + view.crop()[3] == SHAPE[2]  # stops at the slice's edge
        box = view._box
        before = view.crop()
        await pilot.mouse_down(SliceView, offset=(box.x + 10, box.y + 5))
        await pilot.hover(SliceView, offset=(box.x + 20, box.y + 5))  # dragged 10 cells right: image moves right
        await pilot.mouse_up(SliceView, offset=(box.x + 20, box.y + 5))
        after = view.crop()
        assert abs((before[1] - after[1]) - 10 * before[3] / box.w) <= 1 and after[0] == before[0]
        await pilot.press("f")
        assert view.crop() == (0, 0, SHAPE[1], SHAPE[2]) and view.pan is None


async def test_the_crosshair_is_one_screen_pixel_wide(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ct_volume())
        image = app.screen.query_one("#slice-image")
        plain = image.grey.copy()
        for zoom in ("", "plus", "plus"):
            if zoom:
                await pilot.press(zoom)
                view.cursor = None
                await pilot.pause()
                plain = image.grey.copy()
            await pilot.press("l")
            changed = np.argwhere(image.grey != plain)
            rows, cols = np.unique(changed[:, 0]), np.unique(changed[:, 1])
            # a full-width row and a full-height column (less a gap at the point), each one pixel wide
            full_rows = [r for r in rows if np.count_nonzero(changed[:, 0] == r) > plain.shape[1] // 2]
            full_cols = [c for c in cols if np.count_nonzero(changed[:, 1] == c) > plain.shape[0] // 2]
            assert len(full_rows) == 1 and len(full_cols) == 1, zoom
            assert len(changed) <= plain.shape[0] + plain.shape[1]


async def test_a_distance_between_two_points_in_mm(app: DicomTuiApp) -> None:
    vol = ct_volume()
    async with app.run_test(size=SIZE) as pilot:
        await open_viewer(app, pilot, vol)
        await pilot.press("l")
        first, _, _, _ = readout(app)
        await pilot.press("m")
        assert "m again" in overlay(app)
        await pilot.press("l", "l", "l", "j", "j")
        second, _, _, _ = readout(app)
        await pilot.press("m")
        expected = np.linalg.norm((np.array(second) - np.array(first)) * np.array([0.8, 0.6, 2.0]))
        assert f"distance {expected:.1f} mm" in overlay(app)
        await pilot.press("M")
        assert "distance" not in overlay(app)
        view = app.screen.query_one(SliceView)
        box = view._box
        await pilot.click(SliceView, offset=(box.x + 2, box.y + 2), button=3)  # the right button marks too
        await pilot.click(SliceView, offset=(box.x + 12, box.y + 2), button=3)
        top, left, rows, cols = view.crop()
        columns = (view.measure[1][0] - view.measure[0][0])
        assert len(view.measure) == 2 and abs(columns - 10 * cols / box.w) <= 1
        assert f"distance {abs(columns) * 0.8:.1f} mm" in overlay(app)


async def test_closing_an_item_gives_its_memory_back(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        vol = ct_volume()
        view = await open_viewer(app, pilot, vol)
        alive = weakref.ref(vol.array)
        await pilot.press("c", "l", "m", "w")  # a plane view, a cursor, a measure, the Save dialog
        await pilot.press("escape")
        del vol
        await pilot.press("x")
        await pilot.pause()
        assert app.loaded == [] and view.item is None
        assert "No volume loaded" in overlay(app)
        gc.collect()
        assert alive() is None


async def test_an_oblique_volume_on_its_anatomical_planes(app: DicomTuiApp) -> None:
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    turned = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])  # axial slices turned 20° about S
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, ct_volume(turned))
        assert "oblique: nearest plane shown" in overlay(app)
        box = view._box
        assert middle_third(labels(view)[box.y - 1], box) in ("AR", "AL")  # the nearest axis first
        await pilot.press("r")
        assert "anatomical planes" in overlay(app) and view.current_view().anatomical
        box = view._box
        shown = labels(view)
        assert middle_third(shown[box.y - 1], box) == "A"
        await pilot.press("c", "l")
        ijk, lps, value, _ = readout(app)
        assert np.allclose(lps, view.current_view().lps(*[view.cursor[1], view.cursor[0]],
                                                        view.index), atol=0.05)
        await pilot.press("r")
        assert "oblique: nearest plane shown" in overlay(app)


async def test_one_frame_per_slice_step(app: DicomTuiApp) -> None:
    """The image and the overlay line change in one composed frame (two frames cost a second frame period,
    ~17 ms, at every step: tui_bench)."""
    async with app.run_test(size=SIZE) as pilot:
        await open_viewer(app, pilot, ct_volume())
        screen = app.screen
        compositor = screen._compositor
        frames: list[set[str]] = []  # per composed frame: the ids of the widgets it repainted
        inner = compositor.render_update

        def render_update(*args, **kwargs):
            frames.append({str(w.id) for w in screen._dirty_widgets})
            return inner(*args, **kwargs)

        compositor.render_update = render_update
        for key in ("up", "up", "l", "2"):
            frames.clear()
            await pilot.press(key)
            await pilot.pause()
            with_image = [f for f in frames if "slice-image" in f]
            with_overlay = [f for f in frames if "overlay" in f]
            # one frame with the new image; the overlay line (when it changed) in that same frame, never after
            assert len(with_image) == 1 and all(f is with_image[0] for f in with_overlay), (key, frames)


async def test_cine_plays_the_frames_at_the_files_rate(app: DicomTuiApp) -> None:
    vol = ct_volume()
    vol.extra["frame_rate"] = 50.0  # CineRate 50: 20 ms a frame
    async with app.run_test(size=SIZE) as pilot:
        view = await open_viewer(app, pilot, vol)
        await pilot.press("end")
        assert view.play() == 50.0
        await pilot.pause(0.2)
        assert 0 < view.index < SHAPE[0] - 1  # wrapped round from the last frame and went on
        assert view.play() is None
        stopped = view.index
        await pilot.pause(0.1)
        assert view.index == stopped


def test_marks_are_amber_on_colour_images_and_contrasting_grey_on_grey_ones() -> None:
    from dicomtui.tui.widgets.slice_marks import MARK_RGB, draw_marks

    grey = np.zeros((20, 30), dtype=np.uint8)
    grey[:, 15:] = 200  # dark left half, light right half
    marked = draw_marks(grey, (10.4, 5.0), [])
    assert marked[10, 0] == 255 and marked[10, 29] == 0  # white on dark, black on light
    assert marked[10, 5] == grey[10, 5] and marked[0, 5] == 255  # a gap at the point; the column drawn
    assert np.array_equal(grey[:, 15:], np.full((20, 15), 200))  # the input is not drawn on
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    marked = draw_marks(rgb, None, [(2.0, 2.0), (2.0, 12.0)])
    assert tuple(marked[2, 7]) == MARK_RGB  # the line between the two points
    assert tuple(marked[3, 3]) == MARK_RGB and tuple(marked[10, 7]) == (0, 0, 0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """An empty database: these tests put volumes straight into the viewer."""
    return tmp_path / "db"


async def test_a_per_frame_item_of_mixed_sizes_is_stepped_and_played(app: DicomTuiApp) -> None:
    """Images that are not a volume (CR/DX, SC, US frames of other sizes): one single-frame volume each, shown
    one at a time; t steps, p plays them."""
    frames = []
    for n, (rows, cols) in enumerate([(40, 60), (64, 48), (30, 30)]):
        array = np.full((1, rows, cols), 100 * n, dtype=np.int16)
        frames.append(Volume(array, np.eye(4), name=f"image {n + 1}", modality="CR", extra={"frame_rate": 40.0}))
    async with app.run_test(size=SIZE) as pilot:
        app.loaded.append(ViewerItem("CR images", frames))
        app.action_viewer()
        await pilot.pause()
        view = app.screen.query_one(SliceView)
        image = app.screen.query_one("#slice-image")
        await pilot.press("t")
        assert view.time == 1 and "2/3: image 2" in overlay(app)
        assert image.grey.shape[0] / image.grey.shape[1] == pytest.approx(64 / 48, rel=0.1)  # its own size
        assert view.play() == 40.0
        await pilot.pause(0.2)
        assert view.play() is None
        seen = view.time
        await pilot.pause(0.1)
        assert view.time == seen and "axial 1/1" in overlay(app)
