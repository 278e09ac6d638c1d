"""A loaded volume: voxels plus explicit geometry in DICOM patient space (LPS), and window/level presets.

``array`` is indexed ``[k, j, i]`` = (slice, row, column), as DICOM stores frames. ``affine`` maps the index
``(i, j, k, 1)`` — column, row, slice — to LPS millimetres. Conversion to RAS (NIfTI) happens once, in convert.py.
"""

from __future__ import annotations

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


@dataclass
class Volume:
    array: np.ndarray  # [k, j, i]
    affine: np.ndarray  # 4×4, (i, j, k) → LPS mm
    name: str = ""
    modality: str = ""
    windows: list[WindowPreset] = field(default_factory=list)
    instance_uids: list[str] = field(default_factory=list)  # per slice k
    warnings: list[str] = field(default_factory=list)
    resampled: bool = False
    extra: dict = field(default_factory=dict)  # e.g. b-values for a diffusion volume

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        return tuple(float(np.linalg.norm(self.affine[:3, a])) for a in range(3))

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """Unit vectors of i, j, k (columns) in LPS."""
        return self.affine[:3, :3] / np.array(self.spacing)


def window_presets(modality: str, centers: str | None, widths: str | None, array: np.ndarray) -> list[WindowPreset]:
    """Every WindowCenter/WindowWidth pair of the file, then the modality's defaults (the first is applied)."""
    presets = []
    cs = _floats(centers)
    ws = _floats(widths)
    for n, (c, w) in enumerate(zip(cs, ws)):
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
        try:
            out.append(float(part))
        except ValueError:
            pass
    return out
