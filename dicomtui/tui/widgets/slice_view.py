"""The slice view: one plane of a loaded volume drawn with textual-image (kitty, sixel or half-block cells).

The slice is windowed to grey levels and resized once here, to the cells the widget gets and to the physical
aspect given by the pixel spacing, so the renderer only converts pixels to the terminal's format. Around the
image: orientation letters, window/level and zoom, a scale bar (slice_marks.py); over it, after resampling, the
crosshair and the measurement. Positions (cursor, pan, measurement) are pixels of the whole slice, never of the
zoomed crop, and readouts go through core.viewgeom (voxel index, LPS mm, value and unit).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.events import MouseDown, MouseEvent, MouseMove, MouseScrollDown, MouseScrollUp, MouseUp, Resize
from textual.reactive import var
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from ...core.overlay import Layer, OverlayStyle, labels_at
from ...core.viewgeom import PlaneView, acquired, anatomical, cine_rate, value_unit
from ...core.volume import PLANES, Volume, display
from .frame_gc import collect_when_due, freeze_live
from .graphics import get_cell_size, image_class, renderer_name  # the renderer choice lives in graphics.py
from .halfblocks import HalfBlocks
from .overlay_layer import draw_overlays, suv_window
from .slice_marks import EDGE_COLUMNS, Box, draw_marks, label_strips


@dataclass(frozen=True)
class Window:
    """The grey levels shown: centre and width in the volume's units after rescale (HU for CT), and the name of
    the preset they came from ("" once changed by hand)."""

    center: float = 0.0
    width: float = 1.0
    preset: str = ""


Point = tuple[int, int, int]  # (column, row, slice) of a shown plane


@dataclass(frozen=True)
class SliceState:
    """Where the slice view left an item: the plane, the slice shown in each plane (PLANES order), the volume
    (index into a 4D item's volumes), the window, the zoom (1 to 16), the pixel cursor ((row, column) of the
    whole shown slice, or None), the pan (the zoomed crop's centre, (row, column); None: the slice's centre),
    whether an oblique volume is shown on its true anatomical planes, the measurement's points, and how the
    overlays are drawn (mode, dose threshold)."""

    plane: str
    slices: tuple[int, ...]
    time: int = 0
    window: Window = Window()
    zoom: float = 1.0
    cursor: tuple[int, int] | None = None
    pan: tuple[float, float] | None = None
    anatomical: bool = False
    measure: tuple[Point, ...] = ()
    overlay_style: OverlayStyle = OverlayStyle()


@dataclass(eq=False)
class ViewerItem:
    """One entry of the viewer's Loaded data list: a volume, or the volumes of a 4D series (time points,
    b-values…), and where the slice view left it (None until first shown: middle slices, the file's first
    window). Compared by identity: the same volumes loaded twice are two items. ``overlays``: label volumes
    and doses drawn over it (core.overlay; widgets/overlay_layer.attach_overlays puts them here).
    ``reference_only``: loaded only as the image a derived object (SEG, RTSTRUCT) lies on, not chosen."""

    name: str
    volumes: list[Volume]
    state: SliceState | None = None
    overlays: list[Volume] = field(default_factory=list)
    reference_only: bool = False

    @property
    def volume(self) -> Volume:
        return self.volumes[self.state.time if self.state else 0]


ZOOM_MAX = 16.0
_STATE = ("plane", "time", "window", "zoom", "cursor", "pan", "anatomical", "measure", "overlay_style")


class SliceView(Widget, can_focus=True):
    """Shows ``item``'s current slice. The state is a set of reactives; one change of state is one redraw:
    each action sets one reactive, and the watchers that keep the state consistent (a new plane drops the
    pixel cursor, the pan and the measurement; a new item brings its own state) set the others with
    ``set_reactive``. The computed ``shown`` (item and state together) is the one value whose watcher redraws.
    ``readout`` is the overlay line's text, set in the same redraw (the screen watches it: one frame per step)."""

    item: var[ViewerItem | None] = var(None, init=False)
    plane: var[str] = var("axial", init=False)
    index: var[int] = var(0, init=False)  # the slice shown, in ``plane``
    time: var[int] = var(0, init=False)  # the volume shown, of a 4D item
    window: var[Window] = var(Window(), init=False)
    zoom: var[float] = var(1.0, init=False)
    cursor: var[tuple[int, int] | None] = var(None, init=False)  # (row, column) of the whole shown slice
    pan: var[tuple[float, float] | None] = var(None, init=False)  # the crop's centre (row, column)
    anatomical: var[bool] = var(False, init=False)  # an oblique volume resampled on the patient's planes
    measure: var[tuple[Point, ...]] = var((), init=False)  # up to two points, (column, row, slice)
    overlay_style: var[OverlayStyle] = var(OverlayStyle(), init=False)  # how the item's overlays are drawn
    shown: var[tuple[ViewerItem, SliceState] | None] = var(None, init=False)  # computed; reading it recomputes
    readout: var[str] = var("", init=False)

    def __init__(self, renderer: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_cls = image_class(renderer)
        self._views: dict[tuple[int, str, bool], PlaneView] = {}
        self._slices: dict[str, int] = {}  # the slice last shown in each plane
        self._box: Box | None = None  # the image's cells
        self._labels: dict[int, Strip] = {}  # the text rows around the image, by row
        self._labels_key: tuple = ()
        self._blank = Strip.blank(0)
        self._cine: Timer | None = None
        self._drag: tuple[int, int, float, float] | None = None  # mouse x, y and the pan centre at button down
        self._layers: tuple[tuple, list[Layer]] = ((), [])
        self.under_cursor = ""  # (the base volume's id, overlays), their layers

    def compose(self) -> ComposeResult:
        if self.image_cls is not None:
            yield self.image_cls(id="slice-image")

    def show(self, item: ViewerItem | None) -> None:
        self.item = item

    def current_view(self, plane: str | None = None) -> PlaneView:
        """The shown plane (or ``plane``) of the shown volume: acquired voxels, or the anatomical resampling."""
        plane = plane or self.plane
        key = (self.time, plane, self.anatomical)
        if key not in self._views:
            self._views[key] = self._view_of(plane, self.anatomical)
        return self._views[key]

    # ---- state -----------------------------------------------------------------------------------------------

    def compute_shown(self) -> tuple[ViewerItem, SliceState] | None:
        item = self.item
        if item is None:
            return None
        slices = tuple(self.index if plane == self.plane else self._slices.get(plane, 0) for plane in PLANES)
        return item, SliceState(self.plane, slices, self.time, self.window, self.zoom, self.cursor, self.pan,
                                self.anatomical, self.measure, self.overlay_style)

    def watch_shown(self, shown: tuple[ViewerItem, SliceState] | None) -> None:
        if shown is not None:
            item, state = shown
            item.state = state  # shown again as it was left
            self.redraw()

    def watch_item(self, item: ViewerItem | None) -> None:
        self._views, self._layers = {}, ((), [])
        if self._cine is not None:
            self.play()  # another item: the cine stops
        if item is None:
            self._clear()
            return
        state = item.state or self._first_state(item)
        self._slices = dict(zip(PLANES, state.slices, strict=True))
        self.set_reactive(SliceView.index, self._slices[state.plane])
        for name in _STATE:
            self.set_reactive(getattr(SliceView, name), getattr(state, name))
        # what is alive once the item is on the screen (the app, its screens, the volume) lives as long as the
        # viewer: out of the cyclic collector's way, a full collection scans only what came after (tui_bench)
        self.call_after_refresh(freeze_live)

    def on_unmount(self) -> None:
        gc.unfreeze()  # what was frozen while the viewer was open is collectable again (the app leaving, a test)

    def _clear(self) -> None:
        """No item: an empty view (the memory of the last one is given back with its references)."""
        self._slices, self._labels, self._box = {}, {}, None
        self.readout = "No volume loaded: select series in the browser and press Enter"
        if self.image_cls is HalfBlocks:
            self.query_one("#slice-image", HalfBlocks).show(np.zeros((2, 1), dtype=np.uint8))
        self.refresh()

    def _first_state(self, item: ViewerItem) -> SliceState:
        """Middle slices, the first window the file gives (else the modality's)."""
        self.set_reactive(SliceView.time, 0)
        self.set_reactive(SliceView.anatomical, False)
        slices = tuple(len(self.current_view(plane)) // 2 for plane in PLANES)
        first = item.volumes[0].windows[0] if item.volumes[0].windows else None
        window = Window(first.center, first.width, first.name) if first is not None else Window()
        return SliceState("axial", slices, window=window)

    def validate_index(self, index: int) -> int:
        if self.item is None:
            return index
        return min(max(index, 0), len(self.current_view()) - 1)

    def validate_time(self, time: int) -> int:
        return time % len(self.item.volumes) if self.item is not None else 0

    def validate_zoom(self, zoom: float) -> float:
        return min(max(zoom, 1.0), ZOOM_MAX)

    def validate_pan(self, pan: tuple[float, float] | None) -> tuple[float, float] | None:
        """The crop stays inside the slice: its centre at least half a crop from each edge."""
        if pan is None or self.item is None:
            return pan
        rows, cols = self.current_view().data.shape[1:3]  # grey [k, rows, cols] or RGB [k, rows, cols, 3]
        h, w = rows / self.zoom, cols / self.zoom
        return (min(max(pan[0], h / 2), rows - h / 2), min(max(pan[1], w / 2), cols - w / 2))

    def watch_plane(self, old: str, new: str) -> None:
        self._slices[old] = self.index
        self.set_reactive(SliceView.index, self.validate_index(self._slices.get(new, 0)))
        for name, value in (("cursor", None), ("pan", None), ("measure", ())):  # pixels of another plane
            self.set_reactive(getattr(SliceView, name), value)

    def watch_zoom(self, zoom: float) -> None:
        self.set_reactive(SliceView.pan, None if zoom == 1 else self.validate_pan(self.pan))

    def watch_anatomical(self, old: bool, new: bool) -> None:
        """Acquired ↔ anatomical planes: every plane's slice follows the patient position of its centre."""
        self._slices[self.plane] = self.index
        for plane in PLANES:
            before = self._views.get((self.time, plane, old)) or self._view_of(plane, old)
            after = self.current_view(plane)
            s = self._slices.get(plane, len(before) // 2)
            rows, cols = before.data.shape[1:3]  # grey [k, rows, cols] or RGB [k, rows, cols, 3]
            point = np.append(before.lps((cols - 1) / 2, (rows - 1) / 2, s), 1.0)
            moved = (np.linalg.inv(after.to_lps) @ point)[2]
            self._slices[plane] = int(min(max(round(moved), 0), len(after) - 1))
        self.set_reactive(SliceView.index, self._slices[self.plane])
        for name, value in (("cursor", None), ("pan", None), ("measure", ())):
            self.set_reactive(getattr(SliceView, name), value)

    def _view_of(self, plane: str, anatomical_planes: bool) -> PlaneView:
        volume = self.item.volumes[self.time]  # colour is not resampled: its acquired planes are shown
        return (anatomical if anatomical_planes and not volume.is_rgb else acquired)(volume, plane)

    def show_plane(self, plane: str) -> None:
        """Show ``plane`` (the slice it was left at); the pixel cursor goes, even when the plane stays."""
        if plane == self.plane:
            self.cursor = None
        else:
            self.plane = plane

    def zoom_to(self, zoom: float) -> None:
        """Zoom to ``zoom`` (1 fits the slice; at most 16) around the pan centre; fitting also drops the pan."""
        self.zoom = zoom

    def step(self, delta: int) -> None:
        if self.item is not None:
            self.index += delta

    def pan_by(self, drow: float, dcol: float) -> None:
        """Move the zoomed crop by (rows, columns) of the slice."""
        if self.item is None or self.zoom == 1:
            return
        top, left, h, w = self.crop()
        self.pan = (top + h / 2 + drow, left + w / 2 + dcol)

    def mark(self) -> None:
        """A measurement point at the cursor (the slice's centre without one): the first, the second (the
        distance is shown), then a new first."""
        if self.item is None:
            return
        rows, cols = self.current_view().data.shape[1:3]  # grey [k, rows, cols] or RGB [k, rows, cols, 3]
        r, c = self.cursor or (rows // 2, cols // 2)
        point = (c, r, min(self.index, len(self.current_view()) - 1))
        self.measure = (point,) if len(self.measure) != 1 else (*self.measure, point)

    @property
    def playing(self) -> bool:
        return self._cine is not None

    def play(self) -> float | None:
        """Cine: start (or stop) stepping through the frames, wrapping at the end: the shown plane's slices, or,
        for an item of single-frame images (a per-frame item: one volume per image, sizes may differ), its
        volumes. The rate is the volume's (``extra["frame_rate"]`` from CineRate / FrameTime, PS3.3 C.7.6.5),
        else 10. Returns the frames per second started, None when stopped (or nothing to play)."""
        if self._cine is not None:
            self._cine.stop()
            self._cine = None
            return None
        if self.item is None or (len(self.current_view()) < 2 and len(self.item.volumes) < 2):
            return None
        fps = cine_rate(self.item.volumes[self.time])
        self._cine = self.set_interval(1 / fps, self._next_frame)
        return fps

    def _next_frame(self) -> None:
        if self.item is None:
            self.play()
        elif len(self.current_view()) < 2:  # one image per volume: the next volume (validate_time wraps)
            self.time += 1
        else:
            self.index = 0 if self.index >= len(self.current_view()) - 1 else self.index + 1

    # ---- drawing ---------------------------------------------------------------------------------------------

    def on_resize(self, _event: Resize) -> None:
        self.redraw()

    def crop(self) -> tuple[int, int, int, int]:
        """The shown part of the current slice: (top, left, rows, columns), zoom around the pan centre."""
        rows, cols = self.current_view().data.shape[1:3]  # grey [k, rows, cols] or RGB [k, rows, cols, 3]
        if self.zoom <= 1:
            return 0, 0, rows, cols
        h, w = max(int(rows / self.zoom), 1), max(int(cols / self.zoom), 1)
        centre = self.pan or (rows / 2, cols / 2)
        top = min(max(int(round(centre[0] - h / 2)), 0), rows - h)
        left = min(max(int(round(centre[1] - w / 2)), 0), cols - w)
        return top, left, h, w

    def slice_pixels(self) -> np.ndarray:
        """The shown part of the current slice (zoom crops around the pan centre)."""
        top, left, h, w = self.crop()
        return self.current_view().slice(self.index)[top:top + h, left:left + w]

    def grey(self, pixels: np.ndarray) -> np.ndarray:
        """What the renderer gets: uint8 grey (H, W), the window (or SIGMOID) applied and MONOCHROME1 / INVERSE
        inverted after it; or RGB (H, W, 3) for colour (core.volume.display)."""
        return display(pixels, self.window.center, self.window.width, self.item.volumes[self.time].presentation)

    def redraw(self) -> None:
        if self.item is None or not self.size.width or not self.size.height:
            return
        v = self.current_view()
        s = min(self.index, len(v) - 1)
        full = v.slice(s)
        top, left, rows, cols = self.crop()
        pixels = full[top:top + rows, left:left + cols]
        self.readout = self.overlay(v, full)
        if self.image_cls is None:
            return
        cell_w, cell_h = _cell_size()
        avail_w = max(self.size.width - 2 * EDGE_COLUMNS, 1) * cell_w
        avail_h = max(self.size.height - 2, 1) * cell_h  # a row above and below for letters, window, scale
        aspect = (cols * v.col_mm) / max(rows * v.row_mm, 1e-6)  # physical width / height
        if avail_w / aspect <= avail_h:
            px_w, px_h = avail_w, avail_w / aspect
        else:
            px_w, px_h = avail_h * aspect, avail_h
        cells_w, cells_h = max(int(round(px_w / cell_w)), 1), max(int(round(px_h / cell_h)), 1)
        image = self.query_one("#slice-image")
        image.styles.width, image.styles.height = cells_w, cells_h  # centred by the stylesheet (align)
        box = self._box = Box((self.size.width - cells_w) // 2, (self.size.height - cells_h) // 2, cells_w, cells_h)
        self._update_labels(v, box, cols * v.col_mm / cells_w)
        if self.image_cls is HalfBlocks or renderer_name(self.image_cls) == "unicode":
            size = (cells_w, cells_h * 2)  # what the cell renderer draws: resize once, here
        elif renderer_name(self.image_cls) == "sixel":  # bands are 6 pixels high: a taller image would spill
            size = (cells_w * cell_w, cells_h * cell_h // 6 * 6)  # into the row below and scroll
        else:  # kitty: exactly the cells
            size = (cells_w * cell_w, cells_h * cell_h)
        shown = np.asarray(PILImage.fromarray(self.grey(pixels)).resize(size, PILImage.Resampling.BILINEAR))
        scale_y, scale_x = size[1] / rows, size[0] / cols

        def at(r: float, c: float) -> tuple[float, float]:  # a slice pixel's centre in the resized image
            return (r - top + 0.5) * scale_y, (c - left + 0.5) * scale_x

        cursor = at(*self.cursor) if self.cursor is not None else None
        points = [at(r, c) for c, r, k in self.measure if k == s]
        if (cursor is not None or points) and self.image_cls is not HalfBlocks and shown.ndim == 2:
            shown = np.repeat(shown[:, :, None], 3, axis=2)  # graphics: the marks in amber; half-blocks: contrast
        shown = draw_overlays(shown, self.overlay_layers(), v, s, (top, left, rows, cols), self.overlay_style)
        shown = draw_marks(shown, cursor, points)
        if self.image_cls is HalfBlocks:
            image.show(shown)
        else:
            image.image = PILImage.fromarray(shown)
        self.call_after_refresh(collect_when_due)

    def overlay_layers(self) -> list[Layer]:
        """The shown item's overlays (label volumes, doses) as layers on the shown volume (kept per volume)."""
        if self.item is None or not self.item.overlays:
            return []
        base = self.item.volumes[self.time]
        key = (id(base), *map(id, self.item.overlays))  # overlays may be added to a shown item
        if self._layers[0] != key:
            self._layers = (key, [Layer(base, volume) for volume in self.item.overlays])
        return self._layers[1]

    def _update_labels(self, v: PlaneView, box: Box, mm_per_cell: float) -> None:
        """The text around the image; this widget is repainted only when it changed (not at each slice). A PET
        volume with SUV factors names its window in SUV ("SUV 0-5")."""
        win = self.window
        level = suv_window(self.item.volumes[self.time], win.center, win.width) if self.item else ""
        corner = (level or f"W {win.width:.0f} L {win.center:.0f}") + (f" ({win.preset})" if win.preset
                                                                        and win.preset != level else "")
        zoom = f"zoom {self.zoom:g}×" if self.zoom > 1 else ""
        letters = v.edge_letters()
        key = (self.size.width, self.size.height, box, tuple(letters.values()), corner, zoom, round(mm_per_cell, 6))
        if key != self._labels_key:
            self._labels_key = key
            base = self.rich_style  # the background under the text: a terminal's default one may be white (xterm)
            self._labels = {y: strip.apply_style(base) for y, strip in label_strips(
                self.size.width, self.size.height, box, letters, corner, zoom, mm_per_cell).items()}
            self._blank = Strip.blank(self.size.width, base)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        strip = self._labels.get(y)
        if strip is None:  # one blank strip per width and style, kept: a new one per row and frame is garbage
            if self._blank.cell_length != self.size.width:  # with a cycle
                self._blank = Strip.blank(self.size.width, self.rich_style)
            strip = self._blank
        return strip

    def overlay(self, v: PlaneView, full: np.ndarray) -> str:
        """The overlay line: item, plane and slice, its position, the 4D volume, the cursor (voxel index, LPS mm,
        value and unit), the measurement, and which planes an oblique volume is shown on."""
        item, s = self.item, min(self.index, len(v) - 1)
        self.under_cursor = ""  # segments, dose and SUV under the cursor (the legend line repeats them)
        parts = [item.name, f"{self.plane} {s + 1}/{len(v)}", v.position(s)]
        if len(item.volumes) > 1:
            volume = item.volumes[self.time]
            extra = volume.extra
            label = f"{extra.get('key', 'volume')} {extra.get('value', '')}".strip()
            if "key" not in extra and volume.name:
                label = volume.name  # a per-frame item: the image's own name
            parts.append(f"{self.time + 1}/{len(item.volumes)}: {label}")
        if self.cursor is not None:
            r, c = self.cursor
            if 0 <= r < full.shape[0] and 0 <= c < full.shape[1]:
                i, j, k = v.voxel(c, r, s)
                x, y, z = v.lps(c, r, s)
                unit = value_unit(item.volumes[self.time])
                value = full[r, c]  # a value, or (R, G, B)
                shown = "/".join(map(str, value)) if np.ndim(value) else f"{float(value):.6g}"
                parts.append(f"voxel ({i}, {j}, {k})  LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm  "
                             f"= {shown}{' ' + unit if unit else ''}")
                volume = item.volumes[self.time]
                if item.overlays or (volume.suv_factors and not np.ndim(value)):
                    under = labels_at(volume, item.overlays, (x, y, z), None if np.ndim(value) else float(value))
                    self.under_cursor = under.text()
                    if under.text():
                        parts.append(under.text())
        if len(self.measure) == 2:
            parts.append(f"distance {v.distance_mm(*self.measure):.1f} mm")
        elif len(self.measure) == 1:
            parts.append("measure: m again at the second point")
        if v.oblique:
            parts.append("anatomical planes (resampled; r: acquired)" if v.anatomical
                         else "oblique: nearest plane shown (r: anatomical planes)")
        return "  ·  ".join(parts)

    # ---- mouse -----------------------------------------------------------------------------------------------

    def pixel_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The (row, column) of the whole shown slice under cell (x, y) of this widget."""
        box = self._box
        if box is None or self.item is None:
            return None
        if not (box.x <= x < box.x + box.w and box.y <= y < box.y + box.h):
            return None
        top, left, rows, cols = self.crop()
        return top + int((y - box.y + 0.5) / box.h * rows), left + int((x - box.x + 0.5) / box.w * cols)

    def on_mouse_down(self, event: MouseDown) -> None:
        if event.button == 3:  # right button: a measurement point where it is pressed
            at = self._pixel_under(event)
            if at is not None:
                self.set_reactive(SliceView.cursor, at)  # one redraw: the mark's
                self.mark()
            return
        if event.button == 1 and self.zoom > 1 and self.item is not None:  # drag to pan
            top, left, h, w = self.crop()
            self._drag = (event.screen_x, event.screen_y, top + h / 2, left + w / 2)
            self.capture_mouse()

    def on_mouse_up(self, _event: MouseUp) -> None:
        if self._drag is not None:
            self._drag = None
            self.capture_mouse(False)

    def on_mouse_move(self, event: MouseMove) -> None:
        if self._drag is not None and self._box is not None:
            x0, y0, r0, c0 = self._drag
            _, _, h, w = self.crop()
            self.pan = (r0 - (event.screen_y - y0) * h / self._box.h, c0 - (event.screen_x - x0) * w / self._box.w)
            return
        at = self._pixel_under(event)
        if at is not None:
            self.cursor = at

    def _pixel_under(self, event: MouseEvent) -> tuple[int, int] | None:
        """The slice pixel under the mouse; the event may come from the image widget (its x, y are then the
        image's): the screen position is what counts."""
        return self.pixel_at(event.screen_x - self.region.x, event.screen_y - self.region.y)

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.step(1)
        event.stop()

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self.step(-1)
        event.stop()


def _cell_size() -> tuple[int, int]:
    """Pixels per terminal cell (textual-image asks the terminal once; 10×20 when it cannot tell)."""
    try:
        size = get_cell_size()
        if size.width > 0 and size.height > 0:
            return size.width, size.height
    except Exception:  # noqa: BLE001
        pass
    return 10, 20
