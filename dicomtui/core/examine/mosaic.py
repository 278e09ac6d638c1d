"""Siemens mosaic plugin: each mosaic (ImageType MOSAIC, the default storage of Siemens fMRI, DTI and ASL) holds
one volume's slices as tiles of one picture; a series of mosaics is a 4D loadable (time points, b-values).

The tiles and their geometry were located at import (frames.py, from the CSA header: NumberOfImagesInMosaic,
SliceNormalVector, the first tile's corrected origin) and stored per tile; each tile becomes a frame row
(``uid#tile``) so that ``geometry.check_stack`` orders and checks it like any stack. Volumes of a series are
ordered by AcquisitionNumber, then InstanceNumber (acquisition order); their b-value and gradient (CSA B_value,
DiffusionGradientDirection) travel in ``Volume.extra`` as the sequence plugin's do.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import Row, check_stack
from .plugin import (
    CONF_DOUBTFUL,
    CONF_SEQUENCE,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    SequencePart,
    SequencePayload,
    check_cancel,
    series_name,
    ticker,
    unpackable_mosaic,
)
from .stack import build_volume, frame_row

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "mosaic"


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable of the series' mosaics: one volume per mosaic file, its tiles stacked along the slice normal
    (a 4D loadable when there are several). Preferred (CONF_SEQUENCE) over the scalar reading when clean. Mosaics
    of different tile counts, sizes or orientations cannot be one 4D volume: each kind is also offered alone."""
    mosaics = sorted((i for i in rows if i.get("has_pixels") and unpackable_mosaic(i)),
                     key=lambda i: (i.get("AcquisitionNumber") or 0, i.get("InstanceNumber") or 0))
    if not mosaics:
        return []
    kinds: dict[tuple[Any, ...], list[Row]] = {}
    for inst in mosaics:
        tile = json.loads(inst["frames"])
        kinds.setdefault((len(tile), tuple(tile[0]["mt"][2:]), str(tile[0].get("o"))), []).append(inst)
    whole = _loadable(series_name(mosaics[0]), mosaics)
    if len(kinds) == 1:
        return [whole]
    whole.warnings.append(f"the {len(mosaics)} mosaics are of {len(kinds)} kinds (tile count, tile size or "
                          f"orientation): not one 4D volume")
    whole.confidence = CONF_DOUBTFUL
    return [whole] + [_loadable(series_name(members[0]), members, f" of {size[1]}x{size[0]}")
                      for (_, size, _), members in kinds.items()]


def _loadable(title: str, mosaics: list[Row], size: str = "") -> Loadable:
    """The loadable of ``mosaics`` (acquisition order); ``size`` (" of 64x64") in its name when given."""
    parts = []
    warnings: list[str] = []
    diffusion = False
    for v, inst in enumerate(mosaics):
        tiles = json.loads(inst["frames"])
        diffusion = diffusion or tiles[0].get("b") is not None
        check = check_stack([frame_row(inst, t, tile) for t, tile in enumerate(tiles)])
        bvalue = tiles[0].get("b")
        parts.append(SequencePart(check.instances, check.geometry, bvalue if bvalue is not None else v + 1))
        prefix = f"volume {v + 1}: " if len(mosaics) > 1 else ""
        warnings += [prefix + w for w in check.warnings]
    key, unit = ("B_value", "s/mm²") if diffusion else ("mosaic", "")
    slices = f"{len(parts[0].instances)} slices{size}"
    what = f"Siemens mosaic: {slices}" if len(parts) == 1 else f"Siemens mosaics: {len(parts)} volumes of {slices}"
    return Loadable(f"{title} ({what})", [i for p in parts for i in p.instances], NAME,
                    CONF_SEQUENCE if not warnings else CONF_DOUBTFUL, warnings,
                    series_uid=mosaics[0].get("SeriesInstanceUID", ""),
                    payload=SequencePayload(key, unit, tuple(parts)))


def unpack(mosaic: np.ndarray, tiles: list[dict[str, Any]], order: list[int]) -> np.ndarray:
    """The tiles ``order`` (0-based tile numbers) of a mosaic picture [rows, columns] as [k, j, i], each cut at
    its stored place (``mt``: first row, first column, rows, columns)."""
    out = np.empty((len(order), *tiles[0]["mt"][2:]), dtype=mosaic.dtype)
    for k, t in enumerate(order):
        j0, i0, rows, cols = tiles[t]["mt"]
        out[k] = mosaic[j0:j0 + rows, i0:i0 + cols]
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """One Volume per mosaic, in acquisition order, each with ``extra`` (``key``, ``value``, ``unit``; diffusion
    adds ``bvalue`` and ``gradient``). Progress counts tiles. Raises ``LoadError`` (``cancel``, checked between
    mosaics) or ``PixelError``."""
    from ..pixels import read_slice

    payload = loadable.payload
    if not isinstance(payload, SequencePayload):
        raise TypeError(f"{loadable.name}: not a mosaic loadable")
    total = len(loadable.instances)
    check_cancel(cancel, loadable.name, 0, total)
    tick = ticker(progress, cancel, loadable.name, total)
    volumes = []
    done = 0
    for part in payload.parts:
        inst = part.instances[0]
        tiles = json.loads(inst["frames"])
        order = [int(str(r["SOPInstanceUID"]).rpartition("#")[2]) - 1 for r in part.instances]
        mosaic = read_slice(db.abspath(inst["path"], bool(inst["stored"])),
                            {**inst, "SOPInstanceUID": inst["SOPInstanceUID"].rpartition("#")[0]})
        volume = build_volume(unpack(mosaic, tiles, order), part.instances, part.geometry, name=loadable.name,
                              warnings=loadable.warnings, regularize=options.regularize)
        volume.extra = {"key": payload.key, "value": part.value, "unit": payload.unit}
        if tiles[0].get("b") is not None:
            volume.extra["bvalue"] = float(tiles[0]["b"])
            gradient = tiles[0].get("g")
            volume.extra["gradient"] = np.array(gradient, dtype=float) if gradient else None
        volumes.append(volume)
        done += len(part.instances)
        if tick is not None:
            tick(done, total)
    return volumes
