"""Several volumes of one grid (a 4D sequence: time points, echoes, b-values) written as ONE new series, and what
sets each volume's images apart.

One series rather than one per volume: that is how scanners store such a sequence (classic single-frame images,
every slice position repeated once per volume), so that our own loader (``examine/sequence.py``) and dcm2niix
read it back as one 4D image, in the same order. Images are numbered volume by volume (InstanceNumber
t × slices + k + 1). Each volume's images carry the attribute the sequence was told apart by when the loader
named one we can write (``Volume.extra["key"]``: TemporalPositionIdentifier, TriggerTime, EchoTime,
DiffusionBValue, AcquisitionNumber; b-values and gradient directions of a diffusion series too); otherwise (a 4D
NIfTI, say) TemporalPositionIdentifier (0020,0100) t + 1 and NumberOfTemporalPositions (0020,0105).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR

from ..errors import VolumeWriteError
from ..volume import Volume
from .volume_encoding import format_ds

# the keys of examine/sequence.py's VARYING that a classic image can carry, one value per volume
_WRITABLE_KEYS = ("TemporalPositionIdentifier", "TriggerTime", "EchoTime", "DiffusionBValue", "AcquisitionNumber")


def volumes_of(volume: Volume | Sequence[Volume]) -> list[Volume]:
    """``volume`` as a list of one, or the sequence checked: one grid (shape and affine within 1e-4 mm), all grey
    or all colour. Raises VolumeWriteError otherwise, or for an empty sequence."""
    volumes = [volume] if isinstance(volume, Volume) else list(volume)
    if not volumes:
        raise VolumeWriteError("no volume to write.")
    first = volumes[0]
    for n, other in enumerate(volumes[1:], start=2):
        if other.array.shape != first.array.shape or not np.allclose(other.affine, first.affine, atol=1e-4):
            raise VolumeWriteError(f"volume {n} of the sequence does not share the first one's grid (shape "
                                   f"{other.array.shape} vs {first.array.shape}, or its affine): one series holds "
                                   "volumes of one grid only.")
    return volumes


def check_colour(volume: Volume) -> None:
    """Raises VolumeWriteError unless a colour volume is [k, j, i, 3] uint8 (8-bit R, G, B samples)."""
    if volume.array.shape[-1:] != (3,) or volume.array.dtype != np.uint8:
        raise VolumeWriteError(f"a colour volume must be [k, j, i, 3] 8-bit R, G, B samples, not {volume.array.dtype} "
                               f"of shape {volume.array.shape}.")


def volume_attributes(volumes: Sequence[Volume]) -> list[dict[str, Any]]:
    """Per volume, the attributes its images carry (keyword → value; [{}] for one volume): see the module's
    docstring."""
    if len(volumes) == 1:
        return [{}]
    key = volumes[0].extra.get("key")
    values = [v.extra.get("value") for v in volumes]
    keyed = key in _WRITABLE_KEYS and None not in values and len({str(x) for x in values}) == len(values)
    out: list[dict[str, Any]] = []
    for t, (volume, value) in enumerate(zip(volumes, values, strict=True)):
        attrs: dict[str, Any] = {str(key): _value(str(key), value)} if keyed else {}
        if "bvalue" in volume.extra:
            attrs["DiffusionBValue"] = float(volume.extra["bvalue"])  # VR FD (PS3.6): a number, not DS text
            gradient = volume.extra.get("gradient")
            if gradient is not None:
                attrs["DiffusionGradientOrientation"] = [float(g) for g in gradient]
        if not attrs or key == "TemporalPositionIdentifier":
            attrs["TemporalPositionIdentifier"] = attrs.get("TemporalPositionIdentifier", t + 1)
            attrs["NumberOfTemporalPositions"] = len(volumes)
        out.append(attrs)
    return out


def _value(keyword: str, value: Any) -> Any:
    """A loader's value as pydicom sets it for ``keyword``'s VR (PS3.6): FD/FL as float; else whole numbers as int
    and other floats as DS strings (IS, DS)."""
    if dictionary_VR(keyword) in ("FD", "FL"):
        return float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else format_ds(value)
    return value
