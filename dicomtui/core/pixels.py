"""Read the frames of stored instances: straight from the bytes when we know where they are, else via pydicom.

Uncompressed little-endian files use the Pixel Data offset recorded at import (one read, no parse); any file
whose bytes do not match what the stored tags promise, and every compressed file, goes through pydicom's pixel
backends (numpy, pylibjpeg, gdcm as installed). Slices are read by a thread pool: file reads and most decoders
release the GIL.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .dicomfile import captured_warnings, read_dataset
from .errors import PixelError

log = logging.getLogger("dicomtui.pixels")
_notes = threading.local()  # .sink: where the warnings of files read in this thread go (see read_stack)

NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}



def raw_dtype(instances: list[dict[str, Any]]) -> np.dtype:
    """The type of the stored values of these instances (before rescale): one that holds all of them."""
    types = []
    for inst in instances:
        bits = inst.get("BitsAllocated") or 16
        bits = 8 if bits <= 8 else 16 if bits <= 16 else 32
        types.append(np.dtype(f"<{'i' if inst.get('PixelRepresentation') else 'u'}{bits // 8}"))
    return np.result_type(*types) if types else np.dtype("<i2")


def read_into(path: Path, inst: dict[str, Any], out: np.ndarray) -> None:
    """Fill ``out`` (rows × cols, C-contiguous) with the stored values of a single-frame instance."""
    if _read_direct(path, inst, out):
        return
    arr = _read_pydicom(path)
    if arr.shape != out.shape:
        raise PixelError(f"{path}: the image is {arr.shape[1]}x{arr.shape[0]}, "
                         f"the series {out.shape[1]}x{out.shape[0]}")
    out[...] = arr


def read_frames(path: Path, inst: dict[str, Any]) -> np.ndarray:
    """Every frame of a multi-frame instance, shape (frames, rows, cols): one read when uncompressed."""
    frames, rows, cols = inst.get("NumberOfFrames") or 1, inst.get("Rows") or 0, inst.get("Columns") or 0
    out = np.empty((frames, rows, cols), dtype=raw_dtype([inst]))
    if _read_direct(path, {**inst, "NumberOfFrames": 1, "Rows": frames * rows}, out.reshape(frames * rows, cols)):
        return out
    arr = _read_pydicom(path, frames=True)
    if arr.shape != out.shape:
        raise PixelError(f"{path}: expected {frames} frames of {cols}x{rows}, decoded an array of shape {arr.shape}")
    return arr


def read_slice(path: Path, inst: dict[str, Any]) -> np.ndarray:
    """The stored values of one single-frame instance, shape (rows, cols)."""
    out = np.empty((inst.get("Rows") or 0, inst.get("Columns") or 0), dtype=raw_dtype([inst]))
    read_into(path, inst, out)
    return out


def _read_direct(path: Path, inst: dict[str, Any], out: np.ndarray) -> bool:
    """Read the native pixel bytes at the stored offset straight into ``out``; False when that is not safe."""
    offset = inst.get("pixel_offset")
    bits = inst.get("BitsAllocated")
    if (offset is None or inst.get("TransferSyntaxUID") not in NATIVE_SYNTAXES or bits not in (8, 16, 32)
            or (inst.get("SamplesPerPixel") or 1) != 1 or (inst.get("NumberOfFrames") or 1) != 1):
        return False
    signed = bool(inst.get("PixelRepresentation"))
    if out.dtype != np.dtype(f"<{'i' if signed else 'u'}{bits // 8}") or out.shape != (inst.get("Rows"),
                                                                                        inst.get("Columns")):
        return False
    try:
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            got = f.readinto(out.data.cast("B"))
    except OSError:
        return False
    if got != out.nbytes:
        return False  # the file does not hold what the tags say: let pydicom explain
    stored = inst.get("BitsStored") or bits
    if stored < bits:  # bits above BitsStored may hold overlays: mask, or sign-extend as pydicom does
        shift = bits - stored
        if signed:
            out <<= shift
            out >>= shift
        else:
            out &= (1 << stored) - 1
    return True


def _read_pydicom(path: Path, frames: bool = False) -> np.ndarray:
    """The decoded pixels, read as the import read the file (:mod:`.dicomfile`: also without a file meta); the
    library's warnings are logged with the file's name (and kept for :func:`read_stack`'s ``notes``)."""
    try:
        with captured_warnings() as caught:
            opened = read_dataset(path, pixels=True)
            arr = opened.dataset.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds; the user needs the file and reason
        raise PixelError(f"{path}: cannot decode pixels ({type(exc).__name__}: {exc})") from None
    _note(path, opened.warnings + [w for w in caught if w not in opened.warnings])
    if frames:
        return arr if arr.ndim == 3 else arr[None]
    if arr.ndim != 2:
        raise PixelError(f"{path}: expected one grayscale frame, got an array of shape {arr.shape}")
    return arr


def _note(path: Path, texts: list[str]) -> None:
    """The library's warnings about one file: into the notes of the read_stack running in this thread's pool,
    else into the log (never raw on stderr)."""
    sink = getattr(_notes, "sink", None)
    for text in texts:
        if sink is not None:
            sink.append(f"{path}: {text}")
        else:
            log.warning("%s: %s", path, text)


def read_stack(paths: list[Path], instances: list[dict[str, Any]],
               progress: Callable[[int, int], None] | None = None, notes: list[str] | None = None) -> np.ndarray:
    """All slices into one (slices, rows, cols) array, read by a few threads straight into place;
    ``progress(done, total)`` is called as slices arrive. When a read fails or ``progress`` raises (a cancel),
    the slices not yet started are not read and the exception propagates. ``notes`` receives the library's
    warnings about the files read through pydicom ("path: text"); without it they go to the log."""
    first = instances[0]
    out = np.empty((len(paths), first.get("Rows") or 0, first.get("Columns") or 0), dtype=raw_dtype(instances))
    workers = min(8, (os.cpu_count() or 1) * 2)

    def read(path: Path, inst: dict[str, Any], into: np.ndarray) -> None:
        _notes.sink = notes
        try:
            read_into(path, inst, into)
        finally:
            _notes.sink = None

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(read, p, i, out[k]) for k, (p, i) in enumerate(zip(paths, instances, strict=True))]
        try:
            for done, fut in enumerate(futures, 1):
                fut.result()
                if progress is not None:
                    progress(done, len(paths))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return out
