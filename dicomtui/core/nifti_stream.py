"""Load → NIfTI in one copy: the header first, then each slice's stored values read into a small reused buffer
and written at its place in the output file, in stacking order — no volume-sized array is ever filled.

The existing path (``examine.load`` → ``volume_io.write_volume``) fills a fresh array of the whole volume (its
first touch alone costs ~0.2 s for 150 MiB), rescales it, and writes it again. Here the stored integers are kept
and RescaleSlope/RescaleIntercept go into the header's scl_slope/scl_inter, as dcm2niix does, so a reader that
applies them (every NIfTI reader; nibabel's ``get_fdata``/``dataobj``) sees the values the existing path writes.

It handles what it was measured on: one single-frame stack (the scalar plugin), uncompressed little-endian, one
grey sample, one stored type, one image size, one RescaleSlope and one RescaleIntercept for all slices, no
resampling. ``unsupported`` names the reason for anything else (compressed, multi-frame, colour, mixed rescale,
``--regularize`` of an irregular stack, 4D sequences); the caller then takes the existing path.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import pixels
from .examine.plugin import Loadable, LoadOptions, Progress, StackPayload, check_cancel
from .examine.stack import stack_affine
from .volume_io import nifti_header, open_nifti, output_format

HEADER_BYTES = 352
CHUNK_BYTES = 4 << 20  # slices gathered per write into the gzip stream: big enough to keep its threads busy


@dataclass(frozen=True)
class StreamedNifti:
    """What ``stream_nifti`` wrote: the file, its voxel grid (i, j, k), the stored type and the header's
    scl_slope/scl_inter, the voxel spacing (mm, along i, j, k)."""

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    slope: float
    inter: float
    spacing: tuple[float, float, float]

    def describe(self) -> str:
        """"512x512x300 voxels of int16, spacing 0.5 x 0.5 x 2 mm": the grid and the stored type, as the CLI
        prints a written volume (scl_slope/scl_inter are the file's business)."""
        return (f"{'x'.join(map(str, self.shape))} voxels of {self.dtype}, spacing "
                f"{' x '.join(f'{v:.4g}' for v in self.spacing)} mm")


def unsupported(loadable: Loadable, path: str | Path, options: LoadOptions | None = None) -> str | None:
    """Why ``loadable`` cannot be streamed to ``path`` (a sentence fragment), or None when it can."""
    options = options or LoadOptions()
    if output_format(path) == ".nrrd":
        return "NRRD output"
    if loadable.plugin != "scalar" or not isinstance(loadable.payload, StackPayload):
        return f"a {loadable.plugin} loadable (multi-frame or 4D)"
    rows = loadable.instances
    if not rows:
        return "no instances"
    geometry = loadable.payload.geometry
    if options.regularize and geometry is not None and len(rows) > 1 and geometry.irregular:
        return "resampling an irregular stack (--regularize)"
    refused = [
        (any(r.get("TransferSyntaxUID") not in pixels.NATIVE_SYNTAXES for r in rows), "compressed or big-endian"),
        (any(r.get("pixel_offset") is None for r in rows), "no recorded Pixel Data offset"),
        (any((r.get("SamplesPerPixel") or 1) != 1 for r in rows), "colour images"),
        (any((r.get("NumberOfFrames") or 1) != 1 for r in rows), "multi-frame images"),
    ]
    must_agree: list[tuple[set[Any], str]] = [  # one value for the whole stack, or no header can say it
        ({(r.get("Rows"), r.get("Columns")) for r in rows}, "images of different sizes"),
        ({pixels.raw_dtype([r]) for r in rows}, "several stored types"),
        ({_float(r.get("RescaleSlope"), 1.0) for r in rows}, "RescaleSlope differs between slices"),
        ({_float(r.get("RescaleIntercept"), 0.0) for r in rows}, "RescaleIntercept differs between slices"),
    ]
    return next((reason for found, reason in refused if found), None) or next(
        (reason for values, reason in must_agree if len(values) > 1), None)


def _float(value: Any, default: float) -> float:
    return default if value is None else float(value)


def stream_nifti(db: Any, loadable: Loadable, path: str | Path, options: LoadOptions | None = None, *,
                 progress: Progress | None = None, cancel: threading.Event | None = None) -> StreamedNifti | None:
    """Write ``loadable``'s stack to ``path`` (".nii" or ".nii.gz") without building the volume in memory; None,
    having written nothing, when ``unsupported`` names a reason or the first file has a Modality LUT Sequence (take
    ``examine.load`` + ``write_volume`` then).

    Voxels [i, j, k] as the existing path writes them (k in stacking order, the affine from the same geometry),
    stored values with scl_slope/scl_inter. The file appears whole or not at all (a temporary name beside it,
    renamed at the end). ``progress(done, total)`` counts slices; ``cancel`` is checked between slices. Raises
    ``LoadError`` (cancelled), ``PixelError`` (a file does not hold what import recorded), ``VolumeWriteError``
    or ``OSError``."""
    if unsupported(loadable, path, options) is not None:
        return None
    rows = loadable.instances
    first = rows[0]
    files = [db.abspath(r["path"], bool(r["stored"])) for r in rows]
    if pixels.read_presentation(files[:1], rows[:1])[1] is not None:  # a Modality LUT replaces the rescale
        return None
    geometry = loadable.payload.geometry if isinstance(loadable.payload, StackPayload) else None
    affine = stack_affine(geometry)
    dtype = pixels.raw_dtype([first])
    slope, inter = _float(first.get("RescaleSlope"), 1.0), _float(first.get("RescaleIntercept"), 0.0)
    shape = (int(first["Columns"]), int(first["Rows"]), len(rows))
    path = Path(path)
    header = nifti_header(affine, shape, dtype, loadable.name, slope=slope, inter=inter, path=path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")

    def tick(done: int) -> None:
        check_cancel(cancel, loadable.name, done, len(rows))
        if progress is not None:
            progress(done, len(rows))

    try:
        if output_format(path) == ".nii.gz":
            _write_gzip(temporary, header, files, rows, dtype, tick)
        else:
            _write_plain(temporary, header, files, rows, dtype, tick)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    return StreamedNifti(path, shape, dtype, slope, inter, spacing)  # type: ignore[arg-type]


def _write_plain(target: Path, header: bytes, files: list[Path], rows: list[dict[str, Any]], dtype: np.dtype,
                 tick: Any) -> None:
    """Slices read by a few threads into per-thread buffers, each written at its offset (``pwrite``): two copies
    through small cache-hot buffers beat filling a mapped or fresh array (bench/load_bench.py)."""
    size = (int(rows[0]["Rows"]), int(rows[0]["Columns"]))
    slice_bytes = size[0] * size[1] * dtype.itemsize
    local = threading.local()
    failed = threading.Event()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        _write_all(fd, header, 0)

        def copy(k: int) -> None:
            if failed.is_set():
                return  # a read failed or the load was cancelled: the slices not started are not read
            buf = getattr(local, "buf", None)
            if buf is None:
                buf = local.buf = np.empty(size, dtype=dtype)
            pixels.read_into(files[k], rows[k], buf)
            _write_all(fd, buf.data.cast("B"), HEADER_BYTES + k * slice_bytes)

        with ThreadPoolExecutor(min(4, 2 * (os.cpu_count() or 1))) as pool:
            futures = [pool.submit(copy, k) for k in range(len(rows))]
            try:
                for done, future in enumerate(futures, 1):
                    future.result()
                    tick(done)
            except BaseException:
                failed.set()
                raise
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _write_gzip(target: Path, header: bytes, files: list[Path], rows: list[dict[str, Any]], dtype: np.dtype,
                tick: Any) -> None:
    """Slices read in order by this thread into one reused chunk, while ``open_nifti``'s threads deflate the
    previous chunks (ISA-L releases the GIL) on the other core(s): the deflate is off the reading path."""
    size = (int(rows[0]["Rows"]), int(rows[0]["Columns"]))
    per_chunk = max(1, CHUNK_BYTES // (size[0] * size[1] * dtype.itemsize))
    chunk = np.empty((per_chunk, *size), dtype=dtype)
    with open_nifti(target, compress=True) as out:
        out.write(header)
        for start in range(0, len(rows), per_chunk):
            count = min(per_chunk, len(rows) - start)
            for n in range(count):
                pixels.read_into(files[start + n], rows[start + n], chunk[n])
                tick(start + n + 1)
            out.write(chunk[:count].data.cast("B"))
