"""The patcher's rules that fix a data set in place: invalid UIDs and dates, missing identifiers, the file meta
header, the spacing of slices and retired or private transfer syntaxes. (Splitting fake multi-frame files, which
makes several data sets of one, is :mod:`dicomtui.core.patcher_split`.)

Each rule is a small class with the name the user types and sees (after Slicer's DICOMPatcher rules:
GenerateMissingIDs, FixPrivateMediaStorageSOPClassUID, AddMissingSliceSpacingToMultiframe); every change it
makes is a sentence in the report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from .examine.geometry import orientation, slice_normal, vector
from .patcher_base import (
    PatchContext,
    PatchFile,
    SimpleRule,
    decode_all,
    derived_uid,
    encoding_mismatch,
    set_sop_instance_uid,
)
from .tags import uid_problem

# UIDs that name a definition (a SOP class, a transfer syntax, a coding scheme) are never replaced: a new one
# would name nothing. Only instance UIDs (studies, series, instances, frames of reference…) are.
_DEFINITION_UIDS = ("ClassUID", "TransferSyntaxUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID",
                    "PrivateInformationCreatorUID")
_DATE_SEPARATORS = ".-/ "  # 2020.01.02 (ACR-NEMA), 2020-01-02 (ISO 8601), 2020/01/02


def _text_of(elem: DataElement | RawDataElement) -> str:
    """An element's value as the text written in the file (values joined by backslashes), without padding."""
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip("\x00 ")
    return "\\".join(str(v).strip("\x00 ") for v in value)


def _elements_of_vr(ds: Dataset, vr: str, path: str = "") -> list[tuple[Dataset, Any, str]]:
    """(data set, tag, keyword path) of every element of ``vr`` in ``ds`` and its sequences, found without
    converting the other elements (their raw values stay as read)."""
    found = []
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if raw is None:
            continue
        elem_vr = raw.VR or _dictionary_vr(tag)
        if elem_vr == "SQ":
            for index, item in enumerate(ds[tag].value):
                found += _elements_of_vr(item, vr, f"{path}{ds[tag].keyword}[{index}].")
        elif elem_vr == vr:
            found.append((ds, tag, path))
    return found


def _dictionary_vr(tag: Any) -> str | None:
    """The VR the data dictionary gives ``tag`` (implicit VR files do not say), None for unknown tags."""
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _keyword(ds: Dataset, tag: Any) -> str:
    return ds[tag].keyword or str(ds[tag].tag)


class InvalidUIDs(SimpleRule):
    """UIDs with letters, leading zeros in a component, empty components or more than 64 characters (PS3.5 §9.1)
    become new UIDs, derived from the old one: every file naming it (references in sequences included) gets the
    same new UID."""

    name = "uids"
    title = "replace invalid UIDs (letters, leading zeros, > 64 characters)"

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        changes = []
        sources = [ds] + ([ds.file_meta] if getattr(ds, "file_meta", None) is not None else [])
        for source in sources:
            for owner, tag, path in _elements_of_vr(source, "UI"):
                old = _text_of(owner.get_item(tag))
                problem = uid_problem(old) if old else ""
                keyword = _keyword(owner, tag) if problem else ""
                if not problem or keyword.endswith(_DEFINITION_UIDS):
                    continue
                new = derived_uid("uid", old)
                owner[tag].value = new
                changes.append(f"{path}{keyword} {old!r} is not a valid UID (PS3.5 9.1: {problem}): replaced by {new}")
        return changes


def normal_date(text: str) -> str | None:
    """``text`` as a DA value (YYYYMMDD, PS3.5 §6.2) when it is a real date written with separators or padding
    (``2020.01.02``, ``2020-01-02``, ``20200102 ``), else None."""
    digits = text.strip()
    for separator in _DATE_SEPARATORS:
        digits = digits.replace(separator, "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return digits


class InvalidDates(SimpleRule):
    """Dates (VR DA, in sequences too) written with separators or padding become YYYYMMDD; a date that is not
    one (``20201301``, ``yesterday``) loses its value (the attribute stays, empty, so a Type 2 one is still
    present) and the report says so."""

    name = "dates"
    title = "dates as YYYYMMDD (2020.01.02 → 20200102); values that are no date removed"

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        changes = []
        for owner, tag, path in _elements_of_vr(ds, "DA"):
            raw = owner.get_item(tag)
            written = raw.value.decode("ascii", "replace") if isinstance(raw.value, bytes) else _text_of(raw)
            written = written.rstrip("\x00")
            if not written.strip():
                continue
            values = [normal_date(v) for v in written.split("\\")]
            keyword = _keyword(owner, tag)
            if None in values:
                owner[tag].value = ""
                changes.append(f"{path}{keyword} {written.strip()!r} is not a date: its value was removed")
            elif "\\".join(v or "" for v in values) != written:
                new = "\\".join(v or "" for v in values)
                owner[tag].value = new if len(values) == 1 else [v or "" for v in values]
                changes.append(f"{path}{keyword} {written!r} → {new}")
        return changes


class MissingIDs(SimpleRule):
    """Missing identifiers, as Slicer's GenerateMissingIDs but grouped more finely: one SeriesInstanceUID per
    series of a folder (files of one folder and study with the same SeriesNumber and SeriesDescription), one
    StudyInstanceUID per patient folder (the first folder under the source) and PatientID, a SOPInstanceUID per
    file, and PatientName / PatientID from the patient folder's name."""

    name = "ids"
    title = "missing Study/Series/SOP Instance UIDs; patient name and ID from the folder"

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        changes = []
        for keyword in ("PatientName", "PatientID"):
            if not str(ds.get(keyword, "") or "").strip():
                setattr(ds, keyword, item.patient_folder)
                changes.append(f"{keyword} was missing: {item.patient_folder!r} (the patient folder's name)")
        if not str(ds.get("StudyInstanceUID", "") or "").strip():
            ds.StudyInstanceUID = context.uid_for("study", item.patient_folder, str(ds.PatientID))
            changes.append(f"StudyInstanceUID was missing: {ds.StudyInstanceUID} (one per patient folder "
                           f"{item.patient_folder!r} and PatientID {str(ds.PatientID)!r})")
        if not str(ds.get("SeriesInstanceUID", "") or "").strip():  # a series never spans studies
            ds.SeriesInstanceUID = context.uid_for("series", str(ds.StudyInstanceUID), *item.series_key)
            folder, number, description = item.series_key
            changes.append(f"SeriesInstanceUID was missing: {ds.SeriesInstanceUID} (one per folder {folder!r}, "
                           f"SeriesNumber {number or '(none)'}, SeriesDescription {description or '(none)'})")
        if not str(ds.get("SOPInstanceUID", "") or "").strip():
            set_sop_instance_uid(ds, context.uid_for("sop", str(item.relative)))
            changes.append(f"SOPInstanceUID was missing: {ds.SOPInstanceUID}")
        return changes


def encoding_syntax(ds: Dataset) -> str:
    """The transfer syntax of the encoding pydicom read ``ds`` in (a file without file meta)."""
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little or little is None else ExplicitVRBigEndian


class FileMeta(SimpleRule):
    """The 128-byte preamble, "DICM" and the file meta information (PS3.10 §7.1) when missing or wrong:
    MediaStorageSOPClassUID / MediaStorageSOPInstanceUID from the data set, TransferSyntaxUID from the encoding the
    file was read in, ImplementationClassUID pydicom's; a SOPClassUID missing from the data set from the meta."""

    name = "meta"
    title = "add a missing file meta header and preamble (files without DICM)"

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        changes = []
        meta = ds.file_meta
        if getattr(ds, "preamble", None) is None:
            changes.append("no preamble and DICM prefix: added (PS3.10 §7.1)")
        if "SOPClassUID" not in ds and meta.get("MediaStorageSOPClassUID"):
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
            changes.append(f"SOPClassUID was missing: {ds.SOPClassUID} from the file meta")
        wanted = {"MediaStorageSOPClassUID": ds.get("SOPClassUID"),
                  "MediaStorageSOPInstanceUID": ds.get("SOPInstanceUID"),
                  "TransferSyntaxUID": meta.get("TransferSyntaxUID") or encoding_syntax(ds)}
        for keyword, value in wanted.items():
            if value and meta.get(keyword) != value:
                was = meta.get(keyword)
                setattr(meta, keyword, UID(str(value)))
                changes.append(f"file meta {keyword} {'was ' + repr(str(was)) if was else 'was missing'}: {value}")
        if not meta.get("ImplementationClassUID"):
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.preamble = ds.preamble or b"\0" * 128
        return changes


_SWAP_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}  # PS3.5 §7.3: big endian swaps these by word size


class TransferSyntax(SimpleRule):
    """Explicit VR Big Endian (retired), Deflated Explicit VR Little Endian and private syntaxes pydicom reads
    without compression become Explicit VR Little Endian (PS3.5 §A.2). The numeric values pydicom converts; the
    bulk OW/OF/OL/OD/OV bytes of a big endian file are swapped here (pydicom's dcmwrite leaves them, its docs say).
    Compressed (encapsulated) pixel data of a private syntax is left as it is and said."""

    name = "syntax"
    title = "big endian, deflated, private transfer syntaxes → explicit little endian"

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        meta = ds.file_meta
        syntax = UID(str(meta.get("TransferSyntaxUID") or encoding_syntax(ds)))
        if encoding_mismatch(ds):
            decode_all(ds)
            said = "implicit" if syntax.is_implicit_VR else "explicit"
            return [f"the data set is not in the {said} VR its transfer syntax {syntax} says: re-encoded in it"]
        if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or (syntax.is_transfer_syntax and
                                                                          syntax.is_compressed):
            return []
        if syntax not in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian) and syntax.is_transfer_syntax:
            return []  # a standard syntax (the little endian ones are handled above)
        if "PixelData" in ds and ds["PixelData"].is_undefined_length:
            return [f"transfer syntax {syntax} left as it is: its pixel data is compressed in a way pydicom "
                    "cannot decode"]
        if ds.original_encoding[1] is False:
            self._swap_bulk(ds)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        name = syntax.name if syntax.is_transfer_syntax else "a private transfer syntax"
        return [f"{name} ({syntax}) → Explicit VR Little Endian"]

    @staticmethod
    def _swap_bulk(ds: Dataset) -> None:
        """Bulk values to little endian: by their VR's word size, Pixel Data by BitsAllocated (32-bit RT Dose
        pixels are OW but swapped by 4 bytes, as pydicom reads them)."""
        bits = int(ds.get("BitsAllocated", 0) or 0)
        for elem in list(ds.iterall()):  # converts every raw element in its original (big endian) encoding
            size = _SWAP_SIZE.get(elem.VR)
            if elem.tag == 0x7FE00010 and elem.VR == "OW" and bits in (32, 64):
                size = bits // 8
            if size and isinstance(elem.value, bytes) and len(elem.value) % size == 0:
                elem.value = np.frombuffer(elem.value, f">u{size}").astype(f"<u{size}").tobytes()


class SliceSpacing(SimpleRule):
    """SliceThickness (and SpacingBetweenSlices in MR, whose Image Module defines it) when missing, from the
    positions of the series' slices sorted along their normal (ImageOrientationPatient × ImagePositionPatient,
    PS3.3 C.7.6.2.1.1). Set only when the slices are evenly spaced (every step within 1 % or 0.01 mm of the
    mean): the thickness of a contiguous stack is its spacing. Uneven series are said, not guessed."""

    name = "spacing"
    title = "missing SliceThickness / SpacingBetweenSlices from the slice positions"

    def __init__(self) -> None:
        self.spacing: dict[str, float | str] = {}  # relative path → spacing in mm, or why none

    def prepare(self, files: list[PatchFile], context: PatchContext) -> None:
        groups: dict[tuple[str, ...], list[PatchFile]] = defaultdict(list)
        for f in files:
            key = (str(f.header.get("SeriesInstanceUID", "") or ""), *f.series_key)
            groups[key].append(f)
        for group in groups.values():
            result = series_spacing([f.header for f in group])
            if result is not None:
                for f in group:
                    self.spacing[str(f.relative)] = result

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        missing = [k for k in ("SliceThickness", "SpacingBetweenSlices")
                   if not str(ds.get(k, "") or "").strip() and (k == "SliceThickness" or ds.get("Modality") == "MR")]
        spacing = self.spacing.get(str(item.relative))
        if not missing or spacing is None or int(ds.get("NumberOfFrames", 1) or 1) > 1:
            return []
        if isinstance(spacing, str):  # said only for SliceThickness (Type 2); SpacingBetweenSlices is Type 3
            return [f"SliceThickness not set: {spacing}"] if "SliceThickness" in missing else []
        for keyword in missing:
            setattr(ds, keyword, f"{spacing:.6g}")
        return [f"{keyword} was missing: {spacing:.6g} mm from the slice positions" for keyword in missing]


def series_spacing(headers: list[dict[str, Any]]) -> float | str | None:
    """The even spacing (mm) of a series' slices along their normal, a sentence saying why there is none, or None
    when the series has fewer than two placed slices. ``headers``: ImageOrientationPatient and
    ImagePositionPatient of each slice, as the import reads them (examine's parsers)."""
    placed = []
    for h in headers:
        cosines, position = orientation(h.get("ImageOrientationPatient")), vector(h.get("ImagePositionPatient"), 3)
        if cosines is not None and position is not None:
            placed.append((cosines, position))
    if len(placed) < 2:
        return None
    if any(not np.allclose(c, placed[0][0], atol=1e-4) for c, _ in placed):
        return "the slices have different orientations"
    normal = slice_normal(placed[0][0])
    steps = np.diff(np.sort([float(np.dot(normal, p)) for _, p in placed]))
    if np.any(steps < 1e-3):
        return "several slices share a position"
    mean = float(np.mean(steps))
    if float(np.max(np.abs(steps - mean))) > max(0.01 * mean, 0.01):
        return f"the slices are not evenly spaced ({steps.min():.3g} to {steps.max():.3g} mm)"
    return round(mean, 4)
