"""A loaded volume: voxels plus explicit geometry in DICOM patient space (LPS), and window/level presets.

``array`` is indexed ``[k, j, i]`` = (slice, row, column), as DICOM stores frames; a colour volume is
``[k, j, i, 3]`` uint8 RGB (palettes applied, YBR converted). ``affine`` maps the index ``(i, j, k, 1)`` — column,
row, slice — to LPS millimetres. Conversion to RAS (NIfTI) happens once, in volume_io.py. What is shown of a slice
comes from :func:`display` (window, VOI LUT Function, MONOCHROME1 / Presentation LUT Shape inversion).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

# (name, center, width) defaults by modality; DICOM's own WindowCenter/Width pairs come first.
CT_PRESETS = [("brain", 40, 80), ("subdural", 75, 215), ("stroke", 40, 40), ("lung", -600, 1500),
              ("mediastinum", 50, 350), ("abdomen", 50, 400), ("liver", 30, 150), ("bone", 400, 1800)]


@dataclass
class WindowPreset:
    name: str
    center: float
    width: float


@dataclass(frozen=True)
class Presentation:
    """How stored grey values become what is shown, beside the window (PS3.3 C.11.2, C.11.6, C.7.6.3.1.2):
    ``photometric`` (PhotometricInterpretation as stored: MONOCHROME1 shows the lowest value white; "RGB" for a
    colour volume, whatever its file held), ``voi_lut_function`` (LINEAR, LINEAR_EXACT or SIGMOID) and
    ``presentation_lut_shape`` (IDENTITY, INVERSE or "" when absent)."""

    photometric: str = "MONOCHROME2"
    voi_lut_function: str = "LINEAR"
    presentation_lut_shape: str = ""

    @property
    def inverted(self) -> bool:
        """The windowed grey is inverted for display: MONOCHROME1, or Presentation LUT Shape INVERSE. The two
        are one inversion, not two: PS3.3 C.8.11.6.1.1 (DX) writes INVERSE *because* the data is MONOCHROME1."""
        return self.photometric == "MONOCHROME1" or self.presentation_lut_shape == "INVERSE"


GREYSCALE = Presentation()


@dataclass(frozen=True)
class Segment:
    """One segment of a label volume: a SEG segment (PS3.3 C.8.20.4) or an RTSTRUCT ROI (C.8.8.5/C.8.8.6).

    ``number`` is its value in the label array (1…; 0 is background), ``label`` its name (SegmentLabel /
    ROIName), ``color`` RGB 0-255 (SEG's RecommendedDisplayCIELabValue converted, RTSTRUCT's ROIDisplayColor,
    else a default), ``category`` / ``type`` the CodeMeaning of SegmentedPropertyCategory/TypeCodeSequence (SEG)
    or RTROIInterpretedType (RTSTRUCT), ``algorithm`` SegmentAlgorithmType or ROIGenerationAlgorithm."""

    number: int
    label: str
    color: tuple[int, int, int] = (255, 0, 0)
    category: str = ""
    type: str = ""
    algorithm: str = ""


@dataclass
class Volume:
    array: np.ndarray  # [k, j, i], or [k, j, i, 3] uint8 RGB for colour
    affine: np.ndarray  # 4×4, (i, j, k) → LPS mm
    name: str = ""
    modality: str = ""
    windows: list[WindowPreset] = field(default_factory=list)
    instance_uids: list[str] = field(default_factory=list)  # per slice k
    warnings: list[str] = field(default_factory=list)
    resampled: bool = False
    extra: dict = field(default_factory=dict)  # e.g. b-values for a diffusion volume
    presentation: Presentation = GREYSCALE
    # A label volume (SEG, RTSTRUCT): ``array`` holds Segment.number per voxel (0 = background), uint8/uint16;
    # segments that overlap are loaded as one label volume per segment instead. Empty for an image.
    segments: tuple[Segment, ...] = ()
    # SeriesInstanceUID this volume was read from, and the image series it refers to (SEG, RTSTRUCT, RT Dose:
    # the grid its labels or dose belong on); "" when unknown or not a derived object.
    series_uid: str = ""
    referenced_series_uid: str = ""
    # What a voxel value measures (PS3.3 C.8.9.1.1.3 Units, or RT Dose's DoseUnits): "HU", "BQML", "GY", "" unknown.
    units: str = ""
    # PET: factor from the stored value (BQML, decay-corrected) to SUV, by kind: "bw" (body weight),
    # "lbm" (lean body mass) — g/ml per Bq/ml; empty when SUV cannot be computed (a warning says why).
    suv_factors: dict[str, float] = field(default_factory=dict)

    @property
    def is_labels(self) -> bool:
        """A label volume (segments): shown as an overlay on the image series it refers to, not in grey."""
        return bool(self.segments)

    @property
    def photometric(self) -> str:
        """The PhotometricInterpretation of the voxels: MONOCHROME1/2, or RGB for a colour volume."""
        return self.presentation.photometric

    @property
    def is_rgb(self) -> bool:
        """Colour voxels: ``array`` is [k, j, i, 3] uint8 (R, G, B)."""
        return self.array.ndim == 4

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        i, j, k = (float(np.linalg.norm(self.affine[:3, a])) for a in range(3))
        return i, j, k

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """Unit vectors of i, j, k (columns) in LPS."""
        return self.affine[:3, :3] / np.array(self.spacing)


def window_presets(modality: str, centers: str | None, widths: str | None, array: np.ndarray) -> list[WindowPreset]:
    """Every WindowCenter/WindowWidth pair of the file, then the modality's defaults (the first is applied)."""
    presets: list[WindowPreset] = []
    if array.ndim == 4:  # colour is shown as stored: no VOI LUT applies (PS3.3 C.11.2.1.1)
        return presets
    cs = _floats(centers)
    ws = _floats(widths)
    for n, (c, w) in enumerate(zip(cs, ws, strict=False)):  # unpaired centers or widths are ignored
        if w > 0:
            presets.append(WindowPreset(f"DICOM {n + 1}", c, w))
    if modality == "CT":
        presets += [WindowPreset(name, c, w) for name, c, w in CT_PRESETS]
    if array.size:
        sample = array[:: max(1, array.shape[0] // 16), ::4, ::4].ravel()  # enough for two percentiles
        lo, hi = np.percentile(sample, [1, 99])
        presets.append(WindowPreset("auto (1-99%)", float(lo + hi) / 2, max(float(hi - lo), 1.0)))
        if modality != "CT" and not cs:  # MR, PT…: the automatic window first
            presets.insert(0, presets.pop())
    return presets


def _floats(text: str | None) -> list[float]:
    if not text:
        return []
    out = []
    for part in str(text).split("\\"):
        with contextlib.suppress(ValueError):  # a malformed value is skipped
            out.append(float(part))
    return out


# ---- display: planes and window/level ------------------------------------------------------------------------

PLANES = ("axial", "coronal", "sagittal")
# per plane: (patient axis across slices, patient axis down the rows, flip rows) in LPS (0 = x/L, 1 = y/P, 2 = z/S);
# radiological convention: patient's right on the screen's left, anterior / superior at the top
_PLANE_AXES = {"axial": (2, 1, False), "coronal": (1, 2, True), "sagittal": (0, 2, True)}


@dataclass
class View:
    """A volume seen along one patient axis: ``data[s]`` is slice ``s`` as shown (rows down, columns right)."""

    data: np.ndarray  # [slice, row, column], a view of the volume's array (no copy)
    row_mm: float  # pixel height
    col_mm: float  # pixel width
    positions: np.ndarray  # mm along the plane's patient axis, per slice
    axis_name: str  # "S", "P" or "L": what ``positions`` measures (LPS)
    oblique: bool  # the volume's axes are not aligned with the patient axes: the view is the nearest one
    presentation: Presentation = GREYSCALE  # the volume's: what ``display`` needs beside the window

    def __len__(self) -> int:
        return self.data.shape[0]


def patient_axes(affine: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int], bool]:
    """Which patient axis (0 = L, 1 = P, 2 = S) each voxel axis (i, j, k) runs along, its sign, and whether the
    best match is off by more than 1°: the permutation maximising the alignment."""
    import itertools

    direction = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    perms: list[tuple[int, int, int]] = [(a, b, c) for a, b, c in itertools.permutations(range(3))]
    best = max(perms, key=lambda p: sum(abs(direction[p[a], a]) for a in range(3)))
    si, sj, sk = (1 if direction[best[a], a] >= 0 else -1 for a in range(3))
    oblique = bool(min(abs(direction[best[a], a]) for a in range(3)) < np.cos(np.radians(1.0)))
    return best, (si, sj, sk), oblique


def view(volume: Volume, plane: str) -> View:
    """The volume along ``plane`` (axial, coronal or sagittal) without resampling: axes permuted and flipped to
    the display convention; pixel sizes come from the spacing so that the UI can draw the right aspect."""
    axes, signs, oblique = patient_axes(volume.affine)
    arr = volume.array  # [k, j, i] or [k, j, i, 3]
    colour = (3,) if arr.ndim == 4 else ()  # the RGB axis stays last
    # voxel axis a (0 = i) is numpy axis 2 - a; order numpy axes as patient axes L, P, S, each increasing
    numpy_axis_of = {axes[a]: 2 - a for a in range(3)}
    lps = arr.transpose(numpy_axis_of[0], numpy_axis_of[1], numpy_axis_of[2], *colour)
    flips = tuple(slice(None, None, signs[a]) for a in sorted(range(3), key=lambda a: axes[a]))
    lps = lps[flips]  # lps[x, y, z]: index increasing towards L, P, S
    across, down, flip_rows = _PLANE_AXES[plane]
    right = ({0, 1, 2} - {across, down}).pop()
    data = lps.transpose(across, down, right, *colour)
    if flip_rows:
        data = data[:, ::-1, :]
    spacing = volume.spacing
    mm = {axes[a]: spacing[a] for a in range(3)}
    # position of each slice along its patient axis: the world coordinate of the voxel plane it came from
    voxel_axis = axes.index(across)
    n = data.shape[0]
    index = np.arange(n) if signs[voxel_axis] > 0 else np.arange(n)[::-1]
    centre = np.array([(s - 1) / 2 for s in arr.shape[2::-1]], dtype=float)  # (i, j, k) centre
    points = np.tile(np.append(centre, 1.0), (n, 1))
    points[:, voxel_axis] = index
    positions = (points @ volume.affine.T)[:, across]
    return View(data, row_mm=mm[down], col_mm=mm[right], positions=positions, axis_name="LPS"[across],
                oblique=oblique, presentation=volume.presentation)


def window(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Grey levels 0–255 for a window (DICOM's linear function, PS3.3 C.11.2.1.2, without its 0.5 offsets)."""
    width = max(float(width), 1.0)
    low = center - width / 2
    out = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / width)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def display(pixels: np.ndarray, center: float, width: float, presentation: Presentation = GREYSCALE) -> np.ndarray:
    """What is shown of a slice: grey uint8 (H, W) from grey values (H, W), or the RGB uint8 (H, W, 3) of a
    colour slice unchanged (colour has no VOI transform, PS3.3 C.11.2.1.1).

    Grey: the VOI LUT Function of ``presentation`` with ``center``/``width`` (PS3.3 C.11.2.1.3: LINEAR and
    LINEAR_EXACT as :func:`window`, SIGMOID as 255 / (1 + exp(-4 (x - c) / w))), then inverted (255 - y) for
    MONOCHROME1 or Presentation LUT Shape INVERSE (C.7.6.3.1.2, C.11.6): after the window, so that a window
    chosen on stored values means the same on both photometric interpretations."""
    if pixels.ndim == 3:
        return pixels if pixels.dtype == np.uint8 else np.clip(pixels, 0, 255).astype(np.uint8)
    if presentation.voi_lut_function == "SIGMOID":
        w = max(float(width), 1.0)
        x = (pixels.astype(np.float32) - np.float32(center)) * np.float32(-4.0 / w)
        grey = (np.float32(255.0) / (1 + np.exp(np.clip(x, -80, 80)))).astype(np.uint8)
    else:
        grey = window(pixels, center, width)
    if presentation.inverted:
        np.subtract(255, grey, out=grey)
    return grey
