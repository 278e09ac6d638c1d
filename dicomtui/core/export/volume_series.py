"""A Volume written as a new DICOM series: one single-frame image per slice k, stored into the database like a
received file (and optionally into a folder).

The SOP class follows the modality of the reference series: CT Image Storage for CT, MR Image Storage for MR
(PS3.3 A.3, A.4), Secondary Capture Image Storage for anything else (PS3.3 A.8.1; the Image Plane attributes are
written there too, as 3D Slicer does, so that the geometry survives). The geometry comes from the Volume's affine
((i, j, k) → LPS mm): ImageOrientationPatient from the i and j columns, PixelSpacing (row spacing = |j column|,
column spacing = |i column|), ImagePositionPatient = origin + k × (k column) for each slice, SliceThickness and
SpacingBetweenSlices = the slice step along the normal (PS3.3 C.7.6.2). Values are stored as 16-bit integers with
a RescaleSlope/Intercept chosen by :mod:`.volume_encoding`. The patient, study and frame of reference are those of
the reference series (``like``), or new ones; Series and SOP Instance UIDs are new, under ``uid_root``; the
Common Instance Reference module's ReferencedSeriesSequence (PS3.3 C.12.2) and DerivationDescription name the
source. ``enhanced``: one Legacy Converted Enhanced CT/MR image instead (:mod:`.volume_enhanced`).

A colour volume ([k, j, i, 3] uint8) is written as Secondary Capture Image Storage whatever the reference's
modality (the CT and MR Image IODs allow MONOCHROME1/2 only, PS3.3 C.8.2.1, C.8.3.1): SamplesPerPixel 3,
PhotometricInterpretation RGB, PlanarConfiguration 0, 8 bits, no rescale. Several volumes of one grid (a 4D
sequence) become one series: :mod:`.volume_sequence` says how.
"""

from __future__ import annotations

import copy
import datetime
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import storage
from ..database import DicomDatabase, FileRecord
from ..dicomfile import IMPLEMENTATION_UID, IMPLEMENTATION_VERSION, read_dataset
from ..errors import SelectionError, VolumeWriteError
from ..volume import Volume
from .volume_encoding import RGB, Encoding, choose_encoding, format_ds
from .volume_enhanced import ENHANCED_NAMES, legacy_enhanced
from .volume_sequence import check_colour, volume_attributes, volumes_of

DEFAULT_SERIES_NUMBER = 1001
DEFAULT_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root (pydicom.uid.PYDICOM_ROOT_UID)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SOP_CLASS_NAMES = {CT_IMAGE: "CT Image Storage", MR_IMAGE: "MR Image Storage",
                   SECONDARY_CAPTURE: "Secondary Capture Image Storage", **ENHANCED_NAMES}
_SOP_CLASS_OF_MODALITY = {"CT": CT_IMAGE, "MR": MR_IMAGE}
_ROOT = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.")
MAX_ROOT = 40  # generate_uid fills up to 64 characters: ≥ 24 digits of entropy stay (~80 bits)

# What the new series takes from its reference, by module (PS3.3 C.7.1.1 Patient, C.7.1.3 Patient Study,
# C.7.2.1 General Study, C.7.4.1 Frame of Reference), and per modality (C.8.2.1 CT Image, C.8.3.1 MR Image).
_PATIENT_STUDY = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                  "PatientSize", "PatientWeight", "StudyInstanceUID", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription", "FrameOfReferenceUID",
                  "PositionReferenceIndicator", "PatientPosition", "BodyPartExamined", "Laterality")
_BY_MODALITY = {
    "CT": ("KVP",),
    "MR": ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
           "InversionTime", "EchoTrainLength", "MagneticFieldStrength", "ImagingFrequency", "ImagedNucleus"),
}
# Type 1 attributes of the MR Image module a reference may lack: "RM" research mode, no variant (PS3.3 C.8.3.1)
_MR_DEFAULTS = {"ScanningSequence": "RM", "SequenceVariant": "NONE"}
# Type 2 attributes: present, empty when unknown
_EMPTY_TYPE2 = {CT_IMAGE: ("KVP", "AcquisitionNumber", "PatientPosition"),
                MR_IMAGE: ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength", "PatientPosition",
                           "RepetitionTime")}
# ImageType value 3 (PS3.3 C.8.2.1.1.1 CT: AXIAL or LOCALIZER; C.8.3.1.1.1 MR: required, OTHER when none fits)
_IMAGE_TYPE_3 = {CT_IMAGE: ("AXIAL",), MR_IMAGE: ("OTHER",)}

Progress = Callable[[int, int], None]  # (slices written, slices in all)


@dataclass
class SeriesOptions:
    """What the user chooses about the new series. ``modality`` is used without a reference (CT, MR, else OT as
    Secondary Capture); ``patient_name``/``patient_id``/``study_description`` fill a new patient and study."""

    description: str = ""
    series_number: int = DEFAULT_SERIES_NUMBER
    uid_root: str = DEFAULT_UID_ROOT
    modality: str = ""  # without a reference: this, else the volume's, else OT
    patient_name: str = ""
    patient_id: str = ""
    study_description: str = ""
    source: str = ""  # what the volume was read from, for DerivationDescription ("brain.nii.gz")
    enhanced: bool = False  # one multi-frame Legacy Converted Enhanced CT/MR image instead of one file per slice
    min_free: int = 0  # bytes kept free on the database's disk (the listener's floor, nodes.toml); 0: none


@dataclass
class Reference:
    """The series the new one is derived from: its first instance's header (no pixels) and its instances."""

    series_uid: str
    header: Any  # pydicom Dataset
    instances: list[tuple[str, str]]  # (SOPClassUID, SOPInstanceUID), in instance order


@dataclass
class VolumeSeriesReport:
    """What was written: ``files`` in the folder (when one was asked), ``stored`` files indexed in the database."""

    series_uid: str
    study_uid: str
    sop_class: str
    slices: int  # images in all (volumes × slices per volume)
    encoding: Encoding
    folder: Path | None = None
    volumes: int = 1
    files: list[Path] = field(default_factory=list)
    stored: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    elapsed_s: float = 0.0

    def summary(self) -> str:
        if self.cancelled:
            return "Cancelled: no series was written (the files already written were removed)."
        where = []
        if self.stored:
            where.append(f"{self.stored} stored in the database")
        if self.folder is not None:
            where.append(f"{len(self.files)} written to {self.folder}")
        images = f"{self.slices} images" if self.sop_class not in ENHANCED_NAMES else f"1 image of {self.slices} frames"
        if self.volumes > 1:
            images += f" ({self.volumes} volumes of {self.slices // self.volumes} slices)"
        lines = [f"New series {self.series_uid} ({SOP_CLASS_NAMES[self.sop_class]}, {images}: "
                 f"{', '.join(where) or 'nothing kept'}) in study {self.study_uid}, in {self.elapsed_s:.1f} s.",
                 f"Values: {self.encoding.sentence()}."]
        lines += [f"Warning: {w}" for w in self.warnings]
        lines += [f"Not stored: {p}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"series_uid": self.series_uid, "study_uid": self.study_uid, "sop_class": self.sop_class,
                "slices": self.slices, "volumes": self.volumes, "stored": self.stored,
                "folder": str(self.folder) if self.folder else None,
                "files": [str(f) for f in self.files], "rescale_slope": self.encoding.slope_ds,
                "rescale_intercept": self.encoding.intercept_ds, "exact": self.encoding.exact,
                "max_error": self.encoding.max_error, "warnings": self.warnings, "problems": self.problems,
                "cancelled": self.cancelled}


def reference_series(db: DicomDatabase, series_uid: str) -> Reference:
    """The series ``series_uid`` (a full SeriesInstanceUID) of ``db`` as a reference: its first instance's header
    and every instance's (class, UID). Raises SelectionError when the database has no such series, and
    VolumeWriteError when its first file cannot be read."""
    row = db.find("series", series_uid)
    if row is None:
        raise SelectionError(f"The database {db.root} has no series {series_uid}.")
    files = db.instance_files([("series", row["id"])])
    if not files:
        raise SelectionError(f"The series {series_uid} has no instances in {db.root}.")
    try:
        header = read_dataset(files[0]["path"]).dataset
    except Exception as exc:  # pydicom's InvalidDicomError, OSError…: said in one sentence
        raise VolumeWriteError(f"cannot read {files[0]['path']} of the reference series: {exc}") from exc
    return Reference(series_uid, header, [(f["SOPClassUID"], f["SOPInstanceUID"]) for f in files])


def slice_geometry(affine: np.ndarray, slices: int) -> tuple[list[float], list[float], np.ndarray, float, list[str]]:
    """The Image Plane attributes of a volume's slices (PS3.3 C.7.6.2) from its affine ((i, j, k) → LPS mm):
    ImageOrientationPatient (row then column direction cosines), PixelSpacing (between rows, between columns, mm),
    ImagePositionPatient per slice ([k, 3] mm), the slice spacing along the normal (mm), and warnings. Raises
    VolumeWriteError when the i and j axes are not perpendicular (a sheared grid no DICOM image plane describes)."""
    col_i, col_j, col_k = (np.asarray(affine[:3, a], dtype=float) for a in range(3))
    size_i, size_j = float(np.linalg.norm(col_i)), float(np.linalg.norm(col_j))
    if size_i == 0 or size_j == 0:
        raise VolumeWriteError("the volume's affine has a zero pixel spacing; it cannot be written as images.")
    row, column = col_i / size_i, col_j / size_j
    if abs(float(row @ column)) > 1e-4:
        raise VolumeWriteError(f"the volume's rows and columns meet at {np.degrees(np.arccos(row @ column)):.2f}°, "
                               "not 90°: DICOM images have perpendicular rows and columns (resample it first).")
    normal = np.cross(row, column)
    step = float(col_k @ normal)
    if slices > 1 and abs(step) < 1e-6:
        raise VolumeWriteError("the volume's slices lie in one plane (no spacing along the normal of their rows and "
                               "columns): its affine cannot place them as DICOM images.")
    warnings = []
    size_k = float(np.linalg.norm(col_k))
    if slices > 1 and size_k > 0 and abs(step) < size_k * (1 - 1e-6):
        angle = float(np.degrees(np.arccos(min(1.0, abs(step) / size_k))))
        warnings.append(f"the slices are tilted by {angle:.2f}° from the normal of their planes (a gantry tilt): "
                        "each slice keeps its own ImagePositionPatient")
    positions = affine[:3, 3][None, :] + np.arange(slices)[:, None] * col_k[None, :]
    return [*row.tolist(), *column.tolist()], [size_j, size_i], positions, abs(step), warnings


def new_uid(root: str) -> str:
    """A new UID under ``root`` (pydicom's generate_uid: the root, then random digits up to 64 characters)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=root))


def check_uid_root(root: str) -> str:
    """``root`` as a UID prefix ending in "." (added when missing). Raises VolumeWriteError when it is not digits
    and dots (PS3.5 9.1: no leading zero in a component) or longer than MAX_ROOT characters."""
    root = root if root.endswith(".") else root + "."
    if not _ROOT.fullmatch(root) or len(root) > MAX_ROOT:
        raise VolumeWriteError(f"{root!r} is not a UID root: digits and dots, no component with a leading zero, at "
                               f"most {MAX_ROOT} characters (for example 1.2.826.0.1.3680043.8.498.).")
    return root


@dataclass
class _Slices:
    """The new series before its slices: the attributes they share, and what differs per slice k."""

    base: Any  # pydicom Dataset without SOPInstanceUID, InstanceNumber, position and pixels
    shared: dict[str, Any]  # sequences every slice holds (the same objects)
    positions: np.ndarray  # [k, 3] LPS mm
    root: str
    volumes: list[Volume]  # one, or a 4D sequence of one grid
    encoding: Encoding
    per_volume: list[dict[str, Any]]  # what each volume's images carry (volume_sequence.volume_attributes)

    def __len__(self) -> int:
        return len(self.positions) * len(self.volumes)

    def dataset(self, n: int) -> Any:
        """Image n (slice k of volume t, n = t × slices + k) as instance n + 1, its Pixel Data encoded."""
        t, k = divmod(n, len(self.positions))
        ds = copy.deepcopy(self.base)
        for keyword, sequence in self.shared.items():  # the same items in every slice: shared, not copied
            setattr(ds, keyword, sequence)
        for keyword, value in self.per_volume[t].items():
            setattr(ds, keyword, value)
        ds.SOPInstanceUID = new_uid(self.root)
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = [format_ds(float(v)) for v in self.positions[k]]
        encoded = self.encoding.encode(self.volumes[t].array[k])
        ds.PixelData = encoded.astype(self.encoding.dtype.newbyteorder("<")).tobytes()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds


def series_datasets(volume: Volume | list[Volume], options: SeriesOptions, reference: Reference | None = None,
                    encoding: Encoding | None = None, warnings: list[str] | None = None) -> list[Any]:
    """The data sets of the new series (pydicom Datasets with file meta, Pixel Data set), slice k as instance
    k + 1 (volume t's after the t volumes before it). Raises VolumeWriteError (sheared grid, NaN values, a bad UID
    root, volumes of different grids)."""
    slices = _prepare(volume, options, reference, encoding, warnings)
    return [slices.dataset(k) for k in range(len(slices))]


def _prepare(volume: Volume | list[Volume], options: SeriesOptions, reference: Reference | None = None,
             encoding: Encoding | None = None, warnings: list[str] | None = None) -> _Slices:
    """Everything checked and shared, before any slice is encoded (so a refusal comes before any file)."""
    volumes = volumes_of(volume)
    volume = volumes[0]
    if volume.is_rgb:
        check_colour(volume)
    elif volume.array.ndim != 3:
        raise VolumeWriteError(f"a volume of shape {volume.array.shape} is not one [k, j, i] grey volume.")
    if options.enhanced and (volume.is_rgb or len(volumes) > 1):
        raise VolumeWriteError("--enhanced writes one grey volume (Legacy Converted Enhanced CT/MR is MONOCHROME, "
                               "one frame per position); leave it out for a colour volume or a sequence.")
    encoding = encoding or _encoding(volumes)
    root = check_uid_root(options.uid_root)
    iop, spacing, positions, step, geometry_warnings = slice_geometry(volume.affine, volume.array.shape[0])
    if warnings is not None:
        warnings += geometry_warnings
    base, _sop_class = _base_dataset(volume, options, reference, encoding, root)
    base.ImageOrientationPatient = [format_ds(v) for v in iop]
    base.PixelSpacing = [format_ds(v) for v in spacing]
    base.SliceThickness = format_ds(step)
    if volume.array.shape[0] > 1:
        base.SpacingBetweenSlices = format_ds(step)
    base.PatientOrientation = [patient_orientation(iop[:3]), patient_orientation(iop[3:])]
    shared = _reference_sequences(reference) if reference is not None else {}
    return _Slices(base, shared, positions, root, volumes, encoding, volume_attributes(volumes))


def _encoding(volumes: list[Volume]) -> Encoding:
    """How the values are stored: RGB samples as they are, else one rescale for every volume of the series."""
    if volumes[0].is_rgb:
        return RGB
    return choose_encoding(volumes[0].array if len(volumes) == 1 else np.stack([v.array for v in volumes]))


def _base_dataset(volume: Volume, options: SeriesOptions, reference: Reference | None, encoding: Encoding,
                  root: str) -> tuple[Any, str]:
    """Every attribute the slices share; the SOP class."""
    from pydicom.dataset import Dataset

    ref = reference.header if reference is not None else None
    modality = str(ref.get("Modality", "") if ref is not None else options.modality or volume.modality or "OT").upper()
    sop_class = SECONDARY_CAPTURE if volume.is_rgb else _SOP_CLASS_OF_MODALITY.get(modality, SECONDARY_CAPTURE)
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # copied names are decoded by pydicom and written again as UTF-8
    ds.SOPClassUID = sop_class
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    if ref is not None:
        for keyword in _PATIENT_STUDY + _BY_MODALITY.get(modality, ()):
            if keyword in ref:
                ds[keyword] = copy.deepcopy(ref[keyword])
    else:
        _new_patient_study(ds, options, root, now)
    for keyword, value in (_MR_DEFAULTS.items() if sop_class == MR_IMAGE else ()):
        if not ds.get(keyword):
            setattr(ds, keyword, value)
    for keyword in _EMPTY_TYPE2.get(sop_class, ()):
        if keyword not in ds:
            setattr(ds, keyword, None)
    if "BodyPartExamined" not in ds and "Laterality" not in ds:
        ds.Laterality = None  # 2C "if the body part is paired": unknown, so present and empty (PS3.3 C.7.3.1)
    ds.Modality = modality or "OT"
    ds.SeriesInstanceUID = new_uid(root)
    ds.SeriesNumber = options.series_number
    ds.SeriesDescription = options.description or f"{volume.name or 'volume'} (derived)"[:64]
    ds.SeriesDate, ds.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ContentDate, ds.ContentTime = ds.SeriesDate, ds.SeriesTime
    ds.Manufacturer = "dicomtui"
    if "FrameOfReferenceUID" not in ds:
        ds.FrameOfReferenceUID = new_uid(root)
    if "PositionReferenceIndicator" not in ds:
        ds.PositionReferenceIndicator = None
    ds.ImageType = ["DERIVED", "SECONDARY", *_IMAGE_TYPE_3.get(sop_class, ())]
    source = options.source or (f"series {reference.series_uid}" if reference is not None else "a volume")
    ds.DerivationDescription = f"dicomtui: {volume.name or 'volume'} from {source}"[:1024]
    if sop_class == SECONDARY_CAPTURE:
        ds.ConversionType = "WSD"  # workstation (PS3.3 C.8.6.1)
    ds.Rows, ds.Columns = volume.array.shape[1], volume.array.shape[2]
    if encoding.colour:  # PS3.3 C.7.6.3: colour-by-pixel R, G, B bytes
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        _file_meta(ds, sop_class)
        return ds, sop_class
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = encoding.pixel_representation
    ds.RescaleIntercept, ds.RescaleSlope = encoding.intercept_ds, encoding.slope_ds
    if sop_class != CT_IMAGE:
        ds.RescaleType = "US"  # unspecified (PS3.3 C.11.1.1.2); CT's output is Hounsfield units by definition
    lo, hi = (float(volume.array.min()), float(volume.array.max())) if volume.array.size else (0.0, 1.0)
    ds.WindowCenter, ds.WindowWidth = format_ds((lo + hi) / 2), format_ds(max(hi - lo, 1.0))
    _file_meta(ds, sop_class)
    return ds, sop_class


def _file_meta(ds: Any, sop_class: str) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")  # Explicit VR Little Endian
    ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION


def _new_patient_study(ds: Any, options: SeriesOptions, root: str, now: datetime.datetime) -> None:
    """A new patient and study (PS3.3 C.7.1.1, C.7.2.1: the Type 2 attributes present, empty when not given)."""
    ds.PatientName = options.patient_name or "Anonymous"
    ds.PatientID = options.patient_id or f"DICOMTUI-{new_uid(root)[-8:]}"
    ds.PatientBirthDate = None
    ds.PatientSex = None
    ds.StudyInstanceUID = new_uid(root)
    ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ReferringPhysicianName = None
    ds.StudyID = "1"
    ds.AccessionNumber = None
    if options.study_description:
        ds.StudyDescription = options.study_description


def _reference_sequences(reference: Reference) -> dict[str, Any]:
    """What points at the source series: SourceImageSequence (General Image module, PS3.3 C.7.6.1: the images this
    one was derived from, every instance of the reference) and the Common Instance Reference module's
    ReferencedSeriesSequence (PS3.3 C.12.2; required once an instance references others, which it now does)."""
    from pydicom.dataset import Dataset

    def instance(sop_class: str, sop_uid: str) -> Dataset:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_uid
        return ref

    item = Dataset()
    item.SeriesInstanceUID = reference.series_uid
    item.ReferencedInstanceSequence = [instance(*pair) for pair in reference.instances]
    return {"SourceImageSequence": [instance(*pair) for pair in reference.instances],
            "ReferencedSeriesSequence": [item]}


def patient_orientation(direction: list[float] | np.ndarray) -> str:
    """The PatientOrientation letters of a direction in LPS (PS3.3 C.7.6.1.1.1): L/R, P/A, H/F, the dominant first,
    components under 1e-4 left out (a row along +x is "L"; an oblique one "LP", …)."""
    letters = [("L", "R"), ("P", "A"), ("H", "F")]
    order = sorted(range(3), key=lambda a: -abs(float(direction[a])))
    return "".join(letters[a][0 if direction[a] > 0 else 1] for a in order if abs(float(direction[a])) > 1e-4)


def write_volume_series(volume: Volume | list[Volume], options: SeriesOptions, *, db: DicomDatabase | None = None,
                        like: str | None = None, folder: str | Path | None = None,
                        progress: Progress | None = None,
                        cancel: threading.Event | None = None) -> VolumeSeriesReport:
    """Write ``volume`` as a new series: into ``db`` (stored as a copied file is: written, fsync'd, renamed into
    ``dicom/…`` by storage.copy_batch, indexed from FileRecord.from_file) and/or into ``folder`` (``IM0001.dcm``…,
    never over an existing file). ``like``: the SeriesInstanceUID in ``db`` whose patient, study and frame of
    reference the new series joins. ``volume``: one volume, or several of one grid written as one series
    (:mod:`.volume_sequence`). Raises VolumeWriteError / SelectionError (see :func:`series_datasets`,
    :func:`reference_series`), and VolumeWriteError when a file of ``folder`` would be overwritten."""
    from pydicom import dcmwrite

    if db is None and folder is None:
        raise VolumeWriteError("a new series needs a database or a folder to be written to.")
    start = time.perf_counter()
    reference = reference_series(db, like) if like and db is not None else None
    if like and db is None:
        raise VolumeWriteError("--like needs the database that holds the reference series.")
    encoding = _encoding(volumes_of(volume))
    warnings: list[str] = []
    slices = _prepare(volume, options, reference, encoding, warnings)
    base = slices.base
    report = VolumeSeriesReport(str(base.SeriesInstanceUID), str(base.StudyInstanceUID), str(base.SOPClassUID),
                                len(slices), encoding, Path(folder) if folder is not None else None,
                                warnings=warnings, volumes=len(slices.volumes))
    names = [f"IM{k + 1:04d}.dcm" for k in range(1 if options.enhanced else len(slices))]
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="dicomtui-series-"))
    try:
        taken = [target / n for n in names if (target / n).exists()]
        if folder is not None and taken:
            raise VolumeWriteError(f"{taken[0]} exists; choose an empty folder (nothing was written).")
        target.mkdir(parents=True, exist_ok=True)
        written: list[tuple[Path, str]] = []  # (path, SOPInstanceUID)
        if options.enhanced and not _write_enhanced(slices, reference, target / names[0], written, report, progress,
                                                    cancel):
            return report
        for k, name in enumerate(names if not options.enhanced else []):  # one slice encoded at a time
            if cancel is not None and cancel.is_set():
                for path, _uid in written:
                    path.unlink(missing_ok=True)
                report.cancelled = True
                return report
            ds = slices.dataset(k)
            dcmwrite(target / name, ds, enforce_file_format=True)
            written.append((target / name, str(ds.SOPInstanceUID)))
            if progress is not None:
                progress(k + 1, len(slices))
        if folder is not None:
            report.files = [path for path, _uid in written]
        if db is not None:
            _store(db, written, report, options.min_free)
    finally:
        if folder is None:
            shutil.rmtree(target, ignore_errors=True)
    report.elapsed_s = time.perf_counter() - start
    return report


def _write_enhanced(slices: _Slices, reference: Reference | None, path: Path, written: list[tuple[Path, str]],
                    report: VolumeSeriesReport, progress: Progress | None, cancel: threading.Event | None) -> bool:
    """The series as one multi-frame file at ``path`` (:mod:`.volume_enhanced`); False when cancelled."""
    from pydicom import dcmwrite

    datasets = []
    for k in range(len(slices)):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            return False
        datasets.append(slices.dataset(k))
        if progress is not None:
            progress(k + 1, len(slices))
    enhanced = legacy_enhanced(datasets, new_uid(slices.root), reference)
    dcmwrite(path, enhanced, enforce_file_format=True)
    written.append((path, str(enhanced.SOPInstanceUID)))
    report.sop_class = str(enhanced.SOPClassUID)
    return True


def _store(db: DicomDatabase, written: list[tuple[Path, str]], report: VolumeSeriesReport, min_free: int) -> None:
    report.stored = store_written(db, written, report.study_uid, report.series_uid, report.problems, min_free)


def store_written(db: DicomDatabase, written: list[tuple[Path, str]], study_uid: str, series_uid: str,
                  problems: list[str], min_free: int = 0) -> int:
    """Copy written (path, SOPInstanceUID) files into the database's storage (the import's copy path) and index
    them; how many were stored (a file that cannot be copied is a sentence in ``problems``). Nothing is stored
    when the files would leave less than ``min_free`` bytes free (:func:`.storage.floor_problem`; one sentence
    naming the floor): a new series is stored whole or not at all."""
    need = sum(path.stat().st_size for path, _uid in written)
    if problem := storage.floor_problem(db.root, min_free, need):
        problems.append(f"nothing stored in the database: {problem}; make room and write the series again")
        return 0
    pairs = [(str(path), storage.relative_path(study_uid, series_uid, sop_uid)) for path, sop_uid in written]
    records = []
    for (source, rel), error in zip(pairs, storage.copy_batch(db.root, pairs, min_free=min_free), strict=True):
        if error is not None:
            problems.append(f"{Path(source).name}: cannot copy into the database ({error.strerror or error})")
            continue
        records.append(FileRecord.from_file(db.root / rel, root=db.root))
    db.add_files(records)
    return len(records)
