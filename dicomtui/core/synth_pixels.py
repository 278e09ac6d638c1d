"""Generated test data for the kinds of pixels real series hold beside plain grey stacks (issue 11): colour (RGB
in both planar configurations, YBR_FULL), palette colour, a Modality LUT Sequence, MONOCHROME1 with its VOI LUT
Function and Presentation LUT Shape, objects without pixels (SR), and a file no decoder reads. Built on
:func:`synth.series_datasets` (same patient, study, geometry); the right values come from pydicom
(``pixel_array``, ``convert_color_space``, ``apply_color_lut``, ``apply_modality_lut``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as Seq
from pydicom.uid import UID, JPEGBaseline8Bit

from .synth import SeriesSpec, series_datasets, uid

SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")
_GREY_ONLY = ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth")


def colour_pixels(k: int, spec: SeriesSpec) -> np.ndarray:
    """RGB uint8 (rows, cols, 3) whose channels encode column, row and slice: R = 4 i, G = 4 j, B = 40 + 20 k."""
    jj, ii = np.mgrid[0 : spec.rows, 0 : spec.cols]
    return np.stack([(4 * ii) % 256, (4 * jj) % 256, np.full(ii.shape, (40 + 20 * k) % 256)], axis=-1).astype(np.uint8)


def _as_8bit(ds: Dataset, samples: int, photometric: str) -> None:
    for keyword in _GREY_ONLY:
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0


def colour_series(spec: SeriesSpec, photometric: str = "RGB", planar: int = 0) -> list[Dataset]:
    """A colour series (SamplesPerPixel 3, uncompressed) on ``spec``'s geometry: ``photometric`` RGB or YBR_FULL
    (RGB converted by pydicom), ``planar`` 0 (R G B per pixel) or 1 (all R, all G, all B), PS3.3 C.7.6.3.1.3."""
    from pydicom.pixels import convert_color_space

    out = []
    for k, ds in enumerate(series_datasets(spec)):
        _as_8bit(ds, 3, photometric)
        ds.PlanarConfiguration = planar
        rgb = colour_pixels(k, spec)
        data = rgb if photometric == "RGB" else convert_color_space(rgb, "RGB", photometric)
        ds.PixelData = np.ascontiguousarray(data.transpose(2, 0, 1) if planar else data).tobytes()
        out.append(ds)
    return out


def palette_series(spec: SeriesSpec, bits: int = 16) -> list[Dataset]:
    """PALETTE COLOR images (8-bit indices) with ``bits``-bit red/green/blue LUTs of 256 entries (PS3.3 C.7.6.3.1.5):
    red rises with the index, green falls, blue is a step."""
    index = np.arange(256)
    scale = 257 if bits == 16 else 1
    luts = [(index * scale), ((255 - index) * scale), (np.where(index < 128, 30, 220) * scale)]
    out = []
    for k, ds in enumerate(series_datasets(spec)):
        _as_8bit(ds, 1, "PALETTE COLOR")
        for colour, lut in zip(("Red", "Green", "Blue"), luts, strict=True):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, bits])
            setattr(ds, f"{colour}PaletteColorLookupTableData",
                    lut.astype("<u2" if bits == 16 else "u1").tobytes())
        jj, ii = np.mgrid[0 : spec.rows, 0 : spec.cols]
        ds.PixelData = ((ii * 3 + jj + 10 * k) % 256).astype(np.uint8).tobytes()
        out.append(ds)
    return out


def with_modality_lut(ds: Dataset, lut: Sequence[int], first: int = 0) -> Dataset:
    """``ds`` with a Modality LUT Sequence (16-bit entries, first mapped value ``first``) in place of Rescale
    Slope/Intercept, which PS3.3 C.11.1 says are not both present."""
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    item = Dataset()
    item.LUTDescriptor = [len(lut), first, 16]
    item.ModalityLUTType = "US"
    item.add_new("LUTData", "US", [int(v) for v in lut])  # US or OW (PS3.3 C.11.1): US, one value per entry
    ds.ModalityLUTSequence = Seq([item])
    return ds


def undecodable(ds: Dataset) -> Dataset:
    """``ds`` as 8-bit JPEG Baseline whose one fragment is not a JPEG stream: well-formed for an import (items,
    delimiter), refused by every decoder — the file that must not take its series down."""
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\xff\xd8 not a JPEG stream " * 4])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return ds


def structured_report(spec: SeriesSpec) -> Dataset:
    """A Basic Text SR in its own series of ``spec``'s study: an object without pixels."""
    ds = series_datasets(spec)[0]
    for keyword in [e.keyword for e in ds if e.tag.group == 0x0028 or e.keyword in (
            "PixelData", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "ImageType")]:
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(uid("sr", ds.SeriesInstanceUID))
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    return ds


def write_datasets(folder: str | Path, datasets: list[Dataset], name: str = "IM{index:05d}.dcm") -> list[Path]:
    """Write ``datasets`` into ``folder`` (made if missing); returns the paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate(datasets, 1):
        path = folder / name.format(index=n)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
