"""Image widgets that send terminal graphics (sixel, kitty direct placement), and the renderer choice.

Textual composes lines of text; a graphics image is not text. As textual-image does for sixel, the widget returns
empty lines and puts the image's escape string, as a zero-width control segment, on its last line: cursor to the
widget's top-left cell, the image, cursor back to the bottom-right. The string is encoded once per image and
sent again whenever Textual redraws that line.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image as PILImage
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from . import terminal

_PLAIN = Style()


class GraphicsImage(Widget):
    """Shows ``image`` (a PIL image or a uint8 array, grey (H, W) or RGB (H, W, 3), already the size it is drawn
    at: cells × the cell size in pixels) with a terminal graphics protocol; subclasses give ``encode``."""

    renderer: ClassVar[str] = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pixels: np.ndarray | None = None  # what is shown (tests look at it)
        self._encoded: str | None = None

    @property
    def image(self) -> np.ndarray | None:
        return self.pixels

    @image.setter
    def image(self, value: PILImage.Image | np.ndarray | None) -> None:
        self.show(None if value is None else _array(value))

    def show(self, pixels: np.ndarray | None) -> None:
        self.pixels, self._encoded = pixels, None
        self.refresh()

    def on_mount(self) -> None:
        show_note(self)

    def encode(self, pixels: np.ndarray) -> str:
        raise NotImplementedError

    def escape(self, cells: tuple[int, int]) -> str:
        """What draws the image over ``cells`` (columns, rows) from the cursor at their top-left."""
        if self._encoded is None:
            self._encoded = self.encode(self.pixels)
        return self._encoded

    def render_lines(self, crop: Region) -> list[Strip]:
        try:
            if self.pixels is None or not self.screen.is_active or crop.height == 0:
                return []
            region = self.screen.find_widget(self).visible_region
        except (NoScreen, KeyError):
            return []
        segments = [Segment(Control.move_to(region.x, region.y).segment.text, _PLAIN),
                    Segment(self.escape((region.width, region.height)), _PLAIN,
                            control=((ControlType.CURSOR_FORWARD, 0),)),
                    Segment(Control.move_to(region.right, region.bottom).segment.text, _PLAIN)]
        return [Strip([])] * (crop.height - 1) + [Strip(segments, cell_length=crop.width)]


def _array(image: PILImage.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image)


def show_note(widget: Widget) -> None:
    """Say in the screen's header what the image shows and how to get more (once the terminal was asked: not in
    headless tests and screenshots, whose header stays the database path)."""
    if terminal.current()[1] is not None:
        widget.screen.sub_title = f"{image_note(getattr(widget, 'renderer', ''))} · {widget.app.sub_title}"


def image_note(renderer: str) -> str:
    """What the image shows in this terminal, for the viewer's header: levels, colour system, how to get more."""
    if renderer == "sixel":
        return "image: sixel, 101 grey levels"
    if renderer.startswith("kitty"):
        return "image: kitty graphics, 256 grey levels"
    if renderer == "halfblock":
        if terminal.colour_system() == "256":
            return "image: half-blocks, 30 greys (256 colours; 64 with --colors truecolor or tmux Tc/RGB)"
        return "image: half-blocks, 64 grey levels (24-bit colour)"
    return f"image: {renderer}"


def image_class(renderer: str):
    """The image widget for a renderer name (settings / --renderer). "auto" follows what the terminal answered
    (terminal.prepare, before the app started): kitty graphics, else sixel, else half-blocks. kitty ≥ 0.28 gets
    textual-image's unicode placeholders; older kitty (Debian 12: 0.26.5) our direct placement."""
    from .halfblocks import HalfBlocks
    from .kitty import KittyImage
    from .sixel import SixelImage

    if renderer == "auto":
        _, choice = terminal.current()
        renderer = choice.renderer if choice is not None else "halfblock"
    if renderer in ("kitty-placeholders", "unicode"):
        try:  # imported before Textual started by terminal.prepare (it asks the terminal at import)
            from textual_image import widget as image_widgets
        except Exception:  # noqa: BLE001 - e.g. ZeroDivisionError on a 0×0 pty
            return KittyImage if renderer.startswith("kitty") else HalfBlocks
        return image_widgets.TGPImage if renderer.startswith("kitty") else image_widgets.UnicodeImage
    return {"halfblock": HalfBlocks, "kitty": KittyImage, "sixel": SixelImage}[renderer]


def renderer_name(cls) -> str:
    """kitty, sixel, halfblock or unicode: what an image widget class draws with ("none" without one)."""
    if cls is None:
        return "none"
    if getattr(cls, "renderer", ""):
        return cls.renderer
    module = cls._Renderable.__module__.rsplit(".", 1)[-1]
    return {"tgp": "kitty", "halfcell": "halfblock"}.get(module, module)


def get_cell_size() -> terminal.CellSize:
    """Pixels per cell (what the terminal said, else 10×20)."""
    return terminal.get_cell_size()
