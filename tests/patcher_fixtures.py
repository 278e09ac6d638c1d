"""Broken files for the patcher's tests, generated with pydicom from the synthetic series (one kind of damage
each, as they come from old scanners, hand-written scripts and aggressive anonymisers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian

from dicomtui.core.synth import SeriesSpec, series_datasets


def datasets(slices: int = 3, **spec) -> list[Dataset]:
    return series_datasets(SeriesSpec(slices=slices, rows=16, cols=16, **spec))


def write(ds: Dataset, path: Path, *, part10: bool = True, implicit: bool = False) -> Path:
    """``ds`` as a Part-10 file, or (``part10=False``) as a bare data set without preamble or file meta."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if part10:
        ds.preamble = b"\0" * 128
        ds.save_as(path, enforce_file_format=False)
    else:
        del ds.file_meta
        ds.save_as(path, implicit_vr=implicit, little_endian=True)
    return path


def without(ds: Dataset, *keywords: str) -> Dataset:
    for keyword in keywords:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def missing_ids(folder: Path) -> None:
    """PatientA/s1 (3 slices) and PatientA/s2 (2 slices): no Study/Series/SOP UIDs, no PatientName/ID."""
    for sub, number, count in (("s1", 1, 3), ("s2", 2, 2)):
        for i, ds in enumerate(datasets(count, series_number=number)):
            without(ds, "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientName", "PatientID")
            without(ds.file_meta, "MediaStorageSOPInstanceUID")
            write(ds, folder / "PatientA" / sub / f"IM{i}.dcm")


def bare_implicit(folder: Path, slices: int = 3) -> list[Path]:
    """A series whose files have no preamble, no "DICM" and no file meta (implicit VR little endian)."""
    return [write(ds, folder / f"bare{i}", part10=False, implicit=True) for i, ds in enumerate(datasets(slices))]


def no_thickness(folder: Path, modality: str = "CT", spacing: float = 2.0, positions=None, **spec) -> None:
    for i, ds in enumerate(datasets(4, modality=modality, slice_spacing=spacing, positions=positions, **spec)):
        write(without(ds, "SliceThickness"), folder / f"IM{i}.dcm")


def fake_multiframe(path: Path, frames: int = 3, thickness: float = 2.5, **spec) -> np.ndarray:
    """A CT Image Storage file with ``frames`` frames (a single-frame class); returns the frames [f, r, c]."""
    ds = datasets(1, **spec)[0]
    pixels = np.stack([np.full((16, 16), 100 * (f + 1), np.int16) + np.arange(16, dtype=np.int16)
                       for f in range(frames)])
    ds.NumberOfFrames = frames
    ds.SliceThickness = thickness
    ds.PixelData = pixels.astype("<i2").tobytes()
    write(ds, path)
    return pixels


def big_endian(path: Path) -> np.ndarray:
    """An Explicit VR Big Endian file (retired, PS3.5 A.3 of 2004): the pixel words written big endian."""
    ds = datasets(1)[0]
    pixels = (np.arange(256, dtype=np.int16).reshape(16, 16) * 7 - 300)
    ds.PixelData = pixels.astype(">i2").tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    write(ds, path)
    return pixels


def deflated(path: Path) -> np.ndarray:
    ds = datasets(1)[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    write(ds, path)
    return ds.pixel_array


def bad_uids_and_dates(folder: Path) -> tuple[str, str]:
    """Two files: one whose SOPInstanceUID has letters and leading zeros, one that references it (a source
    image); dates written 2020.01.02, 2020-01-02, padded and not a date. Returns the bad UIDs."""
    first, second = datasets(2)
    bad = "1.2.826.0.1.3680043.10.01147.abc.1"
    long = "1.2.826.0.1.3680043.10.1147." + "1234567890" * 4
    first.SOPInstanceUID = first.file_meta.MediaStorageSOPInstanceUID = bad
    first.StudyDate = "2020.01.02"
    first.SeriesDate = "2020-01-02"
    first.ContentDate = "20201301"
    second.FrameOfReferenceUID = long
    first.FrameOfReferenceUID = long
    second.PatientBirthDate = "19700101 "
    ref = Dataset()
    ref.ReferencedSOPClassUID = first.SOPClassUID
    ref.ReferencedSOPInstanceUID = bad
    second.SourceImageSequence = Sequence([ref])
    write(first, folder / "one.dcm")
    write(second, folder / "two.dcm")
    return bad, long
