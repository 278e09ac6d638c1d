"""Images as half-block cells ("▀": the upper pixel is the foreground, the lower the background).

textual-image's half-cell renderer builds two Rich Colors and a Style for every cell of every frame: 40–80 ms for
a 92×46-cell slice here, more than the 50 ms a slice step may take. This widget makes the strips straight from
the uint8 array, with one cached Style per (upper, lower) colour pair and runs of equal cells merged: about 4 ms.

The colour system is chosen, never left to a downgrade (terminal.colour_system()):
- truecolor: greys in 64 levels (4,096 style pairs, a cache that stays warm), colours in 32 levels a channel;
- 256: the palette's 24-step grey ramp (232–255: 8, 18 … 238) and the colour cube's six greys (0, 95, 135, 175,
  215, 255): 30 levels, with 4×4 ordered (Bayer) dithering between the two nearest; colours on the 6×6×6 cube.
  Left to Rich, ``TERM=xterm`` without ``COLORTERM`` (what SSH gives) would make 16 colours, 4 greys, of it.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from . import terminal

LEVELS = 64
_STEP = 256 // LEVELS
_STYLES: dict[tuple[str, int], Style] = {}
_STYLE_CACHE_MAX = 65536

# the 256-colour palette's greys: (value, palette index), by value (xterm's palette, PS: xterm 256colres.pl)
_CUBE_STEPS = (0, 95, 135, 175, 215, 255)
PALETTE_GREYS = sorted([(8 + 10 * n, 232 + n) for n in range(24)]
                       + [(v, 16 + 43 * n) for n, v in enumerate(_CUBE_STEPS)])
_GREY_VALUES = np.array([v for v, _ in PALETTE_GREYS], dtype=np.float64)
_GREY_INDEX = np.array([i for _, i in PALETTE_GREYS], dtype=np.uint8)
_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=np.float64) + 0.5) / 16
# per grey 0–255: the palette grey at or below, the one above, and how far towards the upper one (0–1)
_LOWER = np.clip(np.searchsorted(_GREY_VALUES, np.arange(256), side="right") - 1, 0, len(_GREY_VALUES) - 2)
_FRACTION = (np.arange(256) - _GREY_VALUES[_LOWER]) / (_GREY_VALUES[_LOWER + 1] - _GREY_VALUES[_LOWER])
_CUBE_OF = np.abs(np.arange(256)[:, None] - np.array(_CUBE_STEPS)[None, :]).argmin(axis=1).astype(np.uint16)


def palette_256(image: np.ndarray) -> np.ndarray:
    """256-colour palette indices (uint16, (H, W)) of a uint8 grey (H, W) or RGB (H, W, 3) image: greys dithered
    over the 30 palette greys, other colours the nearest of the 6×6×6 cube."""
    grey = image if image.ndim == 2 else image[..., 0]
    h, w = grey.shape
    threshold = np.tile(_BAYER, (h // 4 + 1, w // 4 + 1))[:h, :w]
    level = _LOWER[grey] + (_FRACTION[grey] > threshold)
    out = _GREY_INDEX[level].astype(np.uint16)
    if image.ndim == 3:
        coloured = (image[..., 0] != image[..., 1]) | (image[..., 1] != image[..., 2])
        cube = 16 + 36 * _CUBE_OF[image[..., 0]] + 6 * _CUBE_OF[image[..., 1]] + _CUBE_OF[image[..., 2]]
        out[coloured] = cube[coloured]
    return out


def _truecolor_codes(image: np.ndarray) -> np.ndarray:
    """A code per pixel: the grey level (0–63), or 64 + the colour in 5 bits a channel."""
    if image.ndim == 2:
        return (image // _STEP).astype(np.uint32)
    q = (image >> 3).astype(np.uint32)
    codes = 64 + ((q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2])
    grey = (image[..., 0] == image[..., 1]) & (image[..., 1] == image[..., 2])
    codes[grey] = image[..., 0][grey] // _STEP
    return codes


def _colour(system: str, code: int) -> Color:
    if system == "256":
        return Color.from_ansi(code)
    if code < LEVELS:
        v = code * _STEP + _STEP // 2
        return Color.from_rgb(v, v, v)
    code -= LEVELS
    return Color.from_rgb(((code >> 10) & 31) * 8 + 4, ((code >> 5) & 31) * 8 + 4, (code & 31) * 8 + 4)


def _style(system: str, key: int) -> Style:
    style = _STYLES.get((system, key))
    if style is None:
        if len(_STYLES) > _STYLE_CACHE_MAX:  # colour images can make many pairs; greys never get here
            _STYLES.clear()
        style = _STYLES[system, key] = Style(color=_colour(system, key >> 16), bgcolor=_colour(system, key & 0xFFFF))
    return style


def strips(image: np.ndarray, system: str | None = None) -> list[Strip]:
    """One strip per pair of pixel rows of ``image`` (uint8 grey (H, W) or RGB (H, W, 3), H even) in colour
    ``system`` ("truecolor" or "256"; default: terminal.colour_system())."""
    system = system or terminal.colour_system()
    codes = palette_256(image).astype(np.uint32) if system == "256" else _truecolor_codes(image)
    width = image.shape[1]
    out = []
    for y in range(0, image.shape[0] - 1, 2):
        pairs = (codes[y].astype(np.uint64) << 16) | codes[y + 1]
        cuts = (np.flatnonzero(np.diff(pairs)) + 1).tolist()
        segments = [Segment("▀" * (end - start), _style(system, int(pairs[start])))
                    for start, end in zip([0, *cuts], [*cuts, width], strict=True)]
        out.append(Strip(segments, width))
    return out


class HalfBlocks(Widget):
    """Shows an image given as a uint8 array, grey (2×height, width) or RGB (2×height, width, 3), one cell per
    column and pair of rows."""

    renderer = "halfblock"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grey: np.ndarray | None = None  # what is shown (tests and the benchmark look at it)
        self._strips: list[Strip] = []

    def on_mount(self) -> None:
        from .graphics import show_note

        show_note(self)

    def show(self, grey: np.ndarray) -> None:
        self.grey = grey
        self._strips = strips(grey)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)
