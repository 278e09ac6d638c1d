"""Per-frame geometry and dimensions, read once at import and stored as JSON so that examine never opens the file:
of multi-frame files (enhanced CT/MR/PET, SEG…), of one-frame objects whose geometry is in functional groups, of
images without position (their pixel size and slice spacing), and of the tiles of Siemens mosaics.

A JSON list, one object per frame (per tile of a mosaic), with only the keys that have a value:
  ``p`` ImagePositionPatient and ``o`` ImageOrientationPatient (LPS, as written), ``s`` PixelSpacing (row,
  column), ``is`` ImagerPixelSpacing, ``t`` SliceThickness, ``z`` SpacingBetweenSlices, ``rs``/``ri`` rescale,
  ``k`` StackID, ``n`` InStackPositionNumber, ``ti`` TemporalPositionIndex, ``d`` DimensionIndexValues —
  from the per-frame functional group, else the shared one, else the top level (PS3.3 C.7.6.16);
  ``dv`` {keyword: value} of every dimension the Dimension Index Sequence declares (PS3.3 C.7.6.17) and of the
  functional-group attributes that tell frames apart without being declared (echo time, b-value, gradient
  direction, trigger delay); ``mt`` [first row, first column, rows, columns] of a mosaic tile in the mosaic, ``b``/``g``
  its b-value (s/mm²) and gradient direction (LPS) from the CSA header.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .dicomfile import read_dataset

# Functional-group attributes that set frames apart even when the Dimension Index Sequence does not declare them
# (PS3.3 C.8.13.5: MR Echo, MR Diffusion; C.7.6.16.2.2 Frame Content; C.7.6.16.2.7 Cardiac Synchronization).
DISTINGUISHING = [("FrameContentSequence", "StackID"), ("FrameContentSequence", "TemporalPositionIndex"),
                  ("MREchoSequence", "EffectiveEchoTime"), ("MRDiffusionSequence", "DiffusionBValue"),
                  ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime")]


# Single-frame classes whose IODs place nothing in patient space (no Image Plane module, no functional groups):
# Ultrasound, Secondary Capture, VL Photographic. Import does not open them again (it costs ~0.35 ms a file).
_UNPLACED_CLASSES = frozenset(("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.7",
                               "1.2.840.10008.5.1.4.1.1.77.1.4"))


def needs_frame_geometry(header: dict[str, Any]) -> bool:
    """Whether import must read a file's frame geometry with pydicom (the header walk keeps top-level attributes
    only): images with several frames, Siemens mosaics (their tiles), and images with neither a top-level
    position nor a pixel spacing (one-frame objects with functional groups, radiographs with ImagerPixelSpacing).
    An image with PixelSpacing but no position needs nothing more: its slices use SliceThickness."""
    if not header.get("has_pixels"):
        return False
    if (header.get("NumberOfFrames") or 1) > 1 or "MOSAIC" in str(header.get("ImageType") or "").upper():
        return True
    return (not header.get("ImagePositionPatient") and not header.get("PixelSpacing")
            and header.get("SOPClassUID") not in _UNPLACED_CLASSES)


def frame_geometry(path: str, notes: list[str] | None = None) -> str | None:
    """The JSON list of per-frame (per-tile) geometry of a file, or None when it has none worth keeping. The
    file is read as the header walk read it (:mod:`.dicomfile`); pydicom's warnings go to ``notes``."""
    opened = read_dataset(path)
    ds = opened.dataset
    if notes is not None:
        notes += opened.warnings
    if "MOSAIC" in [str(v).upper() for v in _list(ds.get("ImageType"))]:
        tiles = mosaic_tiles(ds)
        if tiles:
            return json.dumps(tiles, separators=(",", ":"))
    count = int(ds.get("NumberOfFrames") or 1)
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    dimensions = _declared_dimensions(ds)
    frames = []
    for f in range(count):
        item = per_frame[f] if f < len(per_frame) else None
        frame: dict[str, Any] = {
            "p": _floats(_find(item, shared, ds, "PlanePositionSequence", "ImagePositionPatient")),
            "o": _floats(_find(item, shared, ds, "PlaneOrientationSequence", "ImageOrientationPatient")),
            "s": _floats(_find(item, shared, ds, "PixelMeasuresSequence", "PixelSpacing")),
            "is": _floats(ds.get("ImagerPixelSpacing")),
            "t": _float(_find(item, shared, ds, "PixelMeasuresSequence", "SliceThickness")),
            "z": _float(_find(item, shared, ds, "PixelMeasuresSequence", "SpacingBetweenSlices")),
            "rs": _float(_find(item, shared, ds, "PixelValueTransformationSequence", "RescaleSlope")),
            "ri": _float(_find(item, shared, ds, "PixelValueTransformationSequence", "RescaleIntercept")),
        }
        content = _first(item.get("FrameContentSequence")) if item is not None else None
        if content is not None:
            frame["k"] = str(content.get("StackID")) if content.get("StackID") is not None else None
            frame["n"] = _int(content.get("InStackPositionNumber"))
            frame["ti"] = _int(content.get("TemporalPositionIndex"))
            dims = content.get("DimensionIndexValues")
            frame["d"] = [int(v) for v in _list(dims)] if dims is not None else None
        values = {}
        for group, keyword in dimensions + DISTINGUISHING:
            value = _plain(_find(item, shared, None, group, keyword))
            if value is not None:
                values[keyword] = value
        gradient = _gradient(item, shared)
        if gradient:
            values.setdefault("DiffusionGradientOrientation", gradient)
        frame["dv"] = values
        frames.append({key: value for key, value in frame.items() if value not in (None, {}, [])})
    if not any(frames):
        return None
    return json.dumps(frames, separators=(",", ":"))


def mosaic_tiles(ds: Any) -> list[dict[str, Any]]:
    """The tiles of a Siemens mosaic as frames (see the module docstring), [] when the tile count is unknown.

    The tile count is the CSA image header's NumberOfImagesInMosaic, else (0019,100A); the tiles fill a square
    grid of ceil(√count) tiles a side, row by row. ImagePositionPatient is that of the whole mosaic as one image:
    the first tile's centre-of-first-voxel is moved by half the size difference (mosaic − tile) along the rows and
    columns; tile k lies k × SpacingBetweenSlices (else SliceThickness) along the CSA SliceNormalVector (else
    row × column). This is how nibabel.nicom (dicomwrappers.MosaicWrapper), dcm2niix and Slicer's
    MultiVolumeImporter place them."""
    from .csa import csa_image_header

    csa = csa_image_header(ds)
    count = _int(_first(csa.get("NumberOfImagesInMosaic")))
    if not count:
        try:
            count = _int(ds.private_block(0x0019, "SIEMENS MR HEADER")[0x0A].value)
        except (KeyError, ValueError, TypeError):
            count = None
    ipp, iop, spacing = (_floats(ds.get(k)) for k in ("ImagePositionPatient", "ImageOrientationPatient",
                                                        "PixelSpacing"))
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if not count or count < 1 or not ipp or not iop or not spacing or len(iop) != 6 or len(spacing) != 2:
        return []
    across = math.ceil(math.sqrt(count))
    tile_rows, tile_cols = rows // across, cols // across
    row_dir, col_dir = _unit(iop[:3]), _unit(iop[3:])
    normal = _floats(csa.get("SliceNormalVector"))
    normal = _unit(normal) if normal and len(normal) == 3 else _unit(_cross(row_dir, col_dir))
    dy, dx = spacing
    shift_i, shift_j = (cols - tile_cols) / 2 * dx, (rows - tile_rows) / 2 * dy
    origin = [p + r * shift_i + c * shift_j for p, r, c in zip(ipp, row_dir, col_dir, strict=True)]
    dz = _float(ds.get("SpacingBetweenSlices")) or _float(ds.get("SliceThickness")) or 1.0
    bvalue = _float(_first(csa.get("B_value")))
    gradient = _floats(csa.get("DiffusionGradientDirection"))
    tiles = []
    for k in range(count):
        tile: dict[str, Any] = {"p": [o + k * dz * n for o, n in zip(origin, normal, strict=True)], "o": iop,
                                "s": spacing, "z": dz,
                                "mt": [(k // across) * tile_rows, (k % across) * tile_cols, tile_rows, tile_cols]}
        if bvalue is not None:
            tile["b"] = bvalue
        if gradient and len(gradient) == 3:
            tile["g"] = gradient
        tiles.append(tile)
    return tiles


def _declared_dimensions(ds: Any) -> list[tuple[str, str]]:
    """(functional group, attribute keyword) of each dimension the Dimension Index Sequence declares."""
    from pydicom.datadict import keyword_for_tag

    out = []
    for item in ds.get("DimensionIndexSequence") or []:
        pointer, group = item.get("DimensionIndexPointer"), item.get("FunctionalGroupPointer")
        if pointer is None:
            continue
        keyword = keyword_for_tag(int(pointer))
        group_keyword = keyword_for_tag(int(group)) if group is not None else ""
        if keyword and (group_keyword, keyword) not in out:
            out.append((group_keyword, keyword))
    return out


def _gradient(item: Any, shared: Any) -> list[float] | None:
    """A frame's DiffusionGradientOrientation (LPS): one level deeper than ``_find`` reaches, in the MR Diffusion
    group's Diffusion Gradient Direction Sequence (PS3.3 C.8.13.5, MR Diffusion macro); None without one (b = 0)."""
    for source in (item, shared):
        diffusion = _first(source.get("MRDiffusionSequence")) if source is not None else None
        direction = _first(diffusion.get("DiffusionGradientDirectionSequence")) if diffusion is not None else None
        if direction is not None and "DiffusionGradientOrientation" in direction:
            return _floats(direction.DiffusionGradientOrientation)
    return None


def _first(seq: Any) -> Any:
    return seq[0] if seq else None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) else [value]


def _find(item: Any, shared: Any, ds: Any, group: str, keyword: str) -> Any:
    for source in (item, shared):
        if source is None or not group:
            continue
        inner = _first(source.get(group))
        if inner is not None and keyword in inner:
            return inner[keyword].value
    if ds is None:  # a dimension pointer may name a top-level attribute or one inside any group
        for source in (item, shared):
            if source is not None and keyword in source:
                return source[keyword].value
        return None
    return ds.get(keyword)


def _plain(value: Any) -> Any:
    """A value as JSON holds it: numbers as numbers, several as a list, text stripped; None for sequences."""
    if value is None or isinstance(value, (bytes, bytearray)) or type(value).__name__ in ("Sequence", "Dataset"):
        return None
    if hasattr(value, "__iter__") and not isinstance(value, str):
        items = [_plain(v) for v in value]
        return items if items and all(v is not None for v in items) else None
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, int) else float(value)
    text = str(value).strip()
    return text or None


def _unit(v: list[float]) -> list[float]:
    length = math.sqrt(sum(x * x for x in v))
    return [x / length for x in v] if length > 0 else list(v)


def _cross(a: list[float], b: list[float]) -> list[float]:
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in _list(value)] or None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
