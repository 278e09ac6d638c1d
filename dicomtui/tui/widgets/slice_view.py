"""The slice view: one plane of a loaded volume drawn with textual-image (kitty, sixel or half-block cells).

The slice is windowed to grey levels and resized once here, to the cells the widget gets and to the physical
aspect given by the pixel spacing, so the renderer only converts pixels to the terminal's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.events import MouseMove, MouseScrollDown, MouseScrollUp, Resize
from textual.message import Message
from textual.widget import Widget

from ...core.volume import PLANES, View, Volume, view, window
from .halfblocks import HalfBlocks

try:  # textual-image asks the terminal about graphics support at import: before Textual takes the terminal
    from textual_image import widget as _image_widgets
    from textual_image._terminal import get_cell_size
except Exception:  # noqa: BLE001 - e.g. ZeroDivisionError on a 0×0 pty: images are then not shown
    _image_widgets = None
    get_cell_size = None


def image_class(renderer: str):
    """The image widget for a renderer name (settings / --renderer); "auto" lets textual-image detect. Half-block
    cells are drawn by our own widget (halfblocks.py: ten times faster than textual-image's)."""
    if renderer == "halfblock":
        return HalfBlocks
    if _image_widgets is None:
        return None
    if renderer == "auto" and renderer_name(_image_widgets.Image) == "halfblock":
        return HalfBlocks
    return {"auto": _image_widgets.Image, "kitty": _image_widgets.TGPImage, "sixel": _image_widgets.SixelImage,
            "unicode": _image_widgets.UnicodeImage}[renderer]


def renderer_name(cls) -> str:
    """kitty, sixel, halfblock or unicode: what an image widget class draws with ("none" without textual-image)."""
    if cls is None:
        return "none"
    if cls is HalfBlocks:
        return "halfblock"
    module = cls._Renderable.__module__.rsplit(".", 1)[-1]
    return {"tgp": "kitty", "halfcell": "halfblock"}.get(module, module)


@dataclass
class Loaded:
    """One item of the Loaded data list: a volume, or the volumes of a 4D series (time points, b-values…)."""

    name: str
    volumes: list[Volume]
    time: int = 0
    plane: str = "axial"
    index: dict[str, int] = field(default_factory=dict)  # slice per plane
    center: float = 0.0
    width: float = 1.0
    preset: str = ""
    zoom: float = 1.0
    cursor: tuple[int, int] | None = None  # (row, column) in the shown slice

    @property
    def volume(self) -> Volume:
        return self.volumes[self.time]


class SliceView(Widget, can_focus=True):
    """Shows ``item``'s current slice; the screen changes the item's state and calls :meth:`redraw`."""

    class Drawn(Message):
        """After each draw: the text of the overlay line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, renderer: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_cls = image_class(renderer)
        self.item: Loaded | None = None
        self._views: dict[tuple[int, str], View] = {}
        self._box: tuple[int, int, int, int] | None = None  # x0, y0, cells wide, cells high of the image

    def compose(self) -> ComposeResult:
        if self.image_cls is not None:
            yield self.image_cls(id="slice-image")

    def show(self, item: Loaded) -> None:
        self.item = item
        self._views = {}
        if not item.index:
            for plane in PLANES:
                item.index[plane] = len(self.current_view(plane)) // 2
        self.redraw()

    def current_view(self, plane: str | None = None) -> View:
        item = self.item
        plane = plane or item.plane
        key = (item.time, plane)
        if key not in self._views:
            self._views[key] = view(item.volume, plane)
        return self._views[key]

    # ---- drawing ---------------------------------------------------------------------------------------------

    def on_resize(self, _event: Resize) -> None:
        self.redraw()

    def slice_pixels(self) -> np.ndarray:
        """The shown part of the current slice (zoom crops around the centre)."""
        item = self.item
        v = self.current_view()
        item.index[item.plane] = min(max(item.index.get(item.plane, 0), 0), len(v) - 1)
        pixels = v.data[item.index[item.plane]]
        if item.zoom > 1:
            rows, cols = pixels.shape
            h, w = max(int(rows / item.zoom), 1), max(int(cols / item.zoom), 1)
            top, left = (rows - h) // 2, (cols - w) // 2
            pixels = pixels[top:top + h, left:left + w]
        return pixels

    def redraw(self) -> None:
        item = self.item
        if item is None or not self.size.width or not self.size.height:
            return
        v = self.current_view()
        pixels = self.slice_pixels()
        grey = window(pixels, item.center, item.width)
        rows, cols = grey.shape
        if item.cursor is not None:
            r, c = item.cursor
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
            image.show(np.asarray(PILImage.fromarray(grey).resize((cells_w, cells_h * 2), PILImage.Resampling.BILINEAR)))
            return
        if renderer_name(self.image_cls) == "unicode":
            size = (cells_w, cells_h * 2)  # what the cell renderer draws: resize once, here
        else:  # sixel bands are 6 pixels high: a taller image would spill into the row below and scroll
            size = (cells_w * cell_w, cells_h * cell_h // 6 * 6)
        image.image = PILImage.fromarray(grey).resize(size, PILImage.Resampling.BILINEAR)

    def overlay(self, v: View, pixels: np.ndarray) -> str:
        item = self.item
        s = item.index[item.plane]
        parts = [item.name, f"{item.plane} {s + 1}/{len(v)}", f"{v.axis_name} {v.positions[s]:+.1f} mm",
                 f"W {item.width:.0f} L {item.center:.0f}" + (f" ({item.preset})" if item.preset else "")]
        if len(item.volumes) > 1:
            extra = item.volume.extra
            label = f"{extra.get('key', 'volume')} {extra.get('value', '')}".strip()
            parts.append(f"{item.time + 1}/{len(item.volumes)}: {label}")
        if item.zoom > 1:
            parts.append(f"zoom {item.zoom:g}×")
        if item.cursor is not None:
            r, c = item.cursor
            if 0 <= r < pixels.shape[0] and 0 <= c < pixels.shape[1]:
                parts.append(f"({c}, {r}) = {pixels[r, c]:g}")
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
        rows, cols = self.slice_pixels().shape
        return int((y - y0 + 0.5) / h * rows), int((x - x0 + 0.5) / w * cols)

    def on_mouse_move(self, event: MouseMove) -> None:
        if self.item is not None:
            at = self.pixel_at(event.x, event.y)
            if at is not None:
                self.item.cursor = at
                self.redraw()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.step(1)
        event.stop()

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self.step(-1)
        event.stop()

    def step(self, delta: int) -> None:
        if self.item is not None:
            self.item.index[self.item.plane] = self.item.index.get(self.item.plane, 0) + delta
            self.redraw()


def _cell_size() -> tuple[int, int]:
    """Pixels per terminal cell (textual-image asks the terminal once; 10×20 when it cannot tell)."""
    try:
        size = get_cell_size()
        if size.width > 0 and size.height > 0:
            return size.width, size.height
    except Exception:  # noqa: BLE001
        pass
    return 10, 20
