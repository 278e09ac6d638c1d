"""Overlays on a slice of an image volume: label volumes (SEG segments, RTSTRUCT ROIs) as outlines or filled
labels in their segments' colours, an RT dose as a colour wash above a threshold, and what lies under a point
(segment names, dose in Gy, SUV). No textual / rich here: the viewer draws what this module composes.

A label volume is a ``Volume`` with ``segments`` (``array`` holds Segment.number per voxel, 0 background); a dose
is a float ``Volume`` in Gy (modality RTDOSE or units "GY"); both carry their own geometry. An overlay on the
same voxel grid as the base is used as is; any other is resampled on the base's shown pixels through LPS (nearest
voxel for labels, trilinear for dose: ``viewgeom.trilinear``). Shown pixels are ``(c, r, s)`` of a
``viewgeom.PlaneView`` (column, row, slice); slices come out ``[row, column]`` as ``PlaneView.slice`` gives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image as PILImage

from .viewgeom import PlaneView, acquired, trilinear
from .volume import Segment, Volume

MODES = ("off", "outline", "filled")  # how label volumes are drawn; the viewer's key steps through them
GRID_TOLERANCE_MM = 1e-3  # two affines closer than this (every element, mm) are one voxel grid

# viridis (matplotlib's, perceptually uniform; van der Walt & Smith 2015) sampled at 0, 0.1 … 1: the dose wash
# interpolates between these 11 colours (matplotlib is not a dependency for one colour map)
VIRIDIS = np.array([[0x44, 0x01, 0x54], [0x48, 0x24, 0x75], [0x41, 0x44, 0x87], [0x35, 0x5F, 0x8D],
                    [0x2A, 0x78, 0x8E], [0x21, 0x91, 0x8C], [0x22, 0xA8, 0x84], [0x44, 0xBF, 0x70],
                    [0x7A, 0xD1, 0x51], [0xBD, 0xDF, 0x26], [0xFD, 0xE7, 0x25]], dtype=np.float32)


@dataclass(frozen=True)
class OverlayStyle:
    """How overlays are drawn: ``mode`` one of MODES ("filled" is the fill under its outline), ``fill_alpha`` the
    opacity of a filled label (0–1), ``dose_threshold`` the fraction of the dose's maximum below which no wash
    is drawn (0–1; default 10 %), ``dose_alpha`` the wash's opacity."""

    mode: str = "outline"
    fill_alpha: float = 0.4
    dose_threshold: float = 0.10
    dose_alpha: float = 0.5

    def next_mode(self) -> OverlayStyle:
        """The style with the next mode: off → outline → filled → off."""
        return OverlayStyle(MODES[(MODES.index(self.mode) + 1) % len(MODES)], self.fill_alpha,
                            self.dose_threshold, self.dose_alpha)

    def with_threshold(self, fraction: float) -> OverlayStyle:
        """The style with the dose threshold ``fraction`` of the maximum, clamped to 0–0.95."""
        return OverlayStyle(self.mode, self.fill_alpha, min(max(fraction, 0.0), 0.95), self.dose_alpha)


def is_dose(volume: Volume) -> bool:
    """An RT Dose grid (PS3.3 C.8.8.3): modality RTDOSE, or values in Gy."""
    return volume.modality == "RTDOSE" or volume.units.upper() == "GY"


def is_overlay(volume: Volume) -> bool:
    """Drawn over an image volume rather than shown in grey: a label volume or a dose."""
    return volume.is_labels or is_dose(volume)


def same_grid(a: Volume, b: Volume) -> bool:
    """The two volumes have one voxel grid: the same (k, j, i) shape and affines within GRID_TOLERANCE_MM."""
    return a.array.shape[:3] == b.array.shape[:3] and bool(np.allclose(a.affine, b.affine, atol=GRID_TOLERANCE_MM))


def _bounds(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The LPS box (low, high corners, mm) of the volume's voxel centres."""
    ni, nj, nk = volume.array.shape[2::-1]
    corners = np.array([[i, j, k, 1.0] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)])
    lps = (corners @ volume.affine.T)[:, :3]
    return lps.min(axis=0), lps.max(axis=0)


def choose_base(overlay: Volume, images: Sequence[Volume]) -> tuple[int | None, str]:
    """Which of ``images`` the overlay is drawn on: the one whose ``series_uid`` is the overlay's
    ``referenced_series_uid``, else the first on the same voxel grid, else (a dose: its grid is its own) the first
    whose extent it overlaps. Returns (index, "") or (None, why not, one sentence)."""
    ref = overlay.referenced_series_uid
    for n, image in enumerate(images):
        if ref and image.series_uid == ref:
            return n, ""
    for n, image in enumerate(images):
        if same_grid(image, overlay):
            return n, ""
    if is_dose(overlay):
        low, high = _bounds(overlay)
        for n, image in enumerate(images):
            ilow, ihigh = _bounds(image)
            if np.all(low <= ihigh) and np.all(ilow <= high):
                return n, ""
    what = "dose" if is_dose(overlay) else "label volume"
    name = overlay.name or what
    if ref:
        return None, (f"{name}: its referenced series {ref} is not loaded and no loaded image shares its grid, "
                      f"so the {what} is shown on its own")
    return None, f"{name}: no loaded image shares its grid, so the {what} is shown on its own"


class Layer:
    """One overlay volume drawn on one base volume: its slices on the base's shown pixels (cached for the last
    few), and for a dose its maximum in Gy."""

    KEEP = 8

    def __init__(self, base: Volume, volume: Volume) -> None:
        self.volume = volume
        self.dose = is_dose(volume) and not volume.is_labels
        self.same_grid = same_grid(base, volume)
        self.maximum = float(volume.array.max()) if self.dose and volume.array.size else 0.0
        self._views: dict[str, PlaneView] = {}
        self._kept: dict[tuple, np.ndarray] = {}

    def slice(self, pv: PlaneView, s: int) -> np.ndarray:
        """The overlay on shown slice ``s`` of the base's plane view ``pv``: [row, column], labels (the
        volume's integer dtype, 0 outside it) or dose in Gy (float32, 0 outside)."""
        if self.same_grid and not pv.anatomical:  # the base's acquired voxels: the same permutation, no copy
            view = self._views.get(pv.plane)
            if view is None:
                view = self._views[pv.plane] = acquired(self.volume, pv.plane)
            return view.slice(s)
        key = (pv.plane, pv.anatomical, s, pv.to_lps.tobytes())
        got = self._kept.get(key)
        if got is None:
            if len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept)))
            got = self._kept[key] = resample_slice(self.volume, pv, s, nearest=not self.dose)
        return got

    def shown(self, pv: PlaneView, s: int, crop: tuple[int, int, int, int], height: int, width: int
              ) -> np.ndarray:
        """The overlay on the display pixels of shown slice ``s`` of ``pv``: ``crop`` (top, left, rows, columns of
        the slice) drawn on ``height`` × ``width`` pixels, [row, column]. A dose is sampled there directly
        (``dose_on_display``: one interpolation, not a slice then a resize); labels are the slice's crop resized
        nearest. The last few are kept: a cursor move redraws the same slice."""
        key = ("shown", pv.plane, pv.anatomical, s, pv.to_lps.tobytes(), crop, height, width)
        got = self._kept.get(key)
        if got is None:
            if self.dose:
                got = dose_on_display(self.volume, pv, s, crop, height, width)
            else:
                top, left, rows, cols = crop
                got = resize_nearest(self.slice(pv, s)[top:top + rows, left:left + cols], height, width)
            if len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept)))
            self._kept[key] = got
        return got


def dose_on_display(volume: Volume, pv: PlaneView, s: int, crop: tuple[int, int, int, int], height: int,
                    width: int) -> np.ndarray:
    """A dose ``volume`` (Gy) on the display pixels of shown slice ``s`` of ``pv``: ``crop`` (top, left, rows,
    columns of the slice) drawn on ``height`` × ``width`` pixels, as the slice view resizes it (display pixel x's
    centre at slice column ``left - 0.5 + (x + 0.5) × columns / width``, rows alike). Returns float32
    [height, width]: the trilinear dose (viewgeom.trilinear's values, 0 outside the grid), sampled there directly,
    once (not a resampled slice resized again).

    When the shown plane is a plane of the dose grid (its rows and columns along two dose axes: a CT and its dose
    usually share their orientation), the dose is interpolated along the third axis into one 2D slab and Pillow
    resizes the slab's box onto the display (bilinear, in C): exact. Any other plane: trilinear at nodes at most
    half a dose voxel apart and bilinear between them (``_dose_by_nodes``)."""
    top, left, rows, cols = crop
    m = np.linalg.inv(volume.affine) @ pv.to_lps  # (c, r, s, 1) → continuous (i, j, k, 1) of the dose
    # dose index a at display pixel (x, y): along[a] × (x + 0.5) + down[a] × (y + 0.5) + at[a]
    along = m[:3, 0] * cols / width
    down = m[:3, 1] * rows / height
    at = m[:3, 0] * (left - 0.5) + m[:3, 1] * (top - 0.5) + m[:3, 2] * s + m[:3, 3]
    tiny = 1e-9
    axes = [a for a in range(3) if abs(along[a]) < tiny and abs(down[a]) < tiny]
    x_axis = [a for a in range(3) if abs(down[a]) < tiny and abs(along[a]) >= tiny]
    y_axis = [a for a in range(3) if abs(along[a]) < tiny and abs(down[a]) >= tiny]
    if len(axes) != 1 or len(x_axis) != 1 or len(y_axis) != 1:
        return _dose_by_nodes(volume, m, s, crop, height, width)
    ax, ay, az = x_axis[0], y_axis[0], axes[0]
    sizes = volume.array.shape[2::-1]  # (ni, nj, nk)
    out = np.zeros((height, width), dtype=np.float32)
    z = float(at[az])
    if not -0.5 <= z <= sizes[az] - 0.5:
        return out
    z = min(max(z, 0.0), sizes[az] - 1.0)
    z0 = min(int(z), max(sizes[az] - 2, 0))
    z1 = min(z0 + 1, sizes[az] - 1)
    array = np.moveaxis(volume.array, (2 - ay, 2 - ax), (0, 1))  # [y axis, x axis, third]
    slab = array[:, :, z0] * np.float32(1 - (z - z0)) + array[:, :, z1] * np.float32(z - z0)
    scale, offset = [float(along[ax]), float(down[ay])], [float(at[ax]), float(at[ay])]
    for n, axis in ((0, 1), (1, 0)):  # a decreasing index: flip that slab axis, so the box runs forwards
        if scale[n] < 0:
            slab = np.flip(slab, axis=axis)
            scale[n], offset[n] = -scale[n], sizes[ax if n == 0 else ay] - 1 - offset[n]
    # pixel x's centre sits at slab index scale × (x + 0.5) + offset: only the pixels inside the grid
    # (-0.5 … n - 0.5, trilinear's extent; 0 elsewhere) are resized, so a far or small dose costs nothing
    lo, hi = [], []
    for n, count in ((0, width), (1, height)):
        size = sizes[ax if n == 0 else ay]
        lo.append(max(int(np.ceil((-0.5 - offset[n]) / scale[n] - 0.5 - 1e-9)), 0))
        hi.append(min(int(np.floor((size - 0.5 - offset[n]) / scale[n] - 0.5 + 1e-9)), count - 1))
        if lo[n] > hi[n]:
            return out
    # Pillow's box is in pixel edges: half a slab pixel before the centre
    x0, y0 = scale[0] * lo[0] + offset[0] + 0.5, scale[1] * lo[1] + offset[1] + 0.5
    w, h = hi[0] - lo[0] + 1, hi[1] - lo[1] + 1
    x1, y1 = x0 + scale[0] * w, y0 + scale[1] * h
    pad = int(np.ceil(max(-x0, -y0, x1 - slab.shape[1], y1 - slab.shape[0], 0.0))) + 1
    slab = np.pad(np.ascontiguousarray(slab, dtype=np.float32), pad, mode="edge")  # clamped, as trilinear
    resized = PILImage.fromarray(slab, mode="F").resize(
        (w, h), PILImage.Resampling.BILINEAR, box=(x0 + pad, y0 + pad, x1 + pad, y1 + pad))
    out[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = np.asarray(resized, dtype=np.float32)
    return out


def _dose_by_nodes(volume: Volume, m: np.ndarray, s: int, crop: tuple[int, int, int, int], height: int,
                   width: int) -> np.ndarray:
    """``dose_on_display`` on a plane oblique to the dose grid: trilinear at nodes spaced at most half a dose
    voxel apart over the crop, one more beyond each edge, and bilinear between them by Pillow's resize (its
    ``box`` keeps the outer nodes in the interpolation: the edges are not clamped)."""
    top, left, rows, cols = crop
    half = min(volume.spacing) / 2
    mm = np.linalg.norm(m[:3, :2] * np.asarray(volume.spacing)[:, None], axis=0)  # mm per slice column, row
    nu = max(int(np.ceil(cols * mm[0] / half)), 1)
    nv = max(int(np.ceil(rows * mm[1] / half)), 1)
    c = left - 0.5 + (np.arange(-1, nu + 1) + 0.5) * cols / nu  # node centres in slice pixels
    r = top - 0.5 + (np.arange(-1, nv + 1) + 0.5) * rows / nv
    rr, cc = np.meshgrid(r, c, indexing="ij")
    i, j, k = (m[a, 0] * cc + m[a, 1] * rr + (m[a, 2] * s + m[a, 3]) for a in range(3))
    nodes = trilinear(volume.array, i, j, k, 0.0)
    resized = PILImage.fromarray(nodes, mode="F").resize((width, height), PILImage.Resampling.BILINEAR,
                                                         box=(1, 1, nu + 1, nv + 1))
    return np.asarray(resized, dtype=np.float32)


def resample_slice(volume: Volume, pv: PlaneView, s: int, nearest: bool) -> np.ndarray:
    """``volume`` sampled at the LPS points of shown slice ``s`` of ``pv``: [row, column]. ``nearest`` (labels):
    the value of the nearest voxel, 0 outside the volume; else trilinear (viewgeom.trilinear), 0 outside, at
    most every half voxel of ``volume`` and linear in between (a 4 mm dose on a 0.8 mm CT: every 2nd pixel,
    a quarter of the trilinear samples; the dose is linear between its voxels anyway)."""
    rows, cols = pv.data.shape[1], pv.data.shape[2]
    m = np.linalg.inv(volume.affine) @ pv.to_lps  # (c, r, s, 1) → continuous (i, j, k, 1) of the overlay
    if not nearest:
        step = max(int(min(volume.spacing) / (2 * max(min(pv.row_mm, pv.col_mm), 1e-6))), 1)
        at_r, at_c = _nodes(rows, step), _nodes(cols, step)
        r, c = np.meshgrid(at_r, at_c, indexing="ij")
        i, j, k = (m[a, 0] * c + m[a, 1] * r + (m[a, 2] * s + m[a, 3]) for a in range(3))
        coarse = trilinear(volume.array, i, j, k, 0.0)
        if step == 1:
            return coarse
        return _linear(_linear(coarse, at_r, rows, 0), at_c, cols, 1)
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
    i, j, k = (m[a, 0] * c + m[a, 1] * r + (m[a, 2] * s + m[a, 3]) for a in range(3))
    nk, nj, ni = volume.array.shape[:3]
    ii, jj, kk = (np.rint(x).astype(np.intp) for x in (i, j, k))
    inside = (ii >= 0) & (ii < ni) & (jj >= 0) & (jj < nj) & (kk >= 0) & (kk < nk)
    out = np.zeros((rows, cols), dtype=volume.array.dtype)
    out[inside] = volume.array[kk[inside], jj[inside], ii[inside]]
    return out


def _nodes(n: int, step: int) -> np.ndarray:
    """Every ``step``-th index of 0…n-1, and the last one: float64."""
    nodes = np.arange(0, n, step, dtype=np.float64)
    return nodes if nodes[-1] == n - 1 else np.append(nodes, n - 1)


def _linear(values: np.ndarray, nodes: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``values`` given at ``nodes`` (increasing indices) along ``axis``, interpolated linearly at 0…n-1."""
    x = np.arange(n, dtype=np.float64)
    upper = np.clip(np.searchsorted(nodes, x, side="right"), 1, len(nodes) - 1)
    lower = upper - 1
    t = ((x - nodes[lower]) / np.maximum(nodes[upper] - nodes[lower], 1e-12)).astype(np.float32)
    shape = (n, 1) if axis == 0 else (1, n)
    a, b = np.take(values, lower, axis=axis), np.take(values, upper, axis=axis)
    return a + (b - a) * t.reshape(shape)


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` [row, column] shown on ``height`` × ``width`` pixels: each takes the value of the source pixel
    its centre falls in (labels are never blended)."""
    rows, cols = array.shape[:2]
    r = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(np.intp), rows - 1)
    c = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(np.intp), cols - 1)
    return array[r[:, None], c[None, :]]


def resize_linear(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` [row, column] (float) shown on ``height`` × ``width`` pixels, bilinear between pixel centres
    (rows, then columns: two passes of two gathers)."""
    out = array.astype(np.float32, copy=False)
    for axis, (n, size) in enumerate(((height, array.shape[0]), (width, array.shape[1]))):
        x = np.clip((np.arange(n) + 0.5) * size / n - 0.5, 0, size - 1)
        x0 = np.minimum(x.astype(np.intp), max(size - 2, 0))
        x1 = np.minimum(x0 + 1, size - 1)
        t = (x - x0).astype(np.float32).reshape((n, 1) if axis == 0 else (1, n))
        a = np.take(out, x0, axis=axis)
        out = a + (np.take(out, x1, axis=axis) - a) * t
    return out


def outline(labels: np.ndarray) -> np.ndarray:
    """The boundary pixels of each label: a labelled pixel (≠ 0) whose 4-neighbour (up, down, left, right) holds
    another label; the image's own edge is no boundary (a crop cuts the mask, it does not end it). bool [H, W]."""
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
            | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
    return edge & (labels != 0)


def colour_table(segments: Sequence[Segment]) -> np.ndarray:
    """RGB per label value: [max number + 1, 3] uint8 (row 0, background, black)."""
    table = np.zeros((max((s.number for s in segments), default=0) + 1, 3), dtype=np.uint8)
    for segment in segments:
        table[segment.number] = segment.color
    return table


def colour_map(fraction: np.ndarray) -> np.ndarray:
    """The dose wash's colours (viridis) of fractions 0–1: float32 RGB 0–255, shape ``fraction.shape + (3,)``."""
    x = np.clip(fraction, 0.0, 1.0) * (len(VIRIDIS) - 1)
    low = np.minimum(x.astype(np.intp), len(VIRIDIS) - 2)
    t = (x - low)[..., None].astype(np.float32)
    return VIRIDIS[low] * (1 - t) + VIRIDIS[low + 1] * t


WASH = colour_map(np.linspace(0.0, 1.0, 256))  # the colour map in 256 steps: a lookup per pixel


def composite(image: np.ndarray, layers: Sequence[tuple[Layer, np.ndarray]], style: OverlayStyle) -> np.ndarray:
    """``image`` (uint8 grey [H, W] or RGB [H, W, 3]) with the overlays drawn on it: RGB uint8 [H, W, 3], a new
    array. ``layers`` pairs each Layer with its slice on the same pixels (labels or dose, [H, W]). Doses first
    (a wash, ``style.dose_alpha``, where dose ≥ ``style.dose_threshold`` × its maximum, coloured from the
    threshold (dark) to the maximum (yellow)), then filled labels (``style.fill_alpha``), then outlines (opaque).
    ``style.mode`` "off" returns the image as RGB unchanged."""
    if style.mode == "off" or not layers:
        return _rgb(image)
    result = image  # grey until a layer colours it: a grey image takes the wash by one table lookup
    for layer, values in layers:
        if layer.dose and layer.maximum > 0:
            result = _wash(result, values, layer.maximum, style)
    result = _rgb(result) if result is image else result
    labelled = [(layer, values) for layer, values in layers if not layer.dose]
    if style.mode == "filled":
        for layer, values in labelled:  # per channel, one lookup of (label, level) in the blended table
            lut = _fill_table(colour_table(layer.volume.segments).tobytes(), style.fill_alpha)
            rows = np.where(values < len(lut) // 256, values, 0).astype(np.intp)
            rows *= 256
            for c in range(3):
                result[..., c] = np.take(lut[:, c], rows + result[..., c])
    for layer, values in labelled:
        table = colour_table(layer.volume.segments)
        edge = outline(values) & (values < len(table))
        result[edge] = table[values[edge]]
    return result


def _rgb(image: np.ndarray) -> np.ndarray:
    """A new RGB copy of a grey [H, W] or RGB [H, W, 3] uint8 image."""
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image.copy()


def _wash(image: np.ndarray, values: np.ndarray, maximum: float, style: OverlayStyle) -> np.ndarray:
    """The dose wash on ``image`` (uint8 grey [H, W] or RGB [H, W, 3]) where ``values`` (Gy, [H, W]) ≥ the
    threshold: WASH index ``round((dose - low) / (maximum - low) × 255)`` at ``style.dose_alpha``. Returns a new
    RGB array. A grey image: one lookup per pixel in ``_wash_table`` (grey × index, blended once); an RGB one
    blends only the pixels it colours."""
    low = style.dose_threshold * maximum
    scale = 255.0 / max(maximum - low, 1e-12)
    shown = values >= max(low, 1e-12)
    if image.ndim == 2:
        code = values * np.float32(scale)  # index + 1 (0: no wash), then × 256 + grey: the table's row
        code += np.float32(1.5 - low * scale)
        np.clip(code, 0, 256, out=code)
        rows = code.astype(np.int32)
        rows[~shown] = 0
        rows <<= 8
        rows |= image
        return np.take(_wash_table(style.dose_alpha), rows, axis=0)
    result = image.copy()  # blends touch only the pixels they colour (a full float copy costs ms)
    wash = WASH[np.clip((values[shown] - low) * scale + 0.5, 0, 255).astype(np.uint8)]
    result[shown] = _blend(result[shown], wash, style.dose_alpha)
    return result


@lru_cache(maxsize=4)
def _wash_table(alpha: float) -> np.ndarray:
    """Row ``(index + 1) × 256 + grey``: grey under WASH[index] at opacity ``alpha`` (as ``_blend`` rounds);
    rows 0–255 the grey itself. uint8 [257 × 256, 3]."""
    grey = np.arange(256, dtype=np.float32)
    table = np.empty((257, 256, 3), dtype=np.uint8)
    table[0] = grey[:, None]
    table[1:] = np.clip(np.rint(grey[None, :, None] * (1 - alpha) + WASH[:, None, :] * alpha), 0, 255)
    return table.reshape(-1, 3)


@lru_cache(maxsize=16)
def _fill_table(colours: bytes, alpha: float) -> np.ndarray:
    """Row ``label × 256 + level``: a channel ``level`` under the label's colour at opacity ``alpha`` (as
    ``_blend`` rounds), per channel; label 0 (background) keeps the level. ``colours``: a ``colour_table``'s
    bytes. uint8 [labels × 256, 3]."""
    table = np.frombuffer(colours, dtype=np.uint8).reshape(-1, 3).astype(np.float32)
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    lut = np.stack([levels if n == 0 else _blend(levels, table[n], alpha) for n in range(len(table))])
    return lut.reshape(-1, 3)


def _blend(under: np.ndarray, over: np.ndarray, alpha: float) -> np.ndarray:
    """``over`` at opacity ``alpha`` on ``under`` (uint8 RGB rows, [N, 3]): uint8, rounded."""
    mixed = under.astype(np.float32) * (1 - alpha) + over * alpha
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass
class PointValues:
    """What lies under a point: ``segments`` the names of the segments there (every label volume's), ``dose_gy``
    the dose (Gy, trilinear) of each dose volume there (None outside its grid), ``suv`` the SUV of the base's
    value by kind ("bw", "lbm") when the base has ``suv_factors``."""

    segments: list[str] = field(default_factory=list)
    dose_gy: list[float | None] = field(default_factory=list)
    suv: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        """"Liver, Tumour · dose 2.31 Gy · SUVbw 3.20": the parts there are, "" for none."""
        parts = []
        if self.segments:
            parts.append(", ".join(self.segments))
        parts += [f"dose {d:.3g} Gy" for d in self.dose_gy if d is not None]
        parts += [f"SUV{kind} {v:.3g}" for kind, v in self.suv.items()]
        return " · ".join(parts)


def suv(base: Volume, value: float) -> dict[str, float]:
    """The SUV of a stored (rescaled, decay-corrected) value of a PET base, by kind: value × suv_factors[kind]."""
    return {kind: float(value) * f for kind, f in base.suv_factors.items()}


def labels_at(base: Volume, overlays: Sequence[Volume], point: Sequence[float], value: float | None = None
              ) -> PointValues:
    """Segment names, doses and SUV at ``point`` (LPS mm, 3 values). Labels are read at the nearest voxel of
    each label volume, doses trilinearly; SUV multiplies ``value`` (the base's value shown there; None: the
    base's nearest voxel) by the base's ``suv_factors``."""
    found = PointValues()
    lps = np.append(np.asarray(point, dtype=float)[:3], 1.0)
    for volume in overlays:
        ijk = (np.linalg.inv(volume.affine) @ lps)[:3]
        if is_dose(volume) and not volume.is_labels:
            nk, nj, ni = volume.array.shape[:3]
            inside = all(-0.5 <= ijk[a] <= n - 0.5 for a, n in enumerate((ni, nj, nk)))
            i, j, k = (np.array([x]) for x in ijk)
            d = trilinear(volume.array, i, j, k, 0.0)[0]
            found.dose_gy.append(float(d) if inside else None)
            continue
        number = _voxel(volume, ijk)
        if number:
            names = {s.number: s.label for s in volume.segments}
            found.segments.append(names.get(int(number), f"segment {int(number)}"))
    if base.suv_factors:
        if value is None:
            value = _voxel(base, (np.linalg.inv(base.affine) @ lps)[:3])
        if value is not None:
            found.suv = suv(base, float(value))
    return found


def _voxel(volume: Volume, ijk: np.ndarray):
    """The value of the voxel nearest to continuous index (i, j, k); None outside the volume."""
    i, j, k = (int(np.rint(x)) for x in ijk)
    nk, nj, ni = volume.array.shape[:3]
    if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
        return volume.array[k, j, i]
    return None


def legend(overlays: Sequence[Volume], style: OverlayStyle) -> list[tuple[str, tuple[int, int, int]]]:
    """The legend's entries, in drawing order: (segment name, its RGB) per segment of each label volume, and per
    dose "dose ≥ T Gy (P % of M Gy)" in the wash's top colour."""
    entries = []
    for volume in overlays:
        if is_dose(volume) and not volume.is_labels:
            maximum = float(volume.array.max()) if volume.array.size else 0.0
            low = style.dose_threshold * maximum
            top = tuple(int(v) for v in VIRIDIS[-1])
            entries.append((f"dose ≥ {low:.3g} Gy ({style.dose_threshold:.0%} of {maximum:.3g} Gy)", top))
            continue
        entries += [(s.label or f"segment {s.number}", s.color) for s in volume.segments]
    return entries  # type: ignore[return-value]


def overlay_slice(base: Volume, pv: PlaneView, s: int, overlays: Sequence[Volume], image: np.ndarray,
                  style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """Shown slice ``s`` of the base's plane view ``pv`` with ``overlays`` drawn: ``image`` is that slice as shown
    (uint8 grey [H, W] or RGB [H, W, 3], e.g. ``volume.display`` of ``pv.slice(s)``); returns RGB uint8."""
    layers = [Layer(base, volume) for volume in overlays]
    return composite(image, [(layer, layer.slice(pv, s)) for layer in layers], style)
