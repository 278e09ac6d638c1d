"""Generated DICOM test data (no real patients): series with chosen geometry for tests, benchmarks, screenshots.

Everything is made with pydicom from a fixed UID root, deterministic for a given ``seed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

CT_IMAGE_STORAGE = CTImageStorage
MR_IMAGE_STORAGE = MRImageStorage
UID_ROOT = "1.2.826.0.1.3680043.10.1147."  # generated-data root; never a real patient's


def uid(*parts: object) -> str:
    """A deterministic, valid UID from ``parts``."""
    digest = int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"{UID_ROOT}{digest}"[:64]


@dataclass
class SeriesSpec:
    patient_name: str = "Synthetic^Patient"
    patient_id: str = "SYN0001"
    birth_date: str = "19700101"
    sex: str = "O"
    study_uid: str = ""
    study_date: str = "20240115"
    study_time: str = "101500"
    study_description: str = "Synthetic study"
    accession: str = "ACC0001"
    series_uid: str = ""
    series_number: int = 1
    series_description: str = "Axial"
    modality: str = "CT"
    body_part: str = "HEAD"
    slices: int = 10
    rows: int = 64
    cols: int = 64
    pixel_spacing: tuple[float, float] = (0.5, 0.5)
    slice_spacing: float = 2.0
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    origin: tuple[float, float, float] = (-16.0, -16.0, 0.0)
    positions: Sequence[Sequence[float]] | None = None  # overrides origin/slice_spacing
    implicit: bool = False
    seed: int = 0


def series_datasets(spec: SeriesSpec, pixels: Callable[[int, SeriesSpec], np.ndarray] | None = None,
                    ) -> list[Dataset]:
    """The datasets of one series (instance i at ``positions[i]``, or origin + i × spacing × normal)."""
    study_uid = spec.study_uid or uid("study", spec.patient_id, spec.seed)
    series_uid = spec.series_uid or uid("series", study_uid, spec.series_number, spec.seed)
    row, col = np.array(spec.orientation[:3]), np.array(spec.orientation[3:])
    normal = np.cross(row, col)
    positions: Sequence[Any] = spec.positions or [
        np.array(spec.origin) + i * spec.slice_spacing * normal for i in range(spec.slices)]
    frame_uid = uid("frame", study_uid, spec.seed)
    sop_class = MR_IMAGE_STORAGE if spec.modality == "MR" else CT_IMAGE_STORAGE
    out = []
    for i, pos in enumerate(positions):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = uid("sop", series_uid, i)
        ds.StudyDate = spec.study_date
        ds.SeriesDate = spec.study_date
        ds.StudyTime = spec.study_time
        ds.SeriesTime = spec.study_time
        ds.ContentTime = spec.study_time
        ds.AccessionNumber = spec.accession
        ds.Modality = spec.modality
        ds.ReferringPhysicianName = "Referrer^Synthetic"
        ds.StudyDescription = spec.study_description
        ds.SeriesDescription = spec.series_description
        ds.PatientName = spec.patient_name
        ds.PatientID = spec.patient_id
        ds.PatientBirthDate = spec.birth_date
        ds.PatientSex = spec.sex
        ds.BodyPartExamined = spec.body_part
        ds.SliceThickness = spec.slice_spacing
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = spec.series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [round(float(v), 6) for v in pos]
        ds.ImageOrientationPatient = [float(v) for v in spec.orientation]
        ds.FrameOfReferenceUID = frame_uid
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = spec.rows
        ds.Columns = spec.cols
        ds.PixelSpacing = list(spec.pixel_spacing)
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.RescaleIntercept = -1024 if spec.modality == "CT" else 0
        ds.RescaleSlope = 1
        data = pixels(i, spec) if pixels else default_pixels(i, spec)
        ds.PixelData = data.astype("<i2").tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if spec.implicit else ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        out.append(ds)
    return out


def default_pixels(i: int, spec: SeriesSpec) -> np.ndarray:
    """A sphere-ish phantom whose values also encode the slice index (so slice order can be checked)."""
    yy, xx = np.mgrid[0 : spec.rows, 0 : spec.cols]
    r2 = ((yy - spec.rows / 2) / (spec.rows / 2.5)) ** 2 + ((xx - spec.cols / 2) / (spec.cols / 2.5)) ** 2
    img = np.where(r2 < 1.0, 1000 + 10 * i, i).astype(np.int16)
    return img


def head_phantom(i: int, spec: SeriesSpec) -> np.ndarray:
    """A head-like phantom in stored CT values (HU + 1024): skull, brain, two ventricles, air; its section shrinks
    towards the top and bottom, so coronal and sagittal views look like a head. For screenshots and benchmarks."""
    z = 2 * i / max(spec.slices - 1, 1) - 1  # -1 … 1 from the first slice to the last
    scale = np.sqrt(max(1 - 0.85 * z * z, 0.05))
    yy, xx = np.mgrid[0 : spec.rows, 0 : spec.cols]
    y = (yy - spec.rows / 2) / (spec.rows * 0.46 * scale)
    x = (xx - spec.cols / 2) / (spec.cols * 0.38 * scale)
    r = np.hypot(x, y)
    hu = np.full(r.shape, -1000.0)
    hu[r < 1.0] = 1300.0  # skull
    brain = r < 0.9
    hu[brain] = 30 + 10 * np.cos(9 * x[brain]) * np.cos(7 * y[brain])  # grey/white texture
    ventricles = (((x - 0.18) / 0.12) ** 2 + (y / 0.35) ** 2 < 1) | (((x + 0.18) / 0.12) ** 2 + (y / 0.35) ** 2 < 1)
    hu[ventricles & brain & (abs(z) < 0.5)] = 5.0
    return (hu + (1024 if spec.modality == "CT" else 1000)).astype(np.int16)


def write_series(folder: str | Path, spec: SeriesSpec, pixels=None, name: str = "IM{index:05d}.dcm") -> list[Path]:
    """Write one series into ``folder``; returns the file paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(series_datasets(spec, pixels)):
        path = folder / name.format(index=i + 1)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_collection(folder: str | Path, patients: int, series_per_patient: int, slices: int,
                     rows: int = 64, cols: int = 64, studies_per_patient: int = 1) -> list[Path]:
    """Several patients/studies/series of small images, laid out ``P###/S#/SE##/IM#####.dcm``."""
    folder = Path(folder)
    paths: list[Path] = []
    modalities = ["CT", "MR"]
    for p in range(patients):
        for s in range(studies_per_patient):
            study_uid = uid("study", p, s)
            for se in range(series_per_patient):
                spec = SeriesSpec(
                    patient_name=f"Synthetic^Patient{p:03d}", patient_id=f"SYN{p:04d}", study_uid=study_uid,
                    study_date=f"2024{1 + (p + s) % 12:02d}{1 + p % 28:02d}", study_description=f"Study {s + 1}",
                    accession=f"ACC{p:04d}{s}", series_number=se + 1, series_description=f"Series {se + 1}",
                    modality=modalities[(p + se) % 2], slices=slices, rows=rows, cols=cols, seed=p,
                )
                spec.series_uid = uid("series", study_uid, se)
                paths += write_series(folder / f"P{p:03d}" / f"S{s}" / f"SE{se:02d}", spec)
    return paths


def replicate(template: list[Path], copies: int, out: str | Path, patients: int = 1) -> list[Path]:
    """``copies`` more series like the ``template`` files (one series), made by replacing UIDs in the bytes.

    Thousands of files a second (pydicom writes a few hundred): for large test sets. Each copy gets new
    study/series/SOP UIDs of the same length, so no element length changes; copy k belongs to patient
    ``k % patients`` (its PatientID's last digits replaced).
    """
    import pydicom

    first = pydicom.dcmread(template[0], stop_before_pixels=True)
    study, series, pid = first.StudyInstanceUID, first.SeriesInstanceUID, first.PatientID
    blobs = []
    for path in template:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        blobs.append((path.name, ds.SOPInstanceUID, path.read_bytes()))
    out = Path(out)
    written = []

    def same_length(value: str, k: int) -> str:
        tail = f"{k + 100000:06d}"
        return value[: -len(tail)] + tail

    for k in range(copies):
        folder = out / f"copy{k:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        p = k % patients
        new_pid = pid[: -4] + f"{p:04d}"
        new_study = same_length(study, p)
        new_series = same_length(series, k)
        for name, sop, data in blobs:
            data = (data.replace(sop.encode(), same_length(sop, k).encode())
                    .replace(series.encode(), new_series.encode())
                    .replace(study.encode(), new_study.encode())
                    .replace(pid.encode(), new_pid.encode()))
            path = folder / name
            path.write_bytes(data)
            written.append(path)
    return written


def write_4d(folder: str | Path, spec: SeriesSpec, volumes: list[dict], name: str = "IM{index:05d}.dcm") -> list[Path]:
    """One series holding several volumes on the same slice positions (a time series, echoes, diffusion…).

    ``volumes[v]`` gives the attributes that set volume v apart (e.g. ``{"TemporalPositionIdentifier": 2}`` or
    ``{"DiffusionBValue": 1000.0, "DiffusionGradientOrientation": [1, 0, 0]}``); its voxels are the phantom
    plus 100 × v, so that volume order can be checked."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    index = 0
    for v, attributes in enumerate(volumes):
        def pixels(i: int, s: SeriesSpec, v: int = v) -> np.ndarray:
            return default_pixels(i, s) + 100 * v

        for ds in series_datasets(spec, pixels):
            index += 1
            ds.SOPInstanceUID = uid("sop4d", ds.SeriesInstanceUID, v, ds.InstanceNumber)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = index
            for keyword, value in attributes.items():
                setattr(ds, keyword, value)
            path = folder / name.format(index=index)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def write_enhanced(path: str | Path, spec: SeriesSpec, time_points: int = 1, echoes: Sequence[float] = ()) -> Path:
    """One enhanced MR multi-frame file: ``spec.slices`` frames per time point, geometry in functional groups
    (shared: spacing, orientation, rescale; per frame: position and frame content with dimension indices).

    ``echoes``: EffectiveEchoTime (ms) of each echo, written in the per-frame MR Echo functional group only (the
    Dimension Index Sequence does not declare it, as many vendors write it), the echoes of one position after
    each other; frame values are the phantom + 100 × time point + 1000 × echo index."""
    from pydicom.sequence import Sequence as Seq

    single = series_datasets(spec)
    first = single[0]
    ds = Dataset()
    for keyword in ("SpecificCharacterSet", "StudyDate", "SeriesDate", "StudyTime", "SeriesTime", "ContentTime",
                    "AccessionNumber", "ReferringPhysicianName", "StudyDescription", "SeriesDescription",
                    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "BodyPartExamined",
                    "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "SeriesNumber", "FrameOfReferenceUID",
                    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(ds, keyword, first.get(keyword))
    ds.Modality = "MR"
    ds.SOPClassUID = ENHANCED_MR_STORAGE
    ds.SOPInstanceUID = uid("enhanced", first.SeriesInstanceUID)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentDate = spec.study_date
    ds.AcquisitionDateTime = spec.study_date + spec.study_time
    ds.NumberOfFrames = spec.slices * time_points * max(1, len(echoes))
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = list(spec.pixel_spacing)
    measures.SliceThickness = abs(spec.slice_spacing)
    shared.PixelMeasuresSequence = Seq([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [float(v) for v in spec.orientation]
    shared.PlaneOrientationSequence = Seq([orientation])
    transform = Dataset()
    transform.RescaleIntercept = 0
    transform.RescaleSlope = 1
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = Seq([transform])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    per_frame = []
    pixels = []
    for t, k, e in [(t, k, e) for t in range(time_points) for k in range(len(single))
                    for e in range(max(1, len(echoes)))]:
        single_ds = single[k]
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = list(single_ds.ImagePositionPatient)
        item.PlanePositionSequence = Seq([position])
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.TemporalPositionIndex = t + 1
        content.DimensionIndexValues = [1, t + 1, k + 1]
        item.FrameContentSequence = Seq([content])
        if echoes:
            echo = Dataset()
            echo.EffectiveEchoTime = float(echoes[e])
            item.MREchoSequence = Seq([echo])
        per_frame.append(item)
        pixels.append(default_pixels(k, spec) + 100 * t + 1000 * e)
    ds.PerFrameFunctionalGroupsSequence = Seq(per_frame)
    dimension_uid = uid("dimensions", first.SeriesInstanceUID)
    ds.DimensionOrganizationSequence = Seq([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dimension_uid
    index = []
    for pointer in (0x00209056, 0x00209128, 0x00209057):  # StackID, TemporalPositionIndex, InStackPositionNumber
        item = Dataset()
        item.DimensionOrganizationUID = dimension_uid
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
        index.append(item)
    ds.DimensionIndexSequence = Seq(index)
    ds.PixelData = np.stack(pixels).astype("<i2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mosaic(folder: str | Path, spec: SeriesSpec, volumes: int = 1, bvalues: Sequence[float] = (),
                 gradients: Sequence[Sequence[float]] = (), csa: bool = True, descending: bool = False) -> list[Path]:
    """A series of Siemens mosaics: ``volumes`` files, each holding ``spec.slices`` tiles of ``spec.rows`` ×
    ``spec.cols`` side by side in a square grid of ceil(√slices) tiles a side (blank tiles at the end), as Siemens
    stores fMRI and DTI. Tile k lies at ``spec.origin`` + k × ``spec.slice_spacing`` along row × column; the file's
    ImagePositionPatient is that of the whole mosaic as one image (the first tile's minus half the size difference),
    the CSA image header (with ``csa``) gives NumberOfImagesInMosaic, SliceNormalVector and, per volume,
    B_value / DiffusionGradientDirection. Tile values: the phantom of slice k + 100 × volume. ``descending``: the
    tiles run against row × column (SliceNormalVector = -(row × column)), as Siemens writes some slice orders."""
    import math

    from .csa import encode_csa

    across = math.ceil(math.sqrt(spec.slices))
    rows, cols = spec.rows * across, spec.cols * across
    row, col = np.array(spec.orientation[:3]), np.array(spec.orientation[3:])
    normal = np.cross(row, col) * (-1 if descending else 1)
    dy, dx = spec.pixel_spacing
    corner = np.array(spec.origin) - row * dx * (cols - spec.cols) / 2 - col * dy * (rows - spec.rows) / 2
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in range(volumes):
        ds = series_datasets(replace(spec, slices=1, modality="MR"))[0]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.SOPInstanceUID = uid("mosaic", ds.SeriesInstanceUID, v)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = ds.AcquisitionNumber = v + 1
        ds.ImagePositionPatient = [round(float(p), 6) for p in corner]
        ds.Rows, ds.Columns = rows, cols
        ds.SpacingBetweenSlices = spec.slice_spacing
        picture = np.zeros((rows, cols), dtype=np.int16)
        for k in range(spec.slices):
            j0, i0 = (k // across) * spec.rows, (k % across) * spec.cols
            picture[j0:j0 + spec.rows, i0:i0 + spec.cols] = default_pixels(k, spec) + 100 * v
        ds.PixelData = picture.astype("<i2").tobytes()
        if csa:
            tags: dict[str, tuple[str, list[Any]]] = {"NumberOfImagesInMosaic": ("US", [spec.slices]),
                                                      "SliceNormalVector": ("FD", [float(x) for x in normal])}
            if bvalues:
                tags["B_value"] = ("IS", [int(bvalues[v])])
            if gradients:
                tags["DiffusionGradientDirection"] = ("FD", [float(x) for x in gradients[v]])
            ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", encode_csa(tags))
        path = folder / f"MOSAIC{v + 1:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
