"""Scalar volume plugin: a series of single-frame images as one volume, honestly checked, and its parts (by
acquisition, image type, orientation, gradient; by time on request) when the whole is doubtful or mixed.

Works from the tags stored at import (never opens files to examine). The stacking order and every doubt
(uneven spacing, missing slices, gantry tilt, mixed orientations or image sizes, missing geometry, several frames
of reference) come from ``geometry.check_stack``; the volume from ``stack.read_volume``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plural import counted
from .geometry import ORIENTATION_TOLERANCE, Row, check_stack, orientation, repeat_labels
from .plugin import (
    CONF_ALL,
    CONF_CANNOT_LOAD,
    CONF_DOUBTFUL,
    CONF_PREFERRED,
    CONF_REPEATS_STACKED,
    CONF_SUB,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    StackPayload,
    check_cancel,
    image_kind,
    is_mosaic,
    is_rt_dose,
    series_name,
    ticker,
    unpackable_mosaic,
)
from .stack import read_volume, with_frame_geometry

if TYPE_CHECKING:
    from ..volume import Volume

NAME = name = "scalar"
IMAGE_KIND = "image"  # a derived key: columns x rows and grey/colour; images differing in it cannot be stacked
SPLIT_KEYS = [(IMAGE_KIND, "image"), ("AcquisitionNumber", "acquisition"), ("ImageType", "image type"),
              ("ImageOrientationPatient", "orientation"), ("DiffusionGradientOrientation", "gradient")]
TIME_KEYS = [("ContentTime", "content time"), ("TriggerTime", "trigger time")]


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """Loadables of one series from its instance rows: the whole series first, then its parts (a part is
    offered once even when two keys split the same way); confidences as ``plugin`` explains them."""
    if not rows:
        return []
    first = rows[0]
    title = series_name(first)
    series_uid = first.get("SeriesInstanceUID", "")
    images = with_frame_geometry([i for i in rows if i.get("has_pixels") and (i.get("NumberOfFrames") or 1) <= 1
                                  and not unpackable_mosaic(i) and not is_rt_dose(i)])
    if not images:
        return []  # only multi-frame images (the multi-frame plugin reads them) or no pixels (nonimage lists them)
    skipped = len(rows) - len(images)
    whole = _loadable(title, images, series_uid)
    if mosaics := sum(1 for i in images if is_mosaic(i)):
        whole.warnings.append(f"{mosaics} Siemens mosaics without NumberOfImagesInMosaic (CSA header or "
                              f"(0019,100A)): their tiles are shown side by side as one picture, not as slices")
    if skipped:
        whole.warnings.append(f"{counted(skipped, 'instance')} without pixel data or with several frames "
                              f"{'is' if skipped == 1 else 'are'} left out")
    out = [whole]
    offered = {whole.files}
    keys = SPLIT_KEYS + (TIME_KEYS if options.split_by_time else [])
    for key, label in keys:
        groups = _group(images, key)
        if len(groups) < 2 or max(len(g) for g in groups.values()) == 1:
            continue  # one value, or one image per value (an AcquisitionNumber per slice): no parts to offer
        if len(groups) == 2 and min(len(g) for g in groups.values()) == 1 and len(images) > 2:
            scout = next(g for g in groups.values() if len(g) == 1)[0]
            subs = [(f"{title} (without the localizer)", [i for i in images if i is not scout])]
        else:
            subs = [(f"{title} ({label} {_show(value)})", members) for value, members in groups.items()]
        for sub_name, members in subs:
            sub = _loadable(sub_name, members, series_uid)
            if sub.files not in offered:  # two keys can split the same way (a localizer differs in both)
                offered.add(sub.files)
                out.append(sub)
    repeats = _repeats(title, images, series_uid, out)
    for part in out[1:]:
        part.confidence = CONF_SUB
    if whole.warnings:
        whole.confidence = CONF_DOUBTFUL
        for part in out[1:]:
            part.confidence = CONF_PREFERRED if not part.warnings else CONF_DOUBTFUL
    if repeats:
        whole.confidence = CONF_REPEATS_STACKED
        for part in repeats:
            part.confidence = CONF_PREFERRED if not part.warnings else CONF_DOUBTFUL
    for item in out + repeats:  # a default must load: several sizes or grey and colour are listed, never chosen
        if len({image_kind(i) for i in item.instances}) > 1:
            item.confidence = CONF_CANNOT_LOAD
    return out + repeats


def _repeats(title: str, images: list[Row], series_uid: str, offered: list[Loadable]) -> list[Loadable]:
    """When slices repeat positions unequally (equal repeats are the sequence plugin's 4D reading) and no
    attribute split the series into clean parts: one part per repetition (the n-th image at each position, by
    InstanceNumber), so repeated positions are never only stacked as one."""
    if not any("share a position" in w for w in offered[0].warnings) or any(not p.warnings for p in offered[1:]):
        return []
    ordered = sorted(images, key=lambda i: (i.get("InstanceNumber") is None, i.get("InstanceNumber") or 0))
    labels = repeat_labels(ordered)
    count = max(labels) + 1
    if count < 2 or len({labels.count(r) for r in range(count)}) == 1:
        return []  # every position repeated equally often: the sequence plugin's 4D reading covers it
    return [_loadable(f"{title} (repeat {r + 1} of {count})", [i for i, n in zip(ordered, labels, strict=True)
                                                               if n == r], series_uid) for r in range(count)]


def _show(value: Any) -> str:
    return str(value).replace("\\", "/") if value is not None else "none"


def _group(images: list[Row], key: str) -> dict[Any, list[Row]]:
    """The images by their value of ``key``; orientations equal within ORIENTATION_TOLERANCE are one group."""
    groups: dict[Any, list[Row]] = defaultdict(list)
    if key == "ImageOrientationPatient":
        reps: list[tuple[np.ndarray | None, Any]] = []
        for inst in images:
            v = orientation(inst.get(key))
            for rep, label in reps:
                if (v is None and rep is None) or (v is not None and rep is not None
                                                    and np.max(np.abs(v - rep)) <= ORIENTATION_TOLERANCE):
                    groups[label].append(inst)
                    break
            else:
                label = inst.get(key)
                reps.append((v, label))
                groups[label].append(inst)
        return dict(groups)
    for inst in images:
        groups[image_kind(inst) if key == IMAGE_KIND else inst.get(key)].append(inst)
    return dict(groups)


def _loadable(name: str, images: list[Row], series_uid: str) -> Loadable:
    check = check_stack(images)
    warnings = list(check.warnings)
    photometrics = {i.get("PhotometricInterpretation") or "MONOCHROME2" for i in images}
    if len(photometrics) > 1:  # sizes are said by check_stack
        warnings.append(f"mixed PhotometricInterpretation ({', '.join(sorted(photometrics))}): the images cannot "
                        f"be stacked into one volume")
    return Loadable(name, check.instances, NAME, CONF_ALL, warnings, series_uid=series_uid,
                    payload=StackPayload(check.geometry))


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The one Volume of ``loadable``, its slices stacked with the acquired geometry; with
    ``options.regularize``, an unevenly spaced, gapped or tilted stack is resampled onto a regular orthogonal grid.
    Raises ``LoadError`` (sizes differ, or ``cancel`` set between slices) or ``PixelError``."""
    payload = loadable.payload
    geometry = payload.geometry if isinstance(payload, StackPayload) else None
    total = len(loadable.instances)
    check_cancel(cancel, loadable.name, 0, total)
    return [read_volume(db, loadable.instances, geometry, name=loadable.name, warnings=loadable.warnings,
                        progress=ticker(progress, cancel, loadable.name, total), regularize=options.regularize)]
