"""Splitting "fake" multi-frame files: NumberOfFrames > 1 in a SOP class whose IOD has one frame (CT, MR, PET,
CR, DX, Secondary Capture, US Image Storage — PS3.3 A.3, A.4, A.21…). Readers that follow the IOD read the first
frame only; one file per frame is what the class allows.

Each frame gets its own file, a SOPInstanceUID derived from the original one and the frame number, and a
position: from the file's PerFrameFunctionalGroupsSequence when it has one, else from ImagePositionPatient +
frame × spacing along the normal (SpacingBetweenSlices, else SliceThickness: Slicer's "position from thickness"
rule for Dolphin CBCT exports), else the file's own position for every frame (said).
"""

from __future__ import annotations

import copy

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
)

from .patcher_base import PatchContext, PatchFile, derived_uid, set_sop_instance_uid

SINGLE_FRAME_CLASSES = frozenset({
    CTImageStorage, MRImageStorage, PositronEmissionTomographyImageStorage, ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation, DigitalXRayImageStorageForProcessing, SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
})
_MULTI_FRAME_ONLY = ("NumberOfFrames", "FrameIncrementPointer", "PerFrameFunctionalGroupsSequence",
                     "SharedFunctionalGroupsSequence")


class SplitFrames:
    """The ``split`` rule: one data set per frame for fake multi-frame files (see the module)."""

    name = "split"
    title = "one file per frame for multi-frame CT, MR… files (single-frame SOP classes)"

    def prepare(self, files: list[PatchFile], context: PatchContext) -> None:
        return None

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        return []  # the work is in split(): it makes several data sets

    def split(self, ds: Dataset) -> tuple[list[Dataset], list[str]]:
        """The frames of ``ds`` as data sets, with the changes in words; ``([ds], [])`` when there is nothing to
        split, ``([ds], [why not])`` when it cannot be split."""
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames < 2 or str(ds.get("SOPClassUID", "")) not in SINGLE_FRAME_CLASSES or "PixelData" not in ds:
            return [ds], []
        pixels = frame_pixels(ds, frames)
        if isinstance(pixels, str):
            return [ds], [f"not split into {frames} files: {pixels}"]
        positions, how = frame_positions(ds, frames)
        number = int(ds.get("InstanceNumber", 1) or 1)
        pixel_data = ds["PixelData"]
        del ds.PixelData  # not deep-copied once per frame
        shell = copy.deepcopy(ds)
        ds["PixelData"] = pixel_data
        out = []
        for index, data in enumerate(pixels):
            one = copy.deepcopy(shell)
            for keyword in _MULTI_FRAME_ONLY:
                if keyword in one:
                    delattr(one, keyword)
            one.PixelData = data
            one["PixelData"].VR = pixel_data.VR
            one["PixelData"].is_undefined_length = pixel_data.is_undefined_length
            set_sop_instance_uid(one, derived_uid("frame", ds.SOPInstanceUID, index))
            one.InstanceNumber = (number - 1) * frames + index + 1
            if positions is not None:
                one.ImagePositionPatient = [f"{v:.6g}" for v in positions[index]]
            out.append(one)
        name = ds.SOPClassUID.name
        return out, [f"{frames} frames in a {name} file (a single-frame class): split into {frames} files, "
                     f"positions {how}"]


def frame_pixels(ds: Dataset, frames: int) -> list[bytes] | str:
    """The bytes of each frame (native or one encapsulated frame each), or why they cannot be cut."""
    data = ds.PixelData
    if ds["PixelData"].is_undefined_length:
        try:
            return [encapsulate([f]) for f in generate_frames(data, number_of_frames=frames)]
        except (ValueError, TypeError) as exc:
            return f"its compressed frames could not be told apart ({exc})"
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits % 8:
        return f"BitsAllocated {bits} is not whole bytes"
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * bits // 8
    if size == 0 or len(data) < size * frames:
        return f"its pixel data holds {len(data)} bytes, not {frames} frames of {size}"
    return [_even(data[i * size:(i + 1) * size]) for i in range(frames)]


def _even(data: bytes) -> bytes:
    return data + b"\0" if len(data) % 2 else data


def frame_positions(ds: Dataset, frames: int) -> tuple[np.ndarray | None, str]:
    """Each frame's ImagePositionPatient ([frames, 3], LPS mm) and how it was found, or (None, why not)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) == frames:
        try:
            return np.array([[float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
                             for item in per_frame]), "from the per-frame functional groups"
        except (AttributeError, IndexError, TypeError, ValueError):
            pass
    try:
        origin = np.array([float(v) for v in ds.ImagePositionPatient])
        cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    except (AttributeError, TypeError, ValueError):
        return None, "unknown (no ImagePositionPatient / ImageOrientationPatient): left as they were"
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            spacing = float(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            spacing = 0.0
        if spacing > 0:
            normal = np.cross(cosines[:3], cosines[3:])
            return (origin + np.outer(np.arange(frames), normal * spacing),
                    f"from ImagePositionPatient + frame × {keyword} {spacing:g} mm along the normal")
    return None, "unknown (no SpacingBetweenSlices or SliceThickness): every frame keeps the file's position"
