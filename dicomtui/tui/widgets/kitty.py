"""Images with the kitty graphics protocol by direct placement: for kitty older than 0.28 (Debian 12 ships 0.26.5),
which has no unicode placeholders, so textual-image's kitty images show as a grid of missing-glyph boxes there.

The image is sent once (``a=T``: RGB, zlib-compressed, base64 in chunks of 4096, PS: "Transferring pixel data",
"Compression", "Remote client" in the kitty graphics protocol) and placed again (``a=p``) whenever Textual redraws
the widget; the cursor does not move (``C=1``), the image fills the widget's cells (``c``, ``r``). A direct
placement floats over the text: it is deleted (``a=d``) when another screen comes in front, and freed on unmount.
"""

from __future__ import annotations

import base64
import itertools
import zlib

import numpy as np
from textual.screen import Screen

from .graphics import GraphicsImage

_CHUNK = 4096
_IDS = itertools.count(7301)


def transmit(pixels: np.ndarray, image_id: int, cells: tuple[int, int]) -> str:
    """The APC sequences that send ``pixels`` (uint8 grey (H, W) or RGB (H, W, 3)) as image ``image_id`` and place
    it at the cursor over ``cells`` (columns, rows), the cursor left where it is; errors are not answered (q=2)."""
    rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels
    data = base64.standard_b64encode(zlib.compress(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes(), 1))
    chunks = [data[n:n + _CHUNK] for n in range(0, len(data), _CHUNK)] or [b""]
    head = (f"a=T,f=24,o=z,s={rgb.shape[1]},v={rgb.shape[0]},i={image_id},p=1,c={cells[0]},r={cells[1]},"
            "C=1,q=2")
    out = []
    for n, chunk in enumerate(chunks):
        keys = head if n == 0 else ""
        more = "1" if n < len(chunks) - 1 else "0"
        out.append(f"\x1b_G{keys}{',' if keys else ''}m={more};{chunk.decode('ascii')}\x1b\\")
    return "".join(out)


def place(image_id: int, cells: tuple[int, int]) -> str:
    """Place image ``image_id`` (already sent) at the cursor again, replacing its placement 1."""
    return f"\x1b_Ga=p,i={image_id},p=1,c={cells[0]},r={cells[1]},C=1,q=2\x1b\\"


def delete(image_id: int, free: bool = False) -> str:
    """Remove the placements of ``image_id`` (and its data when ``free``)."""
    return f"\x1b_Ga=d,d={'I' if free else 'i'},i={image_id},q=2\x1b\\"


class KittyImage(GraphicsImage):
    """An image shown by kitty graphics direct placement over the widget's cells."""

    renderer = "kitty"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_id = next(_IDS)
        self._sent: tuple[int, int] | None = None  # the cells the current image was sent for

    def show(self, pixels: np.ndarray | None) -> None:
        self._sent = None
        super().show(pixels)

    def on_mount(self) -> None:
        super().on_mount()
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def on_unmount(self) -> None:
        self._write(delete(self.image_id, free=True))

    def _screen_changed(self, screen: Screen) -> None:
        if screen is not self.screen:
            self._write(delete(self.image_id))

    def _write(self, data: str) -> None:
        driver = getattr(self.app, "_driver", None)
        if driver is not None and not self.app.is_headless:
            driver.write(data)

    def escape(self, cells: tuple[int, int]) -> str:
        data = place(self.image_id, cells) if self._sent == cells else transmit(self.pixels, self.image_id, cells)
        self._sent = cells
        return data
