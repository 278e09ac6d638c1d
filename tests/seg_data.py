"""Generated segmentations for the SEG tests: a CT series (synth) and highdicom-written SEGs on it."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes

from dicomtui.core.synth import SeriesSpec, series_datasets

SPEC = SeriesSpec(slices=6, rows=16, cols=16, pixel_spacing=(1.0, 1.0), origin=(0.0, 0.0, 0.0))
LABELS = ("liver", "spleen", "kidney")


def write_ct(folder: Path, spec: SeriesSpec = SPEC) -> list[pydicom.Dataset]:
    """The CT series ``spec`` written to ``folder`` (one file per slice); its datasets."""
    folder.mkdir(parents=True, exist_ok=True)
    datasets = series_datasets(spec)
    for n, ds in enumerate(datasets):
        ds.save_as(folder / f"IM{n:03d}.dcm", enforce_file_format=True)
    return datasets


def descriptions(count: int) -> list[hd.seg.SegmentDescription]:
    colours = ("red", "green", "blue")
    return [hd.seg.SegmentDescription(
        segment_number=n, segment_label=LABELS[n - 1], segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Liver if n == 1 else codes.SCT.Spleen,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=hd.color.CIELabColor.from_string(colours[n - 1])) for n in range(1, count + 1)]


def write_seg(path: Path, source: list[pydicom.Dataset], pixels: np.ndarray, *, fractional: bool = False,
              reverse_frames: bool = False) -> hd.seg.Segmentation:
    """A SEG of ``pixels`` ([slice, row, column] labels, or [..., segment] masks / fractions) on ``source``;
    empty frames omitted (sparse); ``reverse_frames`` stores its frames last to first."""
    segments = int(pixels.max()) if pixels.ndim == 3 else pixels.shape[3]
    kind = hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
    seg = hd.seg.Segmentation(source, pixels, kind, descriptions(segments), hd.UID(), 10, hd.UID(), 1,
                              "dicomtui tests", "synthetic", "1", "1", series_description="Segmentation")
    if reverse_frames:
        _reverse(seg)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return seg


def _reverse(seg: hd.seg.Segmentation) -> None:
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)[::-1]
    seg.PerFrameFunctionalGroupsSequence = list(seg.PerFrameFunctionalGroupsSequence)[::-1]
    seg.PixelData = pack_bits(frames.ravel()) if seg.BitsAllocated == 1 else frames.tobytes()
    for key in ("DimensionOrganizationType",):
        if key in seg:
            del seg[key]
