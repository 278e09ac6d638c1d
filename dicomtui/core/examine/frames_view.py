"""Images one by one: a series that is not one volume — images of several sizes, grey and colour mixed, or
projection images (CR, DX, MG, XA, RF, IO, PX, SC, US stills…) without a place in the patient to stack them by —
offered whole, image by image in InstanceNumber order, each at its own size and pixel spacing.

Load returns one single-slice ``Volume`` per image (colour as RGB), which the viewer shows as one per-frame item
(``t``/``T`` step the images, ``p`` plays them, at the first image's cine rate when it has one: ``cine``). A file
that cannot be decoded is left out by name; the others load. Multi-frame files are the multi-frame plugin's.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import PixelError
from .cine import frame_rate
from .geometry import Row, check_stack, vector
from .plugin import (
    CONF_IMAGES,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    check_cancel,
    image_kind,
    series_name,
    unpackable_mosaic,
)
from .stack import read_volume, with_frame_geometry

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "images"
# Modalities whose images are projections or photographs (PS3.3 C.7.3.1.1.1), never slices of a volume
PROJECTION = frozenset(("CR", "DX", "MG", "IO", "PX", "RF", "XA", "RG", "XC", "ES", "GM", "OP", "SC", "US", "OT"))


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable of every single-frame image of the series, in InstanceNumber order, when there are two or more
    and they are not one volume: several image kinds (``image_kind``: size, grey or colour), or no image placed
    in the patient (no ImagePositionPatient with ImageOrientationPatient) and a projection modality. Else []."""
    images = with_frame_geometry([i for i in rows if i.get("has_pixels") and (i.get("NumberOfFrames") or 1) <= 1
                                  and not unpackable_mosaic(i)])
    if len(images) < 2:
        return []
    mixed = len({image_kind(i) for i in images}) > 1
    placed = any(vector(i.get("ImagePositionPatient"), 3) is not None
                 and vector(i.get("ImageOrientationPatient"), 6) is not None for i in images)
    projection = not placed and all(str(i.get("Modality") or "").upper() in PROJECTION for i in images)
    if not (mixed or projection):
        return []
    ordered = sorted(images, key=lambda i: (i.get("InstanceNumber") is None, i.get("InstanceNumber") or 0))
    return [Loadable(f"{series_name(images[0])} (images one by one)", ordered, NAME, CONF_IMAGES,
                     series_uid=images[0].get("SeriesInstanceUID", ""))]


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """One single-slice Volume per image of ``loadable`` (array [1, rows, cols], or [1, rows, cols, 3] RGB), in
    its order, named "image N: COLSxROWS PHOTOMETRIC" (N the InstanceNumber), each with ``extra["frame_rate"]``
    when the first image's header gives one (``cine.frame_rate``). ``options`` change nothing: one image is never
    resampled. An image no decoder reads is left out, its sentence among the first volume's warnings. Raises
    ``LoadError`` (``cancel`` set, checked between images) or ``PixelError`` (every image unreadable)."""
    total = len(loadable.instances)
    volumes: list[Volume] = []
    left_out: list[str] = []
    for n, row in enumerate(loadable.instances):
        check_cancel(cancel, loadable.name, n, total)
        geometry = check_stack([row]).geometry  # its own pixel size; its place (often none) matters not alone
        number = row.get("InstanceNumber")
        try:
            volumes.append(read_volume(db, [row], geometry, name=f"image {number if number is not None else n + 1}"
                                       f": {image_kind(row)}", warnings=[]))
        except PixelError as exc:  # one bad file does not take the others down (as unreadable.leave_out)
            left_out.append(f"left out, unreadable: {exc}")  # the sentence names the file and why
        if progress is not None:
            progress(n + 1, total)
    if not volumes:
        others = f" (and the {len(left_out) - 1} other files)" if len(left_out) > 1 else ""
        raise PixelError(left_out[0].removeprefix("left out, unreadable: ") + others)
    volumes[0].warnings.extend(left_out)
    first = loadable.instances[0]
    rate = frame_rate(db.abspath(first["path"], bool(first["stored"])))
    if rate is not None:
        for volume in volumes:
            volume.extra["frame_rate"] = rate
    return volumes
