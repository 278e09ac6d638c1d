"""Grey images as half-block cells ("▀": the upper pixel is the foreground, the lower the background).

textual-image's half-cell renderer builds two Rich Colors and a Style for every cell of every frame: 40–80 ms for
a 92×46-cell slice here, more than the 50 ms a slice step may take. This widget makes the strips straight from
the uint8 array, with one cached Style per (upper, lower) grey pair and runs of equal cells merged: about 4 ms.
Greys are kept to 64 levels so that the style cache stays small (4,096 pairs) and warm after the first frames.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

LEVELS = 64
_STEP = 256 // LEVELS
_STYLES: dict[int, Style] = {}


def _style(key: int) -> Style:
    style = _STYLES.get(key)
    if style is None:
        up, low = (key >> 8) * _STEP + _STEP // 2, (key & 255) * _STEP + _STEP // 2
        style = _STYLES[key] = Style(color=Color.from_rgb(up, up, up), bgcolor=Color.from_rgb(low, low, low))
    return style


def strips(grey: np.ndarray) -> list[Strip]:
    """One strip per pair of pixel rows of ``grey`` (uint8, an even number of rows)."""
    levels = (grey // _STEP).astype(np.uint16)
    width = grey.shape[1]
    out = []
    for y in range(0, grey.shape[0] - 1, 2):
        pairs = (levels[y] << 8) | levels[y + 1]
        cuts = (np.flatnonzero(np.diff(pairs)) + 1).tolist()
        segments = [Segment("▀" * (end - start), _style(int(pairs[start])))
                    for start, end in zip([0, *cuts], [*cuts, width], strict=True)]
        out.append(Strip(segments, width))
    return out


class HalfBlocks(Widget):
    """Shows a grey image given as a uint8 array of 2×height rows and width columns (the widget's cells)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grey: np.ndarray | None = None  # what is shown (tests and the benchmark look at it)
        self._strips: list[Strip] = []

    def show(self, grey: np.ndarray) -> None:
        self.grey = grey
        self._strips = strips(grey)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)
