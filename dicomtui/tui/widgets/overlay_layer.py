"""The viewer's overlays (issue 19): label volumes and doses go to the image item they belong on, are drawn on
the resized slice (at the shown resolution: an outline stays one screen pixel wide at any zoom), and named in a
legend line with their colours. What is drawn comes from core.overlay; this module only fits it to the screen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.style import Style
from rich.text import Text

from ...core.overlay import (
    Layer,
    OverlayStyle,
    choose_base,
    composite,
    is_overlay,
    legend,
    same_grid,
)
from ...core.viewgeom import PlaneView
from ...core.volume import Volume

MODE_WORDS = {"off": "hidden", "outline": "outlines", "filled": "filled"}


def draw_overlays(image: np.ndarray, layers: Sequence[Layer], pv: PlaneView, s: int,
                  crop: tuple[int, int, int, int], style: OverlayStyle) -> np.ndarray:
    """``image`` (the shown part of slice ``s``, already resized: uint8 grey [H, W] or RGB [H, W, 3]) with the
    layers drawn on it: each layer's slice on the base's pixels, cropped to ``crop`` (top, left, rows, columns)
    and fitted to the image (labels nearest; a dose sampled at the image's pixels directly), then composed
    (core.overlay.composite)."""
    if style.mode == "off" or not layers:
        return image
    height, width = image.shape[:2]
    return composite(image, [(layer, layer.shown(pv, s, crop, height, width)) for layer in layers], style)


def legend_text(overlays: Sequence[Volume], style: OverlayStyle, key: str = "g") -> Text:
    """The legend line: the mode and the key that changes it, then "■ name" per segment in its colour and the
    dose threshold; empty without overlays."""
    if not overlays:
        return Text()
    line = Text(f"Overlays {MODE_WORDS[style.mode]} ({key}):", style="bold")
    for name, colour in legend(overlays, style):
        line.append("  ")
        line.append("■", style=Style(color=f"rgb({colour[0]},{colour[1]},{colour[2]})"))
        line.append(f" {name}")
    return line


def suv_window(volume: Volume, center: float, width: float) -> str:
    """A PET window in SUV (body weight, else lean body mass) when the volume has ``suv_factors``: "SUV 0-5";
    "" without them. The window itself stays in stored units (Bq/ml); only how it is named changes."""
    for kind in ("bw", "lbm"):
        factor = volume.suv_factors.get(kind)
        if factor:
            low, high = (center - width / 2) * factor, (center + width / 2) * factor
            return f"SUV{'' if kind == 'bw' else kind} {low:.3g}-{high:.3g}"
    return ""


def attach_overlays(existing: Sequence, new: Sequence) -> tuple[list, list[str], object | None]:
    """Viewer items (``ViewerItem``) as loaded, with each label volume and dose moved onto the image item it
    belongs on (core.overlay.choose_base: the referenced series, else the same grid, else a dose's overlap):
    images of the same load first, then items loaded before. An image loaded only because a derived object
    refers to it (``reference_only``: Slicer's "load referenced series") whose series is open already is not
    added again: the object goes onto the open one. Returns the items to add (those left with an image, or with
    overlays that found no image: those show on their own, their overlays drawn over themselves), one sentence
    per overlay that found no image, and the item to show: the newest added, else the open item the overlays
    went onto (None when neither)."""
    said: list[str] = []
    kept = []
    pending: list[Volume] = []
    for item in new:
        images = [v for v in item.volumes if not is_overlay(v)]
        pending += [v for v in item.volumes if is_overlay(v)]
        if images and not (getattr(item, "reference_only", False) and _open_already(existing, images[0])):
            item.volumes[:] = images
            kept.append(item)
    candidates = [*kept, *existing]
    orphans = []
    show = None
    for volume in pending:
        bases = [item.volumes[0] for item in candidates]
        index, why = choose_base(volume, bases)
        if index is None:
            said.append(why)
            orphans.append(volume)
        else:
            candidates[index].overlays.append(volume)
            show = candidates[index]
    if orphans:
        from .slice_view import ViewerItem

        for volume in orphans:
            kept.append(ViewerItem(volume.name or "overlay", [volume], overlays=[volume]))
    return kept, said, kept[-1] if kept else show


def _open_already(existing: Sequence, image: Volume) -> bool:
    """An open item shows this image's series on the same voxel grid."""
    return bool(image.series_uid) and any(item.volumes[0].series_uid == image.series_uid
                                          and same_grid(item.volumes[0], image) for item in existing)
