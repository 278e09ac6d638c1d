"""Sixel images (DEC VT340 graphics, as xterm ``-ti vt340``, foot, WezTerm, mlterm draw them) from numpy arrays.

Why our own: textual-image 0.12 (the one for Python 3.11) defines colour registers without selecting them, and
xterm 379 then paints with whatever register is current (VT340 green, a grey band). Here every register is
defined once (``#n;2;r;g;b``, percent RGB) and selected (``#n``) before each row of sixels that uses it.
Palette: a grey image's greys, one register per percent step in use (≤ 101: a sixel colour is a percentage, so a
grey g is shown as round(g·100/255)·255/100, within 1.3 of g); a colour image's colours when ≤ 256, else
quantised to 256 by Pillow (median cut). textual-image's octree quantiser gave the head phantom 16 greys.
Each colour's row of a band runs from its first to its last column (``!first?`` skips to it), run-length
encoded (``!count char``); a band's absent colours are skipped (VT330/VT340 Programmer Reference, "Sixel
graphics"; xterm ctlseqs, "Sixel Graphics").
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from . import terminal
from .graphics import GraphicsImage

_BAND = 6
_MIN_RUN = 4  # "!4x" is no longer than "xxxx"


def run_length(data: np.ndarray) -> bytes:
    """``data`` (uint8 bytes of a sixel body) with every run of four or more equal sixel characters (0x3F–0x7E,
    never the digits of "#12") written as ``!count char``; vectorised, as the body of a slice is ~1 MB."""
    if len(data) == 0:
        return b""
    starts = np.flatnonzero(np.diff(data)) + 1
    starts = np.concatenate([[0], starts])
    lengths = np.diff(np.concatenate([starts, [len(data)]]))
    values = data[starts]
    long = (lengths >= _MIN_RUN) & (values >= 0x3F)
    digits = np.where(long, np.floor(np.log10(np.maximum(lengths, 1))).astype(np.int64) + 1, 0)
    prefix = np.where(long, 1 + digits, 0)
    body = np.where(long, 1, lengths)
    total = prefix + body
    out = np.repeat(values, total)  # every byte the run's value; then "!" and the digits over the prefixes
    at = np.concatenate([[0], np.cumsum(total)[:-1]])[long]
    count, ndigits = lengths[long], digits[long]
    out[at] = ord("!")
    for d in range(int(ndigits.max(initial=0))):
        has = ndigits > d
        power = 10 ** (ndigits[has] - 1 - d)
        out[at[has] + 1 + d] = ord("0") + (count[has] // power) % 10
    return out.tobytes()


_PERCENT = ((np.arange(256) * 100 + 127) // 255).astype(np.uint8)  # what a sixel colour can say: 0–100 %


def palette_indices(image: np.ndarray, registers: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(indices (H, W) uint8, palette (N ≤ min(registers, 256), 3) in percent 0–100) of a uint8 grey (H, W) or
    RGB (H, W, 3) image. Greys that one percent step holds share a register (101 at most; fewer registers: the
    percent range in that many even steps); more colours than registers are quantised by Pillow (median cut)."""
    registers = min(max(registers, 2), 256)
    if image.ndim == 2:
        pct = _PERCENT[image]
        if registers < 101:
            step = 100 / (registers - 1)
            pct = (np.round(np.round(np.arange(101) / step) * step).astype(np.uint8))[pct]
        used = np.bincount(pct.ravel(), minlength=101) > 0
        register = (np.cumsum(used) - 1).astype(np.uint8)  # a register per percent in use, in order
        return register[pct], np.repeat(np.flatnonzero(used).astype(np.uint8)[:, None], 3, axis=1)
    pct = _PERCENT[image].astype(np.uint32)
    packed = (pct[..., 0] << 16) | (pct[..., 1] << 8) | pct[..., 2]
    values, indices = np.unique(packed, return_inverse=True)
    if len(values) <= registers:
        rgb = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1).astype(np.uint8)
        return indices.reshape(image.shape[:2]).astype(np.uint8), rgb
    quantised = PILImage.fromarray(image, "RGB").quantize(registers, method=PILImage.Quantize.MEDIANCUT)
    rgb = np.array(quantised.getpalette()[:3 * registers], dtype=np.uint8).reshape(-1, 3)
    return np.asarray(quantised, dtype=np.uint8), _PERCENT[rgb]


def encode(image: np.ndarray, registers: int = 256) -> str:
    """The sixel string (DCS … ST) drawing ``image``: uint8 (H, W) grey or (H, W, 3) RGB, rows top to bottom,
    with at most ``registers`` colour registers (what XTSMGRAPHICS answered; a real VT340 has 16). Unset pixels
    stay as they are (P2 = 1); every pixel is set here."""
    indices, palette = palette_indices(np.ascontiguousarray(image), registers)
    height, width = indices.shape
    bands = -(-height // _BAND)
    colours = len(palette) + 1  # 0: the padding rows of the last band (no colour)
    padded = np.zeros((bands * _BAND, width), dtype=np.uint16)
    padded[:height] = indices.astype(np.uint16) + 1
    # codes[band, colour, column]: the sixel character of that colour in that column of the band (0x3F + bits);
    # each (band, column) has one colour per row, so adding each row's bit never adds it twice
    codes = np.full((bands, colours, width), 0x3F, dtype=np.uint8)
    band_of = np.arange(bands)[:, None]
    columns = np.arange(width)[None, :]
    for bit in range(_BAND):
        codes[band_of, padded[bit::_BAND], columns] += np.uint8(1 << bit)
    # per (band, colour): present at all, first and last column (the row starts with "!first?", ends at last)
    keys = (np.arange(bands * _BAND)[:, None] // _BAND * colours + padded).ravel()
    cols = np.broadcast_to(columns, padded.shape).ravel()
    first = np.full(bands * colours, width, dtype=np.int64)
    last = np.full(bands * colours, -1, dtype=np.int64)
    np.minimum.at(first, keys, cols)
    np.maximum.at(last, keys, cols)
    out = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    out += [b"#%d;2;%d;%d;%d" % (n, r, g, b) for n, (r, g, b) in enumerate(palette.tolist())]
    first_of, last_of = first.reshape(bands, colours).tolist(), last.reshape(bands, colours).tolist()
    for starts, ends, band_codes in zip(first_of, last_of, codes, strict=True):
        rows = [b"#%d!%d?%s$" % (colour - 1, starts[colour], band_codes[colour, starts[colour]:ends[colour] + 1])
                for colour in range(1, colours) if ends[colour] >= 0]
        out.append(b"".join(rows) + b"-")
    body = np.frombuffer(b"".join(out), dtype=np.uint8)
    return (run_length(body) + b"\x1b\\").decode("ascii")


class SixelImage(GraphicsImage):
    """An image drawn as sixels where the widget is (the slice view gives it pixels cells × cell size, with a
    height a multiple of 6, so that no band spills into the row below)."""

    renderer = "sixel"

    def encode(self, pixels: np.ndarray) -> str:
        registers = terminal.current()[0].sixel_registers  # 0 when not answered: xterm's default, 256 here
        return encode(pixels, registers or 256)
