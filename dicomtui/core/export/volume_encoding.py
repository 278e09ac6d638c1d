"""How a volume's values become 16-bit stored pixels: RescaleSlope and RescaleIntercept chosen so that the values
round-trip (PS3.3 C.11.1.1.2: output units = m × stored value + b).

Integer volumes are stored as they are whenever they fit 16 bits (int16, or uint16), else shifted by an integer
intercept; every integer value comes back exactly. Float volumes get the coarsest slope among the binary and
decimal steps of which every value is a multiple (½ … 2⁻¹⁵, 2⁻¹⁶ needing 17 DS characters; 0.5, 0.2, 0.1 … 10⁻⁶):
such data (0.5-mm maps, one-decimal ADC values) come back within float32 rounding. Other float data (continuous
values) get the smallest slope that keeps their range in 65,536 steps, and the largest error measured is reported.
The slope and intercept are used as their DS strings say (16 characters at most, PS3.5 6.2), so a reader
computes exactly what was meant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import VolumeWriteError

# candidate steps of quantised float data, coarsest first: 1 (integers), the 5/2/1 × 10⁻ⁿ steps, 2⁻ⁿ
_STEPS = sorted({1.0, *(m * 10.0 ** -n for n in range(1, 7) for m in (5, 2, 1)), *(2.0 ** -n for n in range(1, 16))},
                reverse=True)
_LEVELS = 65535  # the steps a 16-bit stored value has


@dataclass(frozen=True)
class Encoding:
    """``stored = round((value - intercept) / slope)`` as ``dtype`` (int16 or uint16, PixelRepresentation 1 or 0);
    ``exact``: every value is restored (integers exactly, quantised floats within float32 rounding); else the
    largest error is ``max_error`` (in the volume's units)."""

    slope: float
    intercept: float
    dtype: np.dtype
    exact: bool
    max_error: float
    colour: bool = False  # 8-bit R, G, B samples stored as they are (:data:`RGB`): no rescale applies

    @property
    def slope_ds(self) -> str:
        return format_ds(self.slope)

    @property
    def intercept_ds(self) -> str:
        return format_ds(self.intercept)

    @property
    def pixel_representation(self) -> int:
        return 1 if self.dtype.kind == "i" else 0

    def encode(self, values: np.ndarray) -> np.ndarray:
        """One slice (or the whole volume) as stored values."""
        if self.slope == 1.0 and self.intercept == 0.0 and values.dtype.kind in "iub":
            return values.astype(self.dtype)
        scaled = (values.astype(np.float64) - self.intercept) / self.slope
        info = np.iinfo(self.dtype)
        return np.clip(np.rint(scaled), info.min, info.max).astype(self.dtype)

    def sentence(self) -> str:
        """How the values are kept, for the summary."""
        if self.colour:
            return "colours kept exactly (8-bit RGB samples, no rescale)"
        scale = f"RescaleSlope {self.slope_ds}, RescaleIntercept {self.intercept_ds}"
        if self.exact:
            return f"values kept exactly ({scale}, {self.dtype.name})"
        return (f"values kept to ±{format_ds(self.max_error)} ({scale}: the smallest slope that fits their "
                f"range in 16 bits)")


# A colour volume ([k, j, i, 3] uint8): the samples as they are, PhotometricInterpretation RGB (PS3.3 C.7.6.3.1.2)
RGB = Encoding(1.0, 0.0, np.dtype(np.uint8), True, 0.0, colour=True)


def format_ds(value: float) -> str:
    """A Decimal String of at most 16 characters for ``value`` (PS3.5 Table 6.2-1), as short as it can be."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    for digits in range(1, 17):
        text = f"{value:.{digits}g}"
        if float(text) == value or len(text) >= 16:
            break
    while len(text) > 16:
        digits -= 1
        text = f"{value:.{digits}g}"
    return text


def choose_encoding(array: np.ndarray) -> Encoding:
    """The encoding of ``array`` (any shape, integer, bool or float). Raises VolumeWriteError for NaN or infinite
    values (no stored value means them) and for colour or complex data."""
    if array.dtype.kind == "c" or array.dtype.kind not in "biuf":
        raise VolumeWriteError(f"a volume of {array.dtype} values cannot be written as a grey DICOM image.")
    if array.size == 0:
        return Encoding(1.0, 0.0, np.dtype(np.int16), True, 0.0)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise VolumeWriteError("the volume has NaN or infinite values, which no DICOM stored value can mean; "
                               "replace them first (with 0 or the background value).")
    lo, hi = float(array.min()), float(array.max())
    whole = array.dtype.kind in "biu" or bool(np.all(np.equal(np.mod(array, 1.0), 0.0)))
    if whole:
        fitted = _integer_encoding(lo, hi)
        if fitted is not None:
            return fitted
    sample = array.ravel()[:: max(1, array.size // 200_000)].astype(np.float64)  # the step test on a sample…
    for step in _STEPS:
        if (hi - lo) / step > _LEVELS:
            break  # finer steps need more levels still
        if _multiples(sample, step, hi, lo) and _multiples(array.astype(np.float64), step, hi, lo):  # …then all
            return _stepped(lo, hi, step)
    return _lossy(array, lo, hi)


def _integer_encoding(lo: float, hi: float) -> Encoding | None:
    """Integers in [lo, hi]: as they are (int16, uint16), else shifted by an integer intercept; None when their
    range needs more than 16 bits."""
    for dtype in (np.int16, np.uint16):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return Encoding(1.0, 0.0, np.dtype(dtype), True, 0.0)
    if hi - lo <= _LEVELS and abs(lo) < 1e15:
        return Encoding(1.0, lo, np.dtype(np.uint16), True, 0.0)
    return None


def _multiples(values: np.ndarray, step: float, hi: float, lo: float) -> bool:
    """Every value is a multiple of ``step`` within float32 rounding of the largest magnitude."""
    tolerance = max(abs(hi), abs(lo), step) * 2.0 ** -22
    ratio = values / step
    return bool(np.all(np.abs(ratio - np.rint(ratio)) * step <= tolerance))


def _stepped(lo: float, hi: float, step: float) -> Encoding:
    """Multiples of ``step``: int16 around 0 when they fit, else uint16 from the lowest (an intercept on the grid)."""
    slope = float(format_ds(step))
    if lo / slope >= -32768 and hi / slope <= 32767:
        return Encoding(slope, 0.0, np.dtype(np.int16), True, 0.0)
    intercept = float(format_ds(round(lo / slope) * slope))
    return Encoding(slope, intercept, np.dtype(np.uint16), True, 0.0)


def _lossy(array: np.ndarray, lo: float, hi: float) -> Encoding:
    """Continuous values: the smallest 10-digit slope with (hi - lo) / slope ≤ 65,535, rounded up; the intercept
    the lowest value rounded down to 10 digits. The error reported is the largest one measured on a float32 reader
    (m × stored + b in float32, as our loader and most viewers compute it)."""
    slope = _round_up((hi - lo) / _LEVELS) if hi > lo else 1.0
    intercept = -_round_up(-lo) if lo else 0.0
    while intercept + slope * _LEVELS < hi:  # the rounded intercept moved the top out of range
        slope = _round_up(slope * (1 + 1e-9))
    encoding = Encoding(slope, intercept, np.dtype(np.uint16), False, slope / 2)
    worst = 0.0
    for part in np.array_split(array.ravel(), max(1, array.size // 4_000_000)):
        back = encoding.encode(part).astype(np.float32) * np.float32(slope) + np.float32(intercept)
        worst = max(worst, float(np.max(np.abs(back.astype(np.float64) - part))))
    return Encoding(slope, intercept, np.dtype(np.uint16), False, worst)


def _round_up(value: float, digits: int = 10) -> float:
    """``value`` rounded up to ``digits`` significant digits (a DS of at most 16 characters, read back as is)."""
    if value == 0:
        return 0.0
    exponent = math.floor(math.log10(abs(value))) - digits + 1
    rounded = math.ceil(value / 10.0 ** exponent) * 10.0 ** exponent
    return float(format_ds(rounded)) if float(format_ds(rounded)) >= value else rounded + 10.0 ** exponent
