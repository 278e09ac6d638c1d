"""Read the frames of stored instances: straight from the bytes when we know where they are, else via pydicom.

Uncompressed little-endian files use the Pixel Data offset recorded at import (one read, no parse); any file
whose bytes do not match what the stored tags promise, and every compressed file, goes through pydicom's pixel
backends (numpy, pylibjpeg, gdcm: pydicom tries each installed one in turn). When all of them fail, GDCM reads
the whole file itself (:func:`read_gdcm`): its file-level reader decodes 12-bit JPEG Extended, which pydicom's
GDCM plugin refuses frame by frame, and tolerates streams DCMTK tolerates. Slices are read by a thread pool: file
reads and most decoders release the GIL.

Colour frames (SamplesPerPixel 3, or PALETTE COLOR) come out as RGB uint8 ``(rows, cols, 3)``: YBR converted
(pydicom's ``convert_color_space``), palettes applied (``apply_color_lut``), samples above 8 bits shifted down to 8
(PS3.3 C.7.6.3). The grey-value transforms a header holds besides Rescale (Modality LUT Sequence, VOI LUT Function,
Presentation LUT Shape) are read by :func:`read_presentation`.
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
from .volume import Presentation

log = logging.getLogger("dicomtui.pixels")
_notes = threading.local()  # .sink: where the warnings of files read in this thread go (see read_stack)

NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
PALETTE = "PALETTE COLOR"
# pydicom's words when the file ends inside encapsulated Pixel Data (no Sequence Delimitation Item): it then
# drops the whole element and says "no pixel data" — we say truncated.
_NO_DELIMITER = "End of file reached before delimiter (FFFE,E0DD)"


def is_colour(inst: dict[str, Any]) -> bool:
    """Whether an instance row's pixels are colour: SamplesPerPixel 3 or PALETTE COLOR (PS3.3 C.7.6.3.1.1-2)."""
    return (inst.get("SamplesPerPixel") or 1) > 1 or inst.get("PhotometricInterpretation") == PALETTE


def frame_shape(inst: dict[str, Any]) -> tuple[int, ...]:
    """The shape of one frame as read: (rows, cols), or (rows, cols, 3) for colour."""
    rows, cols = inst.get("Rows") or 0, inst.get("Columns") or 0
    return (rows, cols, 3) if is_colour(inst) else (rows, cols)



def raw_dtype(instances: list[dict[str, Any]]) -> np.dtype:
    """The type of the stored values of these instances (before rescale): one that holds all of them; uint8 for
    colour (RGB as read)."""
    if instances and is_colour(instances[0]):
        return np.dtype(np.uint8)
    types = []
    for inst in instances:
        bits = inst.get("BitsAllocated") or 16
        bits = 8 if bits <= 8 else 16 if bits <= 16 else 32
        types.append(np.dtype(f"<{'i' if inst.get('PixelRepresentation') else 'u'}{bits // 8}"))
    return np.result_type(*types) if types else np.dtype("<i2")


def read_into(path: Path, inst: dict[str, Any], out: np.ndarray) -> None:
    """Fill ``out`` (rows × cols, or rows × cols × 3 for colour; C-contiguous) with the stored values of a
    single-frame instance."""
    if _read_direct(path, inst, out):
        return
    arr = _read_pydicom(path, colour=out.ndim == 3)
    if arr.shape != out.shape:
        raise PixelError(f"{path}: the image is {_size(arr.shape)}, the series {_size(out.shape)}")
    out[...] = arr


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" + (" colour" if len(shape) == 3 else " grey")


def read_frames(path: Path, inst: dict[str, Any]) -> np.ndarray:
    """Every frame of a multi-frame instance, shape (frames, rows, cols), or (frames, rows, cols, 3) RGB uint8
    for colour: one read when uncompressed grey."""
    frames, rows, cols = inst.get("NumberOfFrames") or 1, inst.get("Rows") or 0, inst.get("Columns") or 0
    colour = is_colour(inst)
    out = np.empty((frames, *frame_shape(inst)), dtype=raw_dtype([inst]))
    if not colour and _read_direct(path, {**inst, "NumberOfFrames": 1, "Rows": frames * rows},
                                   out.reshape(frames * rows, cols)):
        return out
    arr = _read_pydicom(path, frames=True, colour=colour)
    if arr.shape != out.shape:
        raise PixelError(f"{path}: expected {frames} frames of {cols}x{rows}, decoded an array of shape {arr.shape}")
    return arr


def read_slice(path: Path, inst: dict[str, Any]) -> np.ndarray:
    """The stored values of one single-frame instance, shape (rows, cols), or (rows, cols, 3) RGB for colour."""
    out = np.empty(frame_shape(inst), dtype=raw_dtype([inst]))
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


def _read_pydicom(path: Path, frames: bool = False, colour: bool = False) -> np.ndarray:
    """The decoded pixels, read as the import read the file (:mod:`.dicomfile`: also without a file meta); the
    library's warnings are logged with the file's name (and kept for :func:`read_stack`'s ``notes``). Colour
    comes out as RGB uint8 (:func:`rgb8`). Raises ``PixelError`` naming the file: undecodable, truncated."""
    texts: list[str] = []
    try:
        with captured_warnings() as caught:
            opened = read_dataset(path, pixels=True)
            texts = opened.warnings + [w for w in caught if w not in opened.warnings]
            ds = opened.dataset
            if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                raise PixelError(_no_pixels(path, texts))
            try:
                arr = ds.pixel_array
            except Exception as exc:  # noqa: BLE001 - every pydicom backend failed: GDCM reads the whole file
                arr = read_gdcm(path, exc)
            if colour:
                arr = rgb8(arr, ds)
    except PixelError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds; the user needs the file and reason
        raise PixelError(f"{path}: cannot decode pixels ({type(exc).__name__}: {exc})") from None
    _note(path, texts + [w for w in caught if w not in texts])
    shape = "one colour frame" if colour else "one grayscale frame"
    if frames:
        return arr if arr.ndim == (4 if colour else 3) else arr[None]
    if arr.ndim != (3 if colour else 2):
        raise PixelError(f"{path}: expected {shape}, got an array of shape {arr.shape}")
    return arr


_GDCM_TYPES = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


def read_gdcm(path: Path, pydicom_failure: BaseException | None = None) -> np.ndarray:
    """The stored values of every frame of the file at ``path`` decoded by GDCM's file reader (python-gdcm), as
    pydicom shapes them: (rows, cols[, samples]) for one frame, (frames, rows, cols[, samples]) for several;
    colour as GDCM outputs it (YBR JPEG comes out RGB). Raises ``PixelError`` naming the file, GDCM's reason and
    ``pydicom_failure`` (why the caller came here)."""
    because = f"pydicom: {pydicom_failure}; " if pydicom_failure is not None else ""
    try:
        import gdcm
    except ImportError:
        raise PixelError(f"{path}: cannot decode pixels ({because}GDCM is not installed: pip install "
                         f"python-gdcm)") from None
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise PixelError(f"{path}: cannot decode pixels ({because}GDCM cannot read the file either)")
    image = reader.GetImage()
    fmt = image.GetPixelFormat()
    kind = _GDCM_TYPES.get((fmt.GetBitsAllocated(), fmt.GetPixelRepresentation()))
    length = image.GetBufferLength()
    buffer = image.GetBuffer().encode("utf-8", "surrogateescape")  # SWIG hands the bytes over as a str
    if kind is None or len(buffer) != length:
        raise PixelError(f"{path}: cannot decode pixels ({because}GDCM gave {len(buffer)} of {length} bytes of "
                         f"{fmt.GetBitsAllocated()}-bit samples)")
    cols, rows = image.GetDimension(0), image.GetDimension(1)
    frames = image.GetDimension(2) if image.GetNumberOfDimensions() > 2 else 1
    samples = fmt.GetSamplesPerPixel()
    arr = np.frombuffer(buffer, dtype=kind)
    if samples > 1 and image.GetPlanarConfiguration() == 1:
        arr = arr.reshape(frames, samples, rows, cols).transpose(0, 2, 3, 1)
    else:
        arr = arr.reshape(frames, rows, cols, samples)
    stored, allocated = fmt.GetBitsStored(), fmt.GetBitsAllocated()
    if stored < allocated:  # as _read_direct: bits above BitsStored masked, or the sign extended
        arr = arr.copy()
        shift = allocated - stored
        if fmt.GetPixelRepresentation():
            arr = (arr << shift) >> shift
        else:
            arr &= (1 << stored) - 1
    arr = arr if samples > 1 else arr[..., 0]
    return np.ascontiguousarray(arr[0] if frames == 1 else arr)


def _no_pixels(path: Path, texts: list[str]) -> str:
    """Why a file indexed with Pixel Data has none when read for its pixels, in words."""
    if any(_NO_DELIMITER in t for t in texts):
        return (f"{path}: truncated: the compressed Pixel Data ends without its Sequence Delimitation Item "
                f"(FFFE,E0DD), PS3.5 A.4, so its last frame may be cut; the file cannot be read")
    return f"{path}: the file holds no Pixel Data now (changed or truncated since it was imported)"


def rgb8(arr: np.ndarray, ds: Any) -> np.ndarray:
    """Decoded colour pixels (..., 3) or palette indices (...) → RGB uint8 (..., 3), as PS3.3 C.7.6.3 defines
    them: PALETTE COLOR through its LUTs (pydicom's ``apply_color_lut``; 16-bit entries keep their high byte),
    YBR_FULL / YBR_FULL_422 converted to RGB, samples of more than 8 bits shifted down to 8."""
    from pydicom.pixels import apply_color_lut

    if str(ds.get("PhotometricInterpretation", "")) == PALETTE:
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2]) if "RedPaletteColorLookupTableDescriptor" in ds else 8
        arr = apply_color_lut(arr, ds)
    else:  # pydicom 3's pixel_array (as_rgb) has converted YBR_FULL/_422 with convert_color_space; JPEG 2000's
        #    YBR_ICT/RCT come out of the codestream as RGB
        bits = int(ds.get("BitsStored") or 8)
        if arr.ndim < 3 or arr.shape[-1] != 3:
            raise PixelError(f"expected 3 samples per pixel, decoded an array of shape {arr.shape}")
    if bits > 8:
        arr = arr >> (bits - 8)
    return np.ascontiguousarray(arr, dtype=np.uint8)


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
               progress: Callable[[int, int], None] | None = None, notes: list[str] | None = None,
               unreadable: list[tuple[int, str]] | None = None) -> np.ndarray:
    """All slices into one (slices, rows, cols) array — (slices, rows, cols, 3) RGB uint8 for colour — read by a
    few threads straight into place; ``progress(done, total)`` is called as slices arrive. When a read fails or
    ``progress`` raises (a cancel), the slices not yet started are not read and the exception propagates —
    except, with ``unreadable``, a file that cannot be decoded (``PixelError``): its (slice index, sentence) is
    appended there and its slice left zero, so the caller can leave it out and keep the others. ``notes``
    receives the library's warnings about the files read through pydicom ("path: text"); else the log."""
    first = instances[0]
    out = np.empty((len(paths), *frame_shape(first)), dtype=raw_dtype(instances))
    workers = min(8, (os.cpu_count() or 1) * 2)

    def read(k: int, path: Path, inst: dict[str, Any]) -> None:
        _notes.sink = notes
        try:
            read_into(path, inst, out[k])
        except PixelError as exc:
            if unreadable is None:
                raise
            out[k] = 0
            unreadable.append((k, str(exc)))
        finally:
            _notes.sink = None

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(read, k, p, i) for k, (p, i) in enumerate(zip(paths, instances, strict=True))]
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


# ---- grey-value transforms the header holds besides Rescale -----------------------------------------------------

def read_presentation(paths: list[Path], instances: list[dict[str, Any]]) -> tuple[Presentation, list[Any] | None]:
    """How the stored values of a stack become values and grey levels, from the headers (pixels not read):

    - the ``Presentation`` (PhotometricInterpretation; VOI LUT Function, top level or in the shared Frame VOI LUT
      functional group; Presentation LUT Shape), from the first file; "RGB" for colour, which has none of these;
    - the Modality LUTs (PS3.3 C.11.1: a Modality LUT Sequence replaces Rescale Slope/Intercept): None when the
      first file has none, else one header data set per path, for :func:`apply_modality_luts`.

    One header read per stack (a few ms); every file's only when the first has a Modality LUT (XA, CR, DX: few
    files). A header that cannot be read gives the defaults: the pixel read that follows names the file."""
    first = instances[0] if instances else {}
    if is_colour(first):
        return Presentation(photometric="RGB"), None
    if paths and _header_without(paths[0], first, _PRESENTATION_TAGS):  # the common case: no pydicom (~0.1 s)
        return Presentation(photometric=str(first.get("PhotometricInterpretation") or "MONOCHROME2")), None
    try:
        ds = read_dataset(paths[0]).dataset
    except Exception:  # noqa: BLE001 - unreadable here means unreadable for the pixels too: that error speaks
        return Presentation(photometric=str(first.get("PhotometricInterpretation") or "MONOCHROME2")), None
    voi = ds.get("VOILUTFunction")
    shared = ds.get("SharedFunctionalGroupsSequence")
    if voi is None and shared:
        frame_voi = shared[0].get("FrameVOILUTSequence")
        voi = frame_voi[0].get("VOILUTFunction") if frame_voi else None
    presentation = Presentation(photometric=str(ds.get("PhotometricInterpretation") or "MONOCHROME2"),
                                voi_lut_function=str(voi or "LINEAR").upper(),
                                presentation_lut_shape=str(ds.get("PresentationLUTShape") or "").upper())
    if not ds.get("ModalityLUTSequence"):
        return presentation, None
    headers = [ds]
    for path in paths[1:]:
        try:
            headers.append(read_dataset(path).dataset)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds; the user needs the file and reason
            raise PixelError(f"{path}: cannot read the header ({type(exc).__name__}: {exc})") from None
    return presentation, headers


# The tags read_presentation looks for, as they are written in a little-endian header (group, element): Modality
# LUT Sequence (0028,3000), VOI LUT Function (0028,1056), Presentation LUT Shape (2050,0020), Shared Functional
# Groups Sequence (5200,9229).
_PRESENTATION_TAGS = (b"\x28\x00\x00\x30", b"\x28\x00\x56\x10", b"\x50\x20\x20\x00", b"\x00\x52\x29\x92")


def _header_without(path: Path, inst: dict[str, Any], tags: tuple[bytes, ...]) -> bool:
    """True when the bytes before the recorded Pixel Data offset of a native little-endian file hold none of
    ``tags``: then the file has none of those attributes (any of them would be written there, tag first). False
    when unsure (no offset, another transfer syntax, a read error, or the bytes happen to occur in a value): the
    caller then parses the header."""
    offset = inst.get("pixel_offset")
    if offset is None or inst.get("TransferSyntaxUID") not in NATIVE_SYNTAXES or offset > 1 << 24:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(int(offset))
    except OSError:
        return False
    return not any(tag in head for tag in tags)


def apply_modality_luts(raw: np.ndarray, headers: list[Any]) -> np.ndarray:
    """The values of ``raw`` [k, j, i] through each slice's Modality LUT (``headers[k]``, as
    :func:`read_presentation` gives them; a header without one keeps its Rescale), by pydicom's
    ``apply_modality_lut`` (PS3.3 C.11.1.1: values below the first mapped one take the first entry, above the
    last the last). The LUT's own type (uint8 or uint16), or float32 when slices differ."""
    from pydicom.pixels import apply_modality_lut

    try:
        slices = [apply_modality_lut(raw[k], ds) for k, ds in enumerate(headers)]
    except Exception as exc:  # noqa: BLE001 - a malformed LUT (descriptor and data disagree…): say so
        raise PixelError(f"the Modality LUT Sequence cannot be applied ({type(exc).__name__}: {exc})") from None
    dtype = np.result_type(*(s.dtype for s in slices))
    if dtype.kind == "f":  # Rescale beside a LUT in one stack: float32 as our rescale writes it
        dtype = np.dtype(np.float32)
    out = np.empty(raw.shape, dtype=dtype)
    for k, values in enumerate(slices):
        out[k] = values
    return out
