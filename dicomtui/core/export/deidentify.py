"""De-identification: PS3.15 Annex E's Basic Application Level Confidentiality Profile with options, as the export
transform hook (``Dataset -> Dataset | None``, :mod:`.folder`).

The action table (Table E.1-1's Basic Profile column: D, Z, X, U and their combinations) is Kitware's
``dicom-anonymizer`` (BSD-3), generated from the standard (``dicomfields_2026c``); it is not copied here. Where the
table allows a choice we take the one that keeps the file valid: Z/D, X/Z and X/Z/D → Z (empty), X/D → X, X/Z/U* →
keep the sequence and replace the UIDs inside. Unlike that library we walk every sequence to any depth, replace
every UID that is not a registered one (so references stay consistent: ReferencedSOPInstanceUID, SEG and RT
references, FrameOfReferenceUID), and keep one mapping (:mod:`.deid_mapping`) across files and jobs.

Options (PS3.16 CID 7050 codes, from pydicom's code dictionary): Retain Longitudinal Temporal Information with
Modified Dates (DA and DT shifted by the patient's offset in whole days; TM kept), Retain Patient Characteristics,
Retain Device Identity, Retain Safe Private (PS3.15 Table E.3.10-1's numeric rows, :mod:`.deid_safe_private`),
Clean Descriptors (a description is kept only when it contains no word of the identifying values of its file),
Retain UIDs. The option columns are not in any
maintained library: the attributes each option keeps are chosen by rule (keyword patterns) below, by hand.

Burned-in annotation (PS3.15 E.1.1): a file with BurnedInAnnotation YES, or without the attribute and of modality
US or DX or a Secondary Capture SOP class, is refused (the transform leaves it out and lists it in ``refused``)
unless ``accept_burned_in``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as action_table
from pydicom import Dataset, Sequence
from pydicom.datadict import keyword_for_tag
from pydicom.sr.codedict import codes
from pydicom.uid import UID_dictionary

from ..dicomfile import read_dataset
from .deid_mapping import DeidMapping
from .deid_safe_private import SAFE_PRIVATE, is_safe_private_value
from .folder import ExportOptions, ExportReport, export_files
from .layout import ExportFile, plan_export

__all__ = ["PROFILE_OPTIONS", "SAFE_PRIVATE", "DeidOptions", "Deidentifier", "burned_in_files", "deidentified_names",
           "export_deidentified", "export_deidentified_files", "has_burned_in_annotation", "shifted_date",
           "written_instances"]

# the library's categories → the one action we apply (see the module docstring for the choices)
_CATEGORY_ACTION = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z", "X_Z_TAGS": "Z",
                    "X_D_TAGS": "X", "X_Z_D_TAGS": "Z", "X_Z_U_STAR_TAGS": "U*"}

PROFILE_OPTIONS = {  # the CLI's --profile-option names → DeidOptions fields
    "modified-dates": "retain_modified_dates", "patient-characteristics": "retain_patient_characteristics",
    "device-identity": "retain_device_identity", "safe-private": "retain_safe_private",
    "clean-descriptors": "clean_descriptors", "retain-uids": "retain_uids"}

_PATIENT_CHARACTERISTICS = frozenset({  # kept by Retain Patient Characteristics (PS3.15 E.3.7)
    "PatientSex", "PatientAge", "PatientSize", "PatientWeight", "EthnicGroup", "SmokingStatus", "PregnancyStatus",
    "PatientSexNeutered", "PatientSpeciesDescription", "PatientBreedDescription"})
_DEVICE_IDENTITY = re.compile(  # kept by Retain Device Identity (PS3.15 E.3.8): device and station identifiers
    r"^(Device\w*|\w*(Detector|Gantry|Plate|Cassette|Generator|Source|Tube|Station)\w*"
    r"((?<!U)ID|SerialNumber|Name|Label))$")  # UIDs: DeviceUID only (SourceFrameOfReferenceUID is no device's)
_DESCRIPTOR = re.compile(r"Description$")  # cleaned, not removed, by Clean Descriptors (PS3.15 E.3.5)
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_DUMMY = {"AS": "000Y", "DA": "19000101", "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0",
          "PN": "ANONYMIZED", "UR": ""}
# Z is "a zero length value, or a dummy consistent with the VR" (E.1-1's legend): a DICOMDIR's STUDY record
# needs StudyID (Type 1, PS3.3 F.5), so it gets a dummy, not an empty value
_Z_DUMMY = {0x00200010: "DEID"}
_SECONDARY_CAPTURE = frozenset(uid for uid, info in UID_dictionary.items() if "Secondary Capture" in info[0])
_BURNED_IN_MODALITIES = frozenset({"US", "DX"})
_META_IDENTIFYING = (0x00020016, 0x00020017, 0x00020018)  # Source/Sending/Receiving AE Titles


def _load_table() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in _CATEGORY_ACTION.items():
        for tag in getattr(action_table, category):
            if len(tag) == 2:
                exact[(tag[0] << 16) | tag[1]] = action
            else:
                masked.append((tag[0] & tag[2], tag[1] & tag[3], tag[2], tag[3], action))
    return exact, masked


_EXACT, _MASKED = _load_table()


def basic_profile_action(tag: int) -> str | None:
    """The Basic Profile action of a public ``tag`` (as we apply it: D, Z, X, U or U*), None when not listed."""
    found = _EXACT.get(tag)
    if found is None:
        group, element = tag >> 16, tag & 0xFFFF
        for g, e, gmask, emask, action in _MASKED:
            if group & gmask == g and element & emask == e:
                return action
    return found


@dataclass(frozen=True)
class DeidOptions:
    """The Basic Profile's options (PS3.15 E.3) and whether files with burned-in annotation are accepted."""

    retain_modified_dates: bool = False
    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_safe_private: bool = False
    clean_descriptors: bool = False
    retain_uids: bool = False
    accept_burned_in: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str], accept_burned_in: bool = False) -> DeidOptions:
        """The options named as the CLI names them (:data:`PROFILE_OPTIONS`); ValueError on an unknown one."""
        fields = {}
        for name in names:
            if name not in PROFILE_OPTIONS:
                raise ValueError(f"unknown profile option {name!r} (known: {', '.join(PROFILE_OPTIONS)})")
            fields[PROFILE_OPTIONS[name]] = True
        return cls(accept_burned_in=accept_burned_in, **fields)

    def codes(self) -> list[Any]:
        """The CID 7050 codes of the profile and the options on (pydicom ``Code``s), in PS3.16 order."""
        on = [(self.retain_modified_dates, codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption),
              (self.retain_patient_characteristics, codes.DCM.RetainPatientCharacteristicsOption),
              (self.retain_device_identity, codes.DCM.RetainDeviceIdentityOption),
              (self.retain_safe_private, codes.DCM.RetainSafePrivateOption),
              (self.clean_descriptors, codes.DCM.CleanDescriptorsOption),
              (self.retain_uids, codes.DCM.RetainUidsOption)]
        return [codes.DCM.BasicApplicationConfidentialityProfile] + [code for flag, code in on if flag]


@dataclass
class Deidentifier:
    """The transform: ``deidentifier(dataset)`` de-identifies ``dataset`` in place and returns it, or returns
    None for a file refused for burned-in annotation (its SOPInstanceUID then in ``refused``). The SOP Instance
    UIDs in ``accepted`` are accepted one by one (the TUI's ticks) when ``options.accept_burned_in`` is off."""

    options: DeidOptions = field(default_factory=DeidOptions)
    mapping: DeidMapping = field(default_factory=DeidMapping)
    refused: list[str] = field(default_factory=list)
    accepted: frozenset[str] = frozenset()

    def __call__(self, ds: Dataset) -> Dataset | None:
        if not self.options.accept_burned_in and has_burned_in_annotation(ds) and \
                str(ds.get("SOPInstanceUID", "")) not in self.accepted:
            self.refused.append(str(ds.get("SOPInstanceUID", "")))
            return None
        key = str(ds.get("PatientID", "") or ds.get("PatientName", ""))
        patient = self.mapping.patient(key, str(ds.get("PatientName", "") or ""))
        words = _identifying_words(ds) if self.options.clean_descriptors else frozenset()
        self._clean(ds, patient.offset_days, words)
        ds.PatientName = ds.PatientID = patient.pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if self.options.retain_modified_dates else "REMOVED"
        method = self.options.codes()
        ds.DeidentificationMethod = [code.meaning[:64] for code in method]
        ds.DeidentificationMethodCodeSequence = Sequence([_code_item(code) for code in method])
        if getattr(ds, "preamble", None):
            ds.preamble = bytes(128)  # PS3.10 7.1: free for applications; a vendor may have put text there
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for tag in _META_IDENTIFYING:
                if tag in meta:
                    del meta[tag]
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _clean(self, ds: Dataset, offset_days: int, words: frozenset[str]) -> None:
        for tag in list(ds.keys()):
            if tag.group == 0x0002:
                continue
            if tag.is_private:
                if not self._safe_private(ds, tag):
                    del ds[tag]
                continue
            elem = ds[tag]
            action = self._action(tag, elem, words)
            if elem.VR == "SQ":
                if action == "X":
                    del ds[tag]
                elif action == "Z":
                    elem.value = Sequence()
                else:
                    for item in elem.value:
                        self._clean(item, offset_days, words)
            elif action == "X":
                del ds[tag]
            elif elem.VR == "UI":
                if action == "Z":
                    elem.value = None
                elif not self.options.retain_uids and action != "K":  # K: DeviceUID, Retain Device Identity
                    elem.value = _map_values(elem.value, self._new_uid)
            elif action is None or action == "K":
                continue
            elif self.options.retain_modified_dates and elem.VR in ("DA", "DT", "TM"):
                if elem.VR != "TM":
                    elem.value = _map_values(elem.value, lambda v: shifted_date(v, offset_days))
            elif action == "Z":
                elem.value = _Z_DUMMY.get(tag)
            else:
                elem.value = _DUMMY.get(elem.VR, "ANONYMIZED" if elem.VR in _TEXT_VRS else None)

    def _action(self, tag: Any, elem: Any, words: frozenset[str]) -> str | None:
        action = basic_profile_action(int(tag))
        if action is None:
            return None
        keyword = keyword_for_tag(tag)
        o = self.options
        if (o.retain_patient_characteristics and keyword in _PATIENT_CHARACTERISTICS) or (
                o.retain_device_identity and _DEVICE_IDENTITY.match(keyword) and elem.VR != "SQ"):
            return "K"
        if o.clean_descriptors and _DESCRIPTOR.search(keyword) and elem.VR in _TEXT_VRS:
            text = str(elem.value or "").casefold()
            if not any(w in text for w in words):
                return "K"
        return action

    def _new_uid(self, value: str) -> str:
        return value if not value or value in UID_dictionary else self.mapping.uid(value)

    def _safe_private(self, ds: Dataset, tag: Any) -> bool:
        if not self.options.retain_safe_private or tag.element < 0x10:
            return False
        if tag.element <= 0xFF:  # a private creator: kept when one of its elements may be
            name = str(ds[tag].value).strip()
            return any(creator == name and group == tag.group for creator, group, _ in SAFE_PRIVATE)
        creator = ds.get((tag.group, tag.element >> 8))
        if creator is None or (str(creator.value).strip(), tag.group, tag.element & 0xFF) not in SAFE_PRIVATE:
            return False
        try:
            elem = ds[tag]  # a raw element is decoded here: a DS of letters raises
        except ValueError:
            return False
        return is_safe_private_value(elem.VR, elem.value)


def has_burned_in_annotation(ds: Dataset) -> bool:
    """Whether ``ds`` may show identity in its pixels (PS3.15 E.1.1): BurnedInAnnotation YES, or no such
    attribute and modality US or DX or a Secondary Capture SOP class."""
    burned = ds.get("BurnedInAnnotation")
    if burned is not None and str(burned).strip():
        return str(burned).strip().upper() == "YES"
    return ds.get("Modality") in _BURNED_IN_MODALITIES or str(ds.get("SOPClassUID", "")) in _SECONDARY_CAPTURE


def export_deidentified(db: Any, items: Iterable[tuple[str, int]], destination: str | os.PathLike[str],
                        options: ExportOptions, progress: Callable[[int, int], None] | None = None,
                        cancel: threading.Event | None = None) -> ExportReport:
    """:func:`.folder.export_items` with ``options.transform`` a :class:`Deidentifier`, the files named by
    :func:`deidentified_names` (the data's names would carry the identity), the mapping saved afterwards (also
    after a cancel or an error: the files written use it). Raises ExportError and MappingError."""
    return export_deidentified_files(plan_export(db, items, options.layout), destination, options, progress, cancel)


def export_deidentified_files(plan: list[ExportFile], destination: str | os.PathLike[str], options: ExportOptions,
                              progress: Callable[[int, int], None] | None = None,
                              cancel: threading.Event | None = None) -> ExportReport:
    """:func:`.folder.export_files` of a ``plan`` (:func:`.layout.plan_export`, read by the caller's thread)
    through ``options.transform``, a :class:`Deidentifier`: the files named by :func:`deidentified_names`, the
    mapping saved afterwards (also after a cancel or an error). Raises ExportError, MappingError, TypeError."""
    deid = options.transform
    if not isinstance(deid, Deidentifier):
        raise TypeError("a de-identified export needs a Deidentifier as the export's transform")
    plan = [replace(item, name=name) for item, name in zip(plan, deidentified_names([f.name for f in plan]),
                                                           strict=True)]
    try:
        return export_files(plan, destination, options, progress, cancel)
    finally:
        deid.mapping.save()


def burned_in_files(rows: Iterable[dict[str, Any]], cancel: threading.Event | None = None) -> list[dict[str, Any]]:
    """The rows (dicts with "path", as :func:`.selection.instance_files` gives) whose file may show identity in
    its pixels (:func:`has_burned_in_annotation`, header only). A file that cannot be read is left out here (the
    export or send reports it). ``cancel`` stops early (the rows found so far)."""
    found = []
    for row in rows:
        if cancel is not None and cancel.is_set():
            break
        try:
            ds = read_dataset(row["path"]).dataset
        except Exception:  # noqa: BLE001, S112 - unreadable: the export or send that follows says why
            continue
        if has_burned_in_annotation(ds):
            found.append(row)
    return found


def written_instances(folder: str | os.PathLike[str], names: Iterable[str]) -> list[dict[str, str]]:
    """The rows the send operations take (SOPInstanceUID, SOPClassUID, TransferSyntaxUID, path) of the files
    ``names`` (relative, ``/``-separated) an export wrote under ``folder``: what a de-identified send sends.
    Raises what reading a file raises."""
    rows = []
    for name in names:
        path = os.path.join(folder, name)
        ds = read_dataset(path).dataset
        rows.append({"SOPInstanceUID": str(ds.SOPInstanceUID), "SOPClassUID": str(ds.SOPClassUID), "path": path,
                     "TransferSyntaxUID": str(ds.file_meta.TransferSyntaxUID)})
    return rows


def deidentified_names(names: list[str]) -> list[str]:
    """Export names without the data's names in them: every folder of a ``/``-separated name becomes a number
    per distinct folder at that depth (``P0001/ST0001/SE0001``), a flat name becomes ``NNNNNN.dcm``; a tree's
    ``NNNN.dcm`` file name is kept."""
    prefixes = ("P", "ST", "SE")
    seen: dict[str, str] = {}
    out = []
    for n, name in enumerate(names):
        parts = name.split("/")
        folders: list[str] = []
        for depth in range(len(parts) - 1):
            key = "/".join(parts[:depth + 1])
            if key not in seen:
                siblings = sum(1 for k in seen if k.count("/") == depth and k.startswith(key.rpartition("/")[0]))
                seen[key] = f"{prefixes[min(depth, 2)]}{siblings + 1:04d}"
            folders.append(seen[key])
        last = parts[-1] if folders and re.fullmatch(r"\d+\.dcm", parts[-1]) else f"{n + 1:06d}.dcm"
        out.append("/".join(folders + [last]))
    return out


def _code_item(code: Any) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item


def _map_values(value: Any, change: Any) -> Any:
    if value is None or value == "":
        return value
    if isinstance(value, str):
        return change(value)
    return [change(v) for v in value]


def shifted_date(value: str, days: int) -> str:
    """A DA or DT value moved by ``days`` (the time part and offset kept); empty when not a date."""
    text = str(value)
    try:
        day = date(int(text[:4]), int(text[4:6]), int(text[6:8])) + timedelta(days=days)
    except ValueError:
        return ""
    return day.strftime("%Y%m%d") + text[8:]


def _identifying_words(ds: Dataset) -> frozenset[str]:
    """Words (3 letters or more, case-folded) of the values the Basic Profile removes from ``ds``, at any depth:
    what a cleaned description must not contain."""
    words: set[str] = set()

    def visit(data: Dataset) -> None:
        for elem in data:
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
            elif elem.VR in _TEXT_VRS and not elem.tag.is_private and elem.value and \
                    basic_profile_action(int(elem.tag)) in ("D", "Z", "X") and not _DESCRIPTOR.search(elem.keyword):
                words.update(w for w in re.split(r"[\W_^]+", str(elem.value).casefold()) if len(w) >= 3)
    visit(ds)
    return frozenset(words)
