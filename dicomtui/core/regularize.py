"""Acquisition geometry regularization (Slicer's term): resample an unevenly spaced, gapped or tilted stack onto a
regular, orthogonal grid, by linear interpolation along the slice normal (and bilinear in-plane for the sideways
shift of tilted slices). Off by default: a resampled volume is not the acquired data, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def regularize(array: np.ndarray, positions: np.ndarray, row: np.ndarray, col: np.ndarray, normal: np.ndarray,
               pixel_spacing: Sequence[float] | np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``array`` [k, j, i] whose slice k has its first voxel at ``positions[k]`` (LPS, sorted along
    ``normal``) onto slices ``spacing`` mm apart; ``pixel_spacing`` is PixelSpacing (row, column) in mm. Returns
    (new array, its affine (i, j, k) → LPS)."""
    dy, dx = (float(v) for v in pixel_spacing)
    origin = positions[0]
    distances = (positions - origin) @ normal
    count = int(np.floor(distances[-1] / spacing + 0.5)) + 1 if len(distances) > 1 else 1
    targets = np.arange(count) * spacing
    out = np.empty((count, *array.shape[1:]), dtype=np.float32)
    for m, t in enumerate(targets):
        k = int(np.clip(np.searchsorted(distances, t, side="right") - 1, 0, max(len(distances) - 2, 0)))
        if len(distances) == 1:
            k, w = 0, 0.0
        else:
            gap = distances[k + 1] - distances[k]
            w = float(np.clip((t - distances[k]) / gap, 0.0, 1.0)) if gap > 0 else 0.0
        slab = np.zeros(array.shape[1:], dtype=np.float32)
        for kk, weight in ((k, 1.0 - w), (k + 1, w)):
            if weight == 0.0 or kk >= len(distances):
                continue
            # where this input slice's in-plane grid sits relative to the output grid's (sideways drift)
            drift = positions[kk] - origin
            shift_i = float(drift @ row) / dx
            shift_j = float(drift @ col) / dy
            slab += weight * _shift(array[kk].astype(np.float32), shift_j, shift_i)
        out[m] = slab
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(array.dtype)
    affine = np.eye(4)
    affine[:3, 0] = row * dx
    affine[:3, 1] = col * dy
    affine[:3, 2] = normal * spacing
    affine[:3, 3] = origin
    return out, affine


def _shift(image: np.ndarray, dj: float, di: float) -> np.ndarray:
    """Sample ``image`` at (j - dj, i - di): the image content moved by (dj, di) voxels, bilinear, edges repeated."""
    rows, cols = image.shape
    jj = np.arange(rows, dtype=np.float64) - dj
    ii = np.arange(cols, dtype=np.float64) - di
    j0 = np.clip(np.floor(jj).astype(int), 0, rows - 1)
    i0 = np.clip(np.floor(ii).astype(int), 0, cols - 1)
    j1 = np.clip(j0 + 1, 0, rows - 1)
    i1 = np.clip(i0 + 1, 0, cols - 1)
    wj = np.clip(jj - np.floor(jj), 0.0, 1.0)[:, None]
    wi = np.clip(ii - np.floor(ii), 0.0, 1.0)[None, :]
    top = image[np.ix_(j0, i0)] * (1 - wi) + image[np.ix_(j0, i1)] * wi
    bottom = image[np.ix_(j1, i0)] * (1 - wi) + image[np.ix_(j1, i1)] * wi
    return (top * (1 - wj) + bottom * wj).astype(np.float32)
