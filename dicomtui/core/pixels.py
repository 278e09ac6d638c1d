"""Read the frames of stored instances: straight from the bytes when we know where they are, else via pydicom.

Uncompressed little-endian files use the Pixel Data offset recorded at import (one read, no parse); any file
whose bytes do not match what the stored tags promise, and every compressed file, goes through pydicom's pixel
backends (numpy, pylibjpeg, gdcm as installed). Slices are read by a thread pool: file reads and most decoders
release the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


class PixelError(Exception):
    """A slice could not be read; the message names the file and why."""


def read_slice(path: Path, inst: dict[str, Any]) -> np.ndarray:
    """The stored values (before rescale) of a single-frame instance, shape (rows, cols)."""
    direct = _read_direct(path, inst)
    if direct is not None:
        return direct
    return _read_pydicom(path)


def _read_direct(path: Path, inst: dict[str, Any]) -> np.ndarray | None:
    offset = inst.get("pixel_offset")
    bits = inst.get("BitsAllocated")
    if (offset is None or inst.get("TransferSyntaxUID") not in NATIVE_SYNTAXES or bits not in (8, 16, 32)
            or (inst.get("SamplesPerPixel") or 1) != 1 or (inst.get("NumberOfFrames") or 1) != 1):
        return None
    rows, cols = inst.get("Rows") or 0, inst.get("Columns") or 0
    signed = bool(inst.get("PixelRepresentation"))
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    count = rows * cols
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = np.fromfile(f, dtype=dtype, count=count)
    except OSError:
        return None
    if data.size != count:
        return None  # the file does not hold what the tags say: let pydicom explain
    stored = inst.get("BitsStored") or bits
    if stored < bits:  # bits above BitsStored may hold overlays: mask, or sign-extend as pydicom does
        shift = bits - stored
        data = (data << shift) >> shift if signed else data & ((1 << stored) - 1)
    return data.reshape(rows, cols)


def _read_pydicom(path: Path) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds; the user needs the file and reason
        raise PixelError(f"{path}: cannot decode pixels ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise PixelError(f"{path}: expected one grayscale frame, got an array of shape {arr.shape}")
    return arr


def read_slices(paths: list[Path], instances: list[dict[str, Any]], progress=None) -> list[np.ndarray]:
    """All slices, in order, read by a few threads; ``progress(done, total)`` after each."""
    out: list[np.ndarray | None] = [None] * len(paths)
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(read_slice, p, i): k for k, (p, i) in enumerate(zip(paths, instances))}
        for done, fut in enumerate(futures, 1):
            out[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, len(paths))
    return out  # type: ignore[return-value]
