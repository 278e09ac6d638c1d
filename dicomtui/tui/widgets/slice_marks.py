"""What the slice view draws around and over the image: orientation letters at the edges, window/level and zoom
in a corner, a scale bar (as text cells around the image box), and the crosshair and measurement drawn into the
resized image (one screen pixel wide, after resampling, so that zoom never thickens them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ...core.viewgeom import scale_bar

LETTER = Style(color="rgb(255,200,0)", bold=True)  # the orientation letters: amber on black, as on consoles
TEXT = Style(color="rgb(200,200,200)")
MARK_RGB = (255, 200, 0)  # crosshair and measurement on colour renderers
EDGE_COLUMNS = 4  # cells kept free left and right of the image for the letters (up to three letters and a space)


@dataclass(frozen=True)
class Box:
    """The image's cells inside the slice view: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


def label_strips(width: int, height: int, box: Box, letters: dict[str, str], corner: str, zoom: str,
                 mm_per_cell: float) -> dict[int, Strip]:
    """The text rows around the image box: {row: strip}. The top row holds the top letter (centred), the
    window (left) and the zoom (right); the bottom row the bottom letter and the scale bar; the middle row the
    left and right letters beside the image."""
    rows: dict[int, list[tuple[int, str, Style]]] = {}

    def put(y: int, x: int, text: str, style: Style) -> None:
        if 0 <= y < height and text:
            rows.setdefault(y, []).append((max(x, 0), text, style))

    top, bottom, middle = box.y - 1, box.y + box.h, box.y + box.h // 2
    put(top, box.x, corner, TEXT)
    put(top, box.x + box.w - len(zoom), zoom, TEXT)
    cells, mm = scale_bar(mm_per_cell, max(box.w // 4, 1))
    if cells >= 2:
        put(bottom, box.x, "├" + "─" * (cells - 2) + f"┤ {mm:g} mm", TEXT)
    put(top, box.x + (box.w - len(letters["top"])) // 2, letters["top"], LETTER)
    put(bottom, box.x + (box.w - len(letters["bottom"])) // 2, letters["bottom"], LETTER)
    put(middle, box.x - 1 - len(letters["left"]), letters["left"], LETTER)
    put(middle, box.x + box.w + 1, letters["right"], LETTER)
    return {y: _strip(width, parts) for y, parts in rows.items()}


def _strip(width: int, parts: list[tuple[int, str, Style]]) -> Strip:
    """One row of ``width`` cells with the texts at their columns (later parts win where they overlap)."""
    chars = [" "] * width
    styles: list[Style | None] = [None] * width
    for x, text, style in parts:
        for n, ch in enumerate(text[:max(width - x, 0)]):
            chars[x + n], styles[x + n] = ch, style
    segments, start = [], 0
    for end in range(1, width + 1):
        if end == width or styles[end] != styles[start]:
            segments.append(Segment("".join(chars[start:end]), styles[start]))
            start = end
    return Strip(segments, width)


def draw_marks(image: np.ndarray, cursor: tuple[float, float] | None,
               points: list[tuple[float, float]]) -> np.ndarray:
    """The crosshair through ``cursor`` and the measurement ``points`` (each (y, x) in ``image`` pixels, as
    floats) drawn into a copy of ``image``: one pixel wide, full length with a gap around the point; in amber
    on an RGB image, else in the grey that contrasts with each pixel under it (black on light, white on dark)."""
    if cursor is None and not points:
        return image
    out = image.copy()
    rows, cols = out.shape[:2]

    def paint(ys: np.ndarray, xs: np.ndarray) -> None:
        keep = (ys >= 0) & (ys < rows) & (xs >= 0) & (xs < cols)
        ys, xs = ys[keep], xs[keep]
        if out.ndim == 3:
            out[ys, xs] = MARK_RGB
        else:
            out[ys, xs] = np.where(image[ys, xs] < 128, 255, 0)

    if cursor is not None:
        y, x = int(cursor[0]), int(cursor[1])
        gap = 2
        xs = np.array([c for c in range(cols) if abs(c - x) > gap], dtype=np.intp)
        ys = np.array([r for r in range(rows) if abs(r - y) > gap], dtype=np.intp)
        paint(np.full(len(xs), y, dtype=np.intp), xs)
        paint(ys, np.full(len(ys), x, dtype=np.intp))
    for a, b in zip(points, points[1:], strict=False):
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
        paint(np.rint(np.linspace(a[0], b[0], n)).astype(np.intp), np.rint(np.linspace(a[1], b[1], n)).astype(np.intp))
    for y, x in points:
        ys, xs = np.mgrid[-1:2, -1:2]
        paint((ys + int(y)).ravel(), (xs + int(x)).ravel())
    return out
