"""The slice view: one plane of a loaded volume drawn with textual-image (kitty, sixel or half-block cells).

The slice is windowed to grey levels and resized once here, to the cells the widget gets and to the physical
aspect given by the pixel spacing, so the renderer only converts pixels to the terminal's format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.events import MouseMove, MouseScrollDown, MouseScrollUp, Resize
from textual.message import Message
from textual.reactive import var
from textual.widget import Widget

from ...core.volume import PLANES, View, Volume, display, view
from .graphics import get_cell_size, image_class, renderer_name  # the renderer choice lives in graphics.py
from .halfblocks import HalfBlocks


@dataclass(frozen=True)
class Window:
    """The grey levels shown: centre and width in the volume's units after rescale (HU for CT), and the name of
    the preset they came from ("" once changed by hand)."""

    center: float = 0.0
    width: float = 1.0
    preset: str = ""


@dataclass(frozen=True)
class SliceState:
    """Where the slice view left an item: the plane, the slice shown in each plane (PLANES order), the volume
    (index into a 4D item's volumes), the window, the zoom (1 to 16, cropping around the centre) and the pixel
    cursor ((row, column) in the shown slice, or None)."""

    plane: str
    slices: tuple[int, ...]
    time: int = 0
    window: Window = Window()
    zoom: float = 1.0
    cursor: tuple[int, int] | None = None


@dataclass(eq=False)
class ViewerItem:
    """One entry of the viewer's Loaded data list: a volume, or the volumes of a 4D series (time points,
    b-values…), and where the slice view left it (None until first shown: middle slices, the file's first
    window). Compared by identity: the same volumes loaded twice are two items."""

    name: str
    volumes: list[Volume]
    state: SliceState | None = None

    @property
    def volume(self) -> Volume:
        return self.volumes[self.state.time if self.state else 0]


ZOOM_MAX = 16.0


class SliceView(Widget, can_focus=True):
    """Shows ``item``'s current slice. The state is a set of reactives; one change of state is one redraw:
    each action sets one reactive, and the watchers that keep the state consistent (a new plane or zoom drops
    the pixel cursor, a new item brings its own state) set the others with ``set_reactive``. The computed
    ``shown`` (item and state together) is the one value whose watcher redraws."""

    item: var[ViewerItem | None] = var(None, init=False)
    plane: var[str] = var("axial", init=False)
    index: var[int] = var(0, init=False)  # the slice shown, in ``plane``
    time: var[int] = var(0, init=False)  # the volume shown, of a 4D item
    window: var[Window] = var(Window(), init=False)
    zoom: var[float] = var(1.0, init=False)
    cursor: var[tuple[int, int] | None] = var(None, init=False)  # (row, column) in the shown slice
    shown: var[tuple[ViewerItem, SliceState] | None] = var(None, init=False)  # computed; reading it recomputes

    class Drawn(Message):
        """After each draw: the text of the overlay line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, renderer: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_cls = image_class(renderer)
        self._views: dict[tuple[int, str], View] = {}
        self._slices: dict[str, int] = {}  # the slice last shown in each plane
        self._box: tuple[int, int, int, int] | None = None  # x0, y0, cells wide, cells high of the image

    def compose(self) -> ComposeResult:
        if self.image_cls is not None:
            yield self.image_cls(id="slice-image")

    def show(self, item: ViewerItem) -> None:
        self.item = item

    def current_view(self, plane: str | None = None) -> View:
        plane = plane or self.plane
        key = (self.time, plane)
        if key not in self._views:
            self._views[key] = view(self.item.volumes[self.time], plane)
        return self._views[key]

    # ---- state -----------------------------------------------------------------------------------------------

    def compute_shown(self) -> tuple[ViewerItem, SliceState] | None:
        item = self.item
        if item is None:
            return None
        slices = tuple(self.index if plane == self.plane else self._slices.get(plane, 0) for plane in PLANES)
        return item, SliceState(self.plane, slices, self.time, self.window, self.zoom, self.cursor)

    def watch_shown(self, shown: tuple[ViewerItem, SliceState] | None) -> None:
        if shown is not None:
            item, state = shown
            item.state = state  # shown again as it was left
            self.redraw()

    def watch_item(self, item: ViewerItem | None) -> None:
        self._views = {}
        if item is None:
            return
        state = item.state or self._first_state(item)
        self._slices = dict(zip(PLANES, state.slices, strict=True))
        for name, value in [("plane", state.plane), ("index", self._slices[state.plane]), ("time", state.time),
                            ("window", state.window), ("zoom", state.zoom), ("cursor", state.cursor)]:
            self.set_reactive(getattr(SliceView, name), value)

    def _first_state(self, item: ViewerItem) -> SliceState:
        """Middle slices, the first window the file gives (else the modality's)."""
        self.set_reactive(SliceView.time, 0)
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

    def watch_plane(self, old: str, new: str) -> None:
        self._slices[old] = self.index
        self.set_reactive(SliceView.index, self.validate_index(self._slices.get(new, 0)))
        self.set_reactive(SliceView.cursor, None)  # a pixel of another plane

    def watch_zoom(self) -> None:
        self.set_reactive(SliceView.cursor, None)  # the pixel moved on the screen

    def show_plane(self, plane: str) -> None:
        """Show ``plane`` (the slice it was left at); the pixel cursor goes, even when the plane stays."""
        if plane == self.plane:
            self.cursor = None
        else:
            self.plane = plane

    def zoom_to(self, zoom: float) -> None:
        """Zoom to ``zoom`` (1 fits the slice; at most 16); the pixel cursor goes, even when the zoom stays."""
        if self.validate_zoom(zoom) == self.zoom:
            self.cursor = None
        else:
            self.zoom = zoom

    def step(self, delta: int) -> None:
        if self.item is not None:
            self.index += delta

    # ---- drawing ---------------------------------------------------------------------------------------------

    def on_resize(self, _event: Resize) -> None:
        self.redraw()

    def slice_pixels(self) -> np.ndarray:
        """The shown part of the current slice (zoom crops around the centre)."""
        v = self.current_view()
        pixels = v.data[min(self.index, len(v) - 1)]
        zoom = self.zoom
        if zoom > 1:
            rows, cols = pixels.shape[:2]
            h, w = max(int(rows / zoom), 1), max(int(cols / zoom), 1)
            top, left = (rows - h) // 2, (cols - w) // 2
            pixels = pixels[top:top + h, left:left + w]
        return pixels

    def redraw(self) -> None:
        if self.item is None or not self.size.width or not self.size.height:
            return
        v = self.current_view()
        pixels = self.slice_pixels()
        # grey (H, W) uint8, or RGB (H, W, 3) for colour: MONOCHROME1 / INVERSE and SIGMOID already applied
        grey = display(pixels, self.window.center, self.window.width, v.presentation)
        rows, cols = grey.shape[:2]
        cursor = self.cursor
        if cursor is not None:
            r, c = cursor
            if 0 <= r < rows and 0 <= c < cols:
                grey = grey.copy()
                grey[r, max(c - 3, 0):c + 4] = 255 - grey[r, c]
                grey[max(r - 3, 0):r + 4, c] = 255 - grey[r, c]
        self.post_message(self.Drawn(self.overlay(v, pixels)))
        if self.image_cls is None:
            return
        cell_w, cell_h = _cell_size()
        avail_w, avail_h = self.size.width * cell_w, (self.size.height - 1) * cell_h
        aspect = (cols * v.col_mm) / max(rows * v.row_mm, 1e-6)  # physical width / height
        if avail_w / aspect <= avail_h:
            px_w, px_h = avail_w, avail_w / aspect
        else:
            px_w, px_h = avail_h * aspect, avail_h
        cells_w, cells_h = max(int(round(px_w / cell_w)), 1), max(int(round(px_h / cell_h)), 1)
        image = self.query_one("#slice-image")
        image.styles.width, image.styles.height = cells_w, cells_h  # centred by the stylesheet (align)
        self._box = ((self.size.width - cells_w) // 2, (self.size.height - cells_h) // 2, cells_w, cells_h)
        if self.image_cls is HalfBlocks:
            grey_cells = PILImage.fromarray(grey).resize((cells_w, cells_h * 2), PILImage.Resampling.BILINEAR)
            image.show(np.asarray(grey_cells))
            return
        if renderer_name(self.image_cls) == "unicode":
            size = (cells_w, cells_h * 2)  # what the cell renderer draws: resize once, here
        else:  # sixel bands are 6 pixels high: a taller image would spill into the row below and scroll
            size = (cells_w * cell_w, cells_h * cell_h // 6 * 6)
        image.image = PILImage.fromarray(grey).resize(size, PILImage.Resampling.BILINEAR)

    def overlay(self, v: View, pixels: np.ndarray) -> str:
        item, s, win = self.item, min(self.index, len(v) - 1), self.window
        parts = [item.name, f"{self.plane} {s + 1}/{len(v)}", f"{v.axis_name} {v.positions[s]:+.1f} mm",
                 f"W {win.width:.0f} L {win.center:.0f}" + (f" ({win.preset})" if win.preset else "")]
        if len(item.volumes) > 1:
            extra = item.volumes[self.time].extra
            label = f"{extra.get('key', 'volume')} {extra.get('value', '')}".strip()
            parts.append(f"{self.time + 1}/{len(item.volumes)}: {label}")
        if self.zoom > 1:
            parts.append(f"zoom {self.zoom:g}×")
        if self.cursor is not None:
            r, c = self.cursor
            if 0 <= r < pixels.shape[0] and 0 <= c < pixels.shape[1]:
                value = pixels[r, c]  # a grey value, or (R, G, B)
                parts.append(f"({c}, {r}) = " + ("/".join(map(str, value)) if np.ndim(value) else f"{value:g}"))
        if v.oblique:
            parts.append("oblique: nearest plane shown")
        return "  ·  ".join(parts)

    # ---- mouse -----------------------------------------------------------------------------------------------

    def pixel_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The (row, column) of the shown slice under cell (x, y) of this widget."""
        if self._box is None or self.item is None:
            return None
        x0, y0, w, h = self._box
        if not (x0 <= x < x0 + w and y0 <= y < y0 + h):
            return None
        rows, cols = self.slice_pixels().shape[:2]
        return int((y - y0 + 0.5) / h * rows), int((x - x0 + 0.5) / w * cols)

    def on_mouse_move(self, event: MouseMove) -> None:
        at = self.pixel_at(event.x, event.y)
        if at is not None:
            self.cursor = at

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
