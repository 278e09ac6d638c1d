"""Generated RT objects and PET headers (no real patients): RTSTRUCT with chosen contours over a generated image
series, RT Dose grids, PET series with known SUV inputs. Written with pydicom; UIDs from ``synth.uid``.

Contours are made in patient space (LPS mm) — spheres cut by the image slices, shells (an outer contour and an
inner one on the same slice: a hole), ROIs on a subset of slices — so the same structures can be rasterised by
dicomtui and by plastimatch and compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as Seq
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

from .synth import SeriesSpec, series_datasets, uid

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired), as RTReferencedStudySequence uses


@dataclass
class Roi:
    """One ROI to write: its name, display colour, RTROIInterpretedType, and contours (each (N, 3) LPS mm) with
    their ContourGeometricType (CLOSED_PLANAR, OPEN_PLANAR, POINT…)."""

    name: str
    contours: list[np.ndarray]
    color: tuple[int, int, int] = (255, 0, 0)
    kind: str = "ORGAN"
    geometric_type: str = "CLOSED_PLANAR"
    extra: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (geometric type, points) added as is


def circle(center: tuple[float, float], radius: float, z: float, points: int = 90) -> np.ndarray:
    """A closed circle in the axial plane ``z``: (points, 3) LPS mm, counter-clockwise, not repeating its first
    point (PS3.3 C.8.8.6.1: the last point connects to the first)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.c_[center[0] + radius * np.cos(t), center[1] + radius * np.sin(t), np.full(points, z)]


def sphere(center: tuple[float, float, float], radius: float, zs: list[float], points: int = 90) -> list[np.ndarray]:
    """The axial sections of a sphere at the slice positions ``zs`` (those that cut it)."""
    out = []
    for z in zs:
        d = z - center[2]
        if abs(d) < radius:
            out.append(circle(center[:2], float(np.sqrt(radius * radius - d * d)), z, points))
    return out


def shell(center: tuple[float, float, float], outer: float, inner: float, zs: list[float]) -> list[np.ndarray]:
    """A hollow sphere: per slice the outer section and, where it cuts the inner sphere, the inner one (a hole)."""
    return sphere(center, outer, zs) + sphere(center, inner, zs)


def slice_positions(ct: list[Dataset]) -> list[float]:
    """The z (LPS mm) of each axial image of ``ct``."""
    return [float(ds.ImagePositionPatient[2]) for ds in ct]


def rtstruct_dataset(ct: list[Dataset], rois: list[Roi], *, series_number: int = 90,
                     label: str = "Synthetic RTSTRUCT") -> Dataset:
    """An RT Structure Set (PS3.3 A.19) over the image series ``ct``: one StructureSetROI, ROIContour and
    RTROIObservations item per ROI; each contour references the image it lies on (by z) when there is one."""
    first = ct[0]
    series_uid = uid("rtstruct-series", first.SeriesInstanceUID, series_number)
    ds = _common(first, RT_STRUCTURE_SET_STORAGE, uid("rtstruct", series_uid), series_uid, series_number,
                 "RTSTRUCT", label)
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate, ds.StructureSetTime = first.StudyDate, first.StudyTime
    images = {round(float(c.ImagePositionPatient[2]), 3): c for c in ct}

    def image_ref(c: Dataset) -> Dataset:
        item = Dataset()
        item.ReferencedSOPClassUID = c.SOPClassUID
        item.ReferencedSOPInstanceUID = c.SOPInstanceUID
        return item

    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = Seq([image_ref(c) for c in ct])
    study = Dataset()
    study.ReferencedSOPClassUID = _STUDY_COMPONENT
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = Seq([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = Seq([study])
    ds.ReferencedFrameOfReferenceSequence = Seq([frame])
    structure, contours, observations = [], [], []
    for number, roi in enumerate(rois, 1):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "AUTOMATIC"
        structure.append(item)
        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = list(roi.color)
        roi_contour.ReferencedROINumber = number
        items = []
        for kind, points in [(roi.geometric_type, p) for p in roi.contours] + roi.extra:
            contour = Dataset()
            image = images.get(round(float(points[0, 2]), 3))
            if image is not None:
                contour.ContourImageSequence = Seq([image_ref(image)])
            contour.ContourGeometricType = kind
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [round(float(v), 4) for v in np.asarray(points).ravel()]
            items.append(contour)
        roi_contour.ContourSequence = Seq(items)
        contours.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = roi.kind
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = Seq(structure)
    ds.ROIContourSequence = Seq(contours)
    ds.RTROIObservationsSequence = Seq(observations)
    return ds


def rtdose_dataset(ct: list[Dataset], dose_gy: np.ndarray, origin: tuple[float, float, float],
                   spacing: tuple[float, float], offsets: list[float], *, scaling: float = 1e-4,
                   units: str = "GY", absolute: bool = False, series_number: int = 91,
                   structure_set: Dataset | None = None) -> Dataset:
    """An RT Dose (PS3.3 A.18) in the frame of reference of ``ct``: ``dose_gy`` [k, j, i] stored as uint32
    with DoseGridScaling ``scaling`` (Gy per stored unit), frames at ``origin`` + offset along the normal
    (axial); GridFrameOffsetVector relative (first 0) or, with ``absolute``, the frames' z positions."""
    first = ct[0]
    series_uid = uid("rtdose-series", first.SeriesInstanceUID, series_number)
    ds = _common(first, RT_DOSE_STORAGE, uid("rtdose", series_uid), series_uid, series_number, "RTDOSE",
                 "Synthetic dose")
    frames, rows, cols = dose_gy.shape
    ds.ImagePositionPatient = [float(v) for v in origin]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.SliceThickness = ""
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x3004000C
    ds.GridFrameOffsetVector = [float(origin[2] + o) if absolute else float(o) for o in offsets]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.DoseGridScaling = scaling
    plan = Dataset()
    plan.ReferencedSOPClassUID = RT_PLAN_STORAGE
    plan.ReferencedSOPInstanceUID = uid("rtplan", first.SeriesInstanceUID)
    ds.ReferencedRTPlanSequence = Seq([plan])
    if structure_set is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RT_STRUCTURE_SET_STORAGE
        ref.ReferencedSOPInstanceUID = structure_set.SOPInstanceUID
        ds.ReferencedStructureSetSequence = Seq([ref])
    ds.PixelData = np.round(dose_gy / scaling).astype("<u4").tobytes()
    return ds


@dataclass
class PetSpec:
    """The SUV inputs of a generated PET series (PS3.3 C.8.9.1, C.8.9.2, C.7.1.3): what the QIBA SUV pseudocode
    reads. Times are DICOM TM/DT text; None leaves the attribute out."""

    weight_kg: float | None = 75.0
    size_m: float | None = 1.75
    sex: str = "M"
    total_dose_bq: float | None = 370e6
    half_life_s: float | None = 6586.2
    start_time: str | None = "090000"  # RadiopharmaceuticalStartTime
    start_datetime: str | None = None  # RadiopharmaceuticalStartDateTime
    series_date: str = "20240115"
    series_time: str = "100000"
    acquisition_times: list[str] | None = None  # per image; default: the series time
    decay_correction: str = "START"
    units: str = "BQML"
    corrected: tuple[str, ...] = ("ATTN", "DECY")
    ge_scan_datetime: str | None = None  # GE private (0009,100D), creator GEMS_PETD_01


def pet_datasets(spec: SeriesSpec, pet: PetSpec) -> list[Dataset]:
    """A PET image series (``spec``'s geometry, Modality PT, PET Image Storage) carrying ``pet``'s SUV inputs;
    stored values are Bq/ml with RescaleSlope 1."""
    out = []
    for i, ds in enumerate(series_datasets(spec)):
        ds.Modality = "PT"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(PET_IMAGE_STORAGE)
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.SeriesDate, ds.SeriesTime = pet.series_date, pet.series_time
        times = pet.acquisition_times or [pet.series_time]
        ds.AcquisitionDate, ds.AcquisitionTime = pet.series_date, times[min(i, len(times) - 1)]
        ds.Units = pet.units
        ds.DecayCorrection = pet.decay_correction
        ds.CorrectedImage = list(pet.corrected)
        ds.PatientSex = pet.sex
        _set(ds, "PatientWeight", pet.weight_kg)
        _set(ds, "PatientSize", pet.size_m)
        drug = Dataset()
        drug.Radiopharmaceutical = "Fluorodeoxyglucose"
        _set(drug, "RadionuclideTotalDose", pet.total_dose_bq)
        _set(drug, "RadionuclideHalfLife", pet.half_life_s)
        _set(drug, "RadiopharmaceuticalStartTime", pet.start_time)
        _set(drug, "RadiopharmaceuticalStartDateTime", pet.start_datetime)
        ds.RadiopharmaceuticalInformationSequence = Seq([drug])
        if pet.ge_scan_datetime is not None:
            block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
            block.add_new(0x0D, "DT", pet.ge_scan_datetime)
        out.append(ds)
    return out


def write_datasets(folder: str | Path, datasets: list[Dataset], name: str = "IM{index:05d}.dcm") -> list[Path]:
    """Save ``datasets`` into ``folder`` (file meta filled when missing); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate(datasets, 1):
        if not getattr(ds, "file_meta", None):
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / name.format(index=n)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _common(first: Dataset, sop_class: str, sop_uid: str, series_uid: str, series_number: int, modality: str,
            description: str) -> Dataset:
    """Patient, study, series, frame of reference and SOP Common attributes of a new object beside ``first``."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    for keyword in ("StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
                    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
                    "FrameOfReferenceUID"):
        setattr(ds, keyword, getattr(first, keyword))
    ds.SeriesDate, ds.SeriesTime = first.StudyDate, first.StudyTime
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = 1
    ds.Manufacturer = "dicomtui synth"
    ds.OperatorsName = ""
    return ds


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    if value is not None:
        setattr(ds, keyword, value)
