"""Display geometry of a plane of a volume: where a shown pixel is in the volume and in the patient, the
orientation letters at the edges, the slice position as radiologists write it, the unit of a value, a scale
bar, distances, and the coronal / sagittal / axial planes of an oblique volume resampled on the true anatomical
axes (an option beside the acquired planes that ``volume.view`` shows).

Shown pixels are addressed ``(c, r, s)``: column (to the right), row (down), slice (the plane's index), as in
``View.data[s, r, c]``. Patient coordinates are LPS millimetres (DICOM, PS3.3 C.7.6.2.1.1); the letters follow
PS3.3 C.7.6.1.1.1 (L/R, P/A, H/F written S/I as radiologists read them). No textual / rich here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .volume import _PLANE_AXES, View, Volume, patient_axes, view

# the letter of each patient direction: (axis, sign) → letter (LPS: +x left, +y posterior, +z superior)
_LETTERS = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}
OBLIQUE_LETTER_MIN = 0.25  # a direction's component (cosine) from which its letter is named: about 14.5°


def direction_letters(direction: np.ndarray) -> str:
    """The letters of an LPS direction, the nearest axis first: (1, 0, 0) → "L", (0.87, -0.5, 0) → "LA".
    Components of less than OBLIQUE_LETTER_MIN (of the unit vector) are not named; at most 3 letters."""
    d = np.asarray(direction, dtype=float)
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    order = sorted(range(3), key=lambda a: -abs(d[a]))
    named = [a for a in order if abs(d[a]) >= OBLIQUE_LETTER_MIN] or order[:1]
    return "".join(_LETTERS[(a, 1 if d[a] >= 0 else -1)] for a in named)


def position_label(axis: int, value_mm: float) -> str:
    """A coordinate along patient axis ``axis`` (0 = x, 1 = y, 2 = z in LPS) as radiologists write it: the
    letter of the side and the distance from the origin, "A 39.0 mm" for y = -39 (never "P -39.0 mm")."""
    letter = _LETTERS[(axis, 1 if value_mm >= 0 else -1)]
    return f"{letter} {abs(value_mm):.1f} mm"


_UNITS = {"BQML": "Bq/ml", "CNTS": "counts", "GML": "g/ml (SUVbw)", "HU": "HU", "MGML": "mg/ml", "PROPCNT": "%",
          "CM2ML": "cm²/ml (SUVbsa)", "GML_LBM": "g/ml (SUVlbm)", "US": ""}


def value_unit(volume: Volume) -> str:
    """The unit of the volume's values after rescale: ``extra["units"]`` when the loader recorded one (PET Units
    (0054,1001) or RescaleType (0028,1054) code strings, PS3.3 C.8.9.1 / C.11.1.1.2), else HU for CT (PS3.3
    C.8.2.1.1.2), else "" (raw stored values)."""
    units = str(volume.extra.get("units", "") or "").strip().upper()
    if units:
        return _UNITS.get(units, units)
    return "HU" if volume.modality == "CT" else ""


@dataclass
class PlaneView:
    """One plane of a volume as shown: ``data[s]`` is slice ``s`` (rows down, columns right); ``to_lps`` maps
    ``(c, r, s, 1)`` to LPS mm (4×4). ``anatomical`` is True when the slices were resampled on the true patient
    axes of an oblique volume (else they are the acquired voxels, permuted and flipped)."""

    plane: str
    data: np.ndarray | _Resliced  # [slice, row, column]
    to_lps: np.ndarray  # 4×4: (c, r, s, 1) → LPS mm
    row_mm: float
    col_mm: float
    axis: int  # the patient axis the slices step along (0 = x, 1 = y, 2 = z)
    oblique: bool  # the volume's axes are not the patient's
    anatomical: bool = False
    from_voxel: np.ndarray = field(default_factory=lambda: np.eye(4))  # LPS mm → continuous (i, j, k)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def slice(self, s: int) -> np.ndarray:
        """Slice ``s`` as a 2D array [row, column] (clipped to the planes that exist)."""
        return np.asarray(self.data[min(max(s, 0), len(self) - 1)])

    def lps(self, c: float, r: float, s: float) -> np.ndarray:
        """LPS mm of shown pixel (c, r) of slice s: a (3,) array."""
        return (self.to_lps @ np.array([c, r, s, 1.0]))[:3]

    def voxel(self, c: float, r: float, s: float) -> tuple[int, int, int]:
        """The volume's voxel index (i, j, k) nearest to shown pixel (c, r) of slice s (never an index of a
        zoomed crop: the shown pixel is the whole slice's)."""
        ijk = (self.from_voxel @ np.append(self.lps(c, r, s), 1.0))[:3]
        return int(np.rint(ijk[0])), int(np.rint(ijk[1])), int(np.rint(ijk[2]))

    def position(self, s: int) -> str:
        """Slice ``s``'s position along its patient axis, as "S 12.0 mm" (the centre of the slice)."""
        rows, cols = self.data.shape[1], self.data.shape[2]
        return position_label(self.axis, float(self.lps((cols - 1) / 2, (rows - 1) / 2, s)[self.axis]))

    def edge_letters(self) -> dict[str, str]:
        """The orientation letters at the image's edges: {"left", "right", "top", "bottom"} → "R", "L", "A"…"""
        right, down = self.to_lps[:3, 0], self.to_lps[:3, 1]
        return {"left": direction_letters(-right), "right": direction_letters(right),
                "top": direction_letters(-down), "bottom": direction_letters(down)}

    def distance_mm(self, a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        """The distance in mm between shown pixels a and b, each (c, r, s) (they may lie in different slices)."""
        return float(np.linalg.norm(self.lps(*a) - self.lps(*b)))


def display_to_voxel(volume: Volume, plane: str) -> np.ndarray:
    """The 4×4 integer map (c, r, s, 1) → (i, j, k, 1) of ``volume.view(volume, plane)``: the same axis
    permutation and flips, so that ``view(...).data[s, r, c] == volume.array[k, j, i]``."""
    axes, signs, _ = patient_axes(volume.affine)
    shape_ijk = volume.array.shape[2::-1]  # (i, j, k); a colour volume has its samples last
    across, down, flip_rows = _PLANE_AXES[plane]
    right = ({0, 1, 2} - {across, down}).pop()
    # display (c, r, s) → patient-ordered index x (x[p] increases towards L, P, S)
    to_x = np.zeros((4, 4))
    to_x[3, 3] = 1.0
    to_x[right, 0] = 1.0
    to_x[across, 2] = 1.0
    voxel_of = {axes[a]: a for a in range(3)}
    n_down = shape_ijk[voxel_of[down]]
    if flip_rows:
        to_x[down, 1], to_x[down, 3] = -1.0, n_down - 1
    else:
        to_x[down, 1] = 1.0
    # patient-ordered index x → voxel index (flipped where the voxel axis runs against the patient axis)
    to_v = np.zeros((4, 4))
    to_v[3, 3] = 1.0
    for p in range(3):
        a = voxel_of[p]
        if signs[a] > 0:
            to_v[a, p] = 1.0
        else:
            to_v[a, p], to_v[a, 3] = -1.0, shape_ijk[a] - 1
    return to_v @ to_x


def acquired(volume: Volume, plane: str) -> PlaneView:
    """``plane`` of the volume from its acquired voxels (``volume.view``: no resampling; for an oblique volume
    the nearest patient plane)."""
    v: View = view(volume, plane)
    to_lps = volume.affine @ display_to_voxel(volume, plane)
    return PlaneView(plane, v.data, to_lps, v.row_mm, v.col_mm, "LPS".index(v.axis_name), v.oblique,
                     from_voxel=np.linalg.inv(volume.affine))


class _Resliced:
    """Slices of a volume sampled on a grid given by ``to_lps``, computed when asked (trilinear, float32) and
    kept for the last few: a whole resampled volume of 512² × 300 would take seconds and 300 MB up front."""

    KEEP = 8

    def __init__(self, volume: Volume, to_lps: np.ndarray, shape: tuple[int, int, int]) -> None:
        self.array = volume.array
        self.to_voxel = np.linalg.inv(volume.affine) @ to_lps  # (c, r, s, 1) → continuous (i, j, k, 1)
        self.shape = shape
        self.ndim = 3
        self.fill = float(volume.array.min()) if volume.array.size else 0.0
        self._kept: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, s: int) -> np.ndarray:
        s = int(s)
        got = self._kept.get(s)
        if got is None:
            if len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept)))
            got = self._kept[s] = self._sample(s)
        return got

    def _sample(self, s: int) -> np.ndarray:
        rows, cols = self.shape[1], self.shape[2]
        r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
        m = self.to_voxel
        ijk = [m[a, 0] * c + m[a, 1] * r + (m[a, 2] * s + m[a, 3]) for a in range(3)]
        return trilinear(self.array, ijk[0], ijk[1], ijk[2], self.fill)


def trilinear(array: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray, fill: float) -> np.ndarray:
    """``array`` [k, j, i] sampled at continuous voxel indices (i, j, k) (arrays of one shape) by trilinear
    interpolation; ``fill`` outside the voxel grid. Written with numpy (scipy's map_coordinates would do the
    same; scipy is not a dependency for one function)."""
    nk, nj, ni = array.shape
    outside = (i < -0.5) | (i > ni - 0.5) | (j < -0.5) | (j > nj - 0.5) | (k < -0.5) | (k > nk - 0.5)
    i = np.clip(i, 0, ni - 1)
    j = np.clip(j, 0, nj - 1)
    k = np.clip(k, 0, nk - 1)
    i0, j0, k0 = (np.minimum(np.floor(x).astype(np.intp), n - 2 if n > 1 else 0) for x, n in
                  ((i, ni), (j, nj), (k, nk)))
    fi, fj, fk = (x - x0 for x, x0 in ((i, i0), (j, j0), (k, k0)))
    i1, j1, k1 = (np.minimum(x0 + 1, n - 1) for x0, n in ((i0, ni), (j0, nj), (k0, nk)))
    out = np.zeros(i.shape, dtype=np.float32)
    for kk, wk in ((k0, 1 - fk), (k1, fk)):
        for jj, wj in ((j0, 1 - fj), (j1, fj)):
            for ii, wi in ((i0, 1 - fi), (i1, fi)):
                out += (wk * wj * wi).astype(np.float32) * array[kk, jj, ii]
    out[outside] = fill
    return out


def anatomical(volume: Volume, plane: str) -> PlaneView:
    """``plane`` of the volume resampled on the true patient axes (for an oblique volume; an aligned one gives
    its acquired voxels back unchanged): a grid over the volume's bounding box in LPS, spaced by the smallest
    voxel size, oriented as ``volume.view`` shows the planes (patient's right on the left, anterior / superior at
    the top). Slices are interpolated when shown (trilinear)."""
    _, _, oblique = patient_axes(volume.affine)
    if not oblique:
        return acquired(volume, plane)
    spacing = min(volume.spacing)
    ni, nj, nk = volume.array.shape[2::-1]
    corners = np.array([[i, j, k, 1.0] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)])
    lps = (corners @ volume.affine.T)[:, :3]
    low, high = lps.min(axis=0), lps.max(axis=0)
    counts = [int(np.floor((high[p] - low[p]) / spacing + 1e-6)) + 1 for p in range(3)]
    across, down, flip_rows = _PLANE_AXES[plane]
    right = ({0, 1, 2} - {across, down}).pop()
    to_lps = np.zeros((4, 4))
    to_lps[3, 3] = 1.0
    to_lps[:3, 3] = low
    to_lps[right, 0] = spacing
    to_lps[across, 2] = spacing
    if flip_rows:  # row 0 at the top: the high end of the down axis (superior)
        to_lps[down, 1], to_lps[down, 3] = -spacing, low[down] + (counts[down] - 1) * spacing
    else:
        to_lps[down, 1] = spacing
    shape = (counts[across], counts[down], counts[right])
    return PlaneView(plane, _Resliced(volume, to_lps, shape), to_lps, spacing, spacing, across, True,
                     anatomical=True, from_voxel=np.linalg.inv(volume.affine))


def scale_bar(mm_per_cell: float, max_cells: int) -> tuple[int, float]:
    """A scale bar no longer than ``max_cells``: (cells, mm) with mm a round length (1, 2 or 5 × 10ⁿ) and cells
    the nearest whole number of cells for it (off by at most half a cell). (0, 0.0) when even 1 mm is too long."""
    if mm_per_cell <= 0 or max_cells < 1:
        return 0, 0.0
    best = (0, 0.0)
    for exponent in range(0, 5):
        for lead in (1, 2, 5):
            mm = lead * 10.0 ** exponent
            cells = int(round(mm / mm_per_cell))
            if 1 <= cells <= max_cells:
                best = (cells, mm)
    return best


CINE_FPS = 10.0  # cine playback without a rate in the file


def cine_rate(volume: Volume) -> float:
    """Frames per second of a cine: ``extra["frame_rate"]`` when the loader recorded one (CineRate, or 1000 /
    FrameTime in ms), clamped to 1-60; else CINE_FPS."""
    try:
        rate = float(volume.extra.get("frame_rate") or 0)
    except (TypeError, ValueError):
        rate = 0.0
    return min(max(rate, 1.0), 60.0) if rate > 0 else CINE_FPS
