"""One file ready for the database: :class:`FileRecord`, built in ONE place (:meth:`FileRecord.from_file`) by the
importer, the listener and ``db check``, and turned into rows by :func:`prepare`."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dicomfile import captured_warnings
from ..errors import HeaderError
from ..frames import frame_geometry, needs_frame_geometry
from ..header import FIELDS, normalise_name, read_header
from ..object_refs import needs_references, references_of_file
from ..tags import _UID_SYNTAX, UID_MAX_LENGTH, uid_problem

# Attributes a file must have to be indexed (the keys of the patient/study/series/instance rows, PS3.3 C.7). A key
# holding characters a UID cannot hold (PS3.5 9.1: digits and dots) is refused: a NUL, a slash or an escape
# sequence would reach paths, terminals and peers. A key of digits and dots that breaks the other rules (a leading
# zero in a component, an empty component, over 64 characters) is a warning: old scanners wrote such UIDs, and
# DCMTK, Orthanc and pydicom store them.
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
# Other UIDs kept: any invalid one is a warning, the file imports.
CHECKED_UIDS = ("SOPClassUID", "FrameOfReferenceUID", "TransferSyntaxUID")

# Instance columns filled from a header record (their names are DICOM keywords).
_INSTANCE_TAGS = [
    kw for kw in FIELDS
    if kw not in {
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
        "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "StudyID", "SeriesInstanceUID",
        "SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "SeriesDate", "SeriesTime",
    }
]
INSTANCE_COLUMNS = [
    "SOPInstanceUID", "series_fk", "TransferSyntaxUID", "path", "stored", "file_size", "file_mtime_ns",
    "source_path", "source_size", "source_mtime_ns", "imported_at", "has_pixels", "pixel_offset", "frames",
    "refs", *[kw for kw in _INSTANCE_TAGS if kw != "SOPInstanceUID"],
]
_TAG_COLUMNS = INSTANCE_COLUMNS[15:]


@dataclass
class FileRecord:
    """One parsed file ready for the database: its header record and where its bytes are.

    ``path`` is absolute when linked, relative to the database folder (``dicom/…``) when ``stored``; ``source_*``
    say where the file came from (a re-import of the same unchanged source is skipped). ``warning`` is what the
    import reports about the file without rejecting it ("" when nothing)."""

    header: dict[str, Any]
    path: str
    stored: bool
    file_size: int
    file_mtime_ns: int
    source_path: str
    source_size: int
    source_mtime_ns: int
    warning: str = ""

    @classmethod
    def from_file(cls, file: str | os.PathLike[str], *, root: Path | None = None,
                  header: dict[str, Any] | None = None, stat: tuple[int, int] | None = None,
                  source: tuple[str, int, int] | None = None) -> FileRecord:
        """The record of the file at ``file`` (absolute), as it is now.

        ``root``: the database folder, when the file lies in its storage (the record is then ``stored`` with a
        path relative to ``root``); else the file is linked where it is. ``header``: already read by
        :func:`read_checked` (else read here). ``stat``: (size, mtime_ns) when the caller has them (else stat'ed
        here). ``source``: (path, size, mtime_ns) the file came from; by default the file itself (its path as
        recorded). Raises HeaderError (not DICOM, or without one of REQUIRED_UIDS) and OSError.
        """
        full = os.fspath(file)
        if stat is None:
            st = os.stat(full)
            stat = (st.st_size, st.st_mtime_ns)
        warning = ""
        if header is None:
            header, warning = read_checked(full, stat[0])
        path = Path(full).relative_to(root).as_posix() if root is not None else full
        size, mtime_ns = stat
        src_path, src_size, src_mtime_ns = source or (path, size, mtime_ns)
        return cls(header, path, root is not None, size, mtime_ns, src_path, src_size, src_mtime_ns, warning)


def read_checked(path: str, size: int | None = None) -> tuple[dict[str, Any], str]:
    """The header record of a file to index, and a warning ("" when none): the three UIDs present and valid
    (PS3.5 9.1; other UIDs invalid: a warning), what a damaged header kept from being read, a missing
    PatientID generated (:func:`fill_patient_id`), the per-frame geometry of a multi-frame image and what a derived
    object refers to kept (so that examine never opens the file), the library's warnings about the file
    (pydicom's "Expected explicit VR, but found implicit VR", …: captured, not printed). Raises HeaderError (not
    importable) and OSError (unreadable)."""
    caught: list[str] = []
    header = read_header(path, size, caught)
    missing = [k for k in REQUIRED_UIDS if not header.get(k)]
    if missing:
        if os.path.basename(path).upper() == "DICOMDIR":
            raise HeaderError("a DICOMDIR index, not an image (import its folder to use it)")
        raise HeaderError(f"not importable: no {' / '.join(missing)}")
    warnings = _check_uids(header)
    if generated := fill_patient_id(header):
        warnings.append(generated)
    if needs_frame_geometry(header):
        try:  # keep the frame geometry (functional groups, mosaic tiles…), so that examine need not open the file
            with captured_warnings() as geometry_caught:
                header["frames"] = frame_geometry(path, geometry_caught)
            caught += [f"pydicom: {w}" for w in geometry_caught if f"pydicom: {w}" not in caught]
        except Exception as exc:  # noqa: BLE001 - the file imports; only its frame geometry is missing
            warnings.append(f"frame geometry unreadable ({type(exc).__name__}: {exc})")
    if needs_references(header):
        try:  # what a SEG, RT object or derived image refers to: examine lists and loads it without opening files
            header["refs"] = references_of_file(header, path)
        except Exception as exc:  # noqa: BLE001 - the file imports; only what it refers to is unknown
            warnings.append(f"references unreadable ({type(exc).__name__}: {exc})")
    return header, "; ".join(warnings + caught)


# Valid UIDs met lately: study, series, class, syntax and frame of reference repeat from file to file, and a set
# lookup costs a tenth of the check (the import's hot path: ~2 µs a file saved of ~15).
_VALID_UIDS: set[str] = set()
_ALL_CHECKED = REQUIRED_UIDS + CHECKED_UIDS


def _check_uids(header: dict[str, Any]) -> list[str]:
    """Raise HeaderError when a key UID (:data:`REQUIRED_UIDS`) holds characters other than digits and dots; the
    warnings for the other invalid UIDs (PS3.5 9.1). Padding (trailing NUL or space) is already stripped."""
    warnings = []
    known = _VALID_UIDS
    for kw in _ALL_CHECKED:
        value = header.get(kw)
        if not value or value in known:
            continue
        if len(value) <= UID_MAX_LENGTH and _UID_SYNTAX(value):
            if len(known) > 4096:
                known.clear()
            known.add(value)
            continue
        shown = repr(value if len(value) <= 80 else value[:80] + "…")
        if kw in REQUIRED_UIDS and value.strip("0123456789."):
            raise HeaderError(f"not importable: the {kw} {shown} is not a valid UID (PS3.5 9.1: "
                              f"{uid_problem(value)})")
        warnings.append(f"the {kw} {shown} is not a valid UID (PS3.5 9.1: {uid_problem(value)})")
    return warnings


# Patient's Names that say nothing about who the patient is: studies that carry one of them and no PatientID are
# not merged under one generated patient (they come from unrelated sources). Compared case-insensitively, after
# the spaces around components and the empty trailing components are dropped (``"anonymous^ "`` is ``anonymous``).
# Each with where it comes from:
PLACEHOLDER_NAMES = frozenset((
    "",  # empty, spaces or carets only: PS3.15 Annex E Table E.1-1, action Z (zero length) for Patient's Name
    "anonymized",  # Orthanc's /anonymize: "Anonymized" + a number (GeneratePatientName); the digits are dropped
    "anonymous",  # pydicom's anonymisation example (examples/metadata_processing/plot_anonymize.py, much copied)
    "last name^first name",  # a template value left in exported test data (issue 12)
))


def placeholder_key(name: str | None) -> str:
    """The form of a Patient's Name compared with :data:`PLACEHOLDER_NAMES`: lower case, spaces around each
    component and trailing empty components gone, an "Anonymized" followed by digits (Orthanc) without them."""
    key = "^".join(part.strip() for part in (name or "").casefold().split("^")).rstrip("^")
    return key.rstrip("0123456789 ") if key.startswith("anonymized") else key


def fill_patient_id(header: dict[str, Any]) -> str:
    """Give a header without PatientID a stable generated one; returns the warning that says so ("" when the
    header has a PatientID).

    The ID (``DICOMTUI-`` + 12 hex digits of a SHA-1) is generated from the Patient's Name and Birth Date when
    the name is a real one and the birth date is there: the studies of one patient then stay together. Otherwise
    it comes from the StudyInstanceUID, so that unrelated studies are not merged under a placeholder name
    (:data:`PLACEHOLDER_NAMES`) or under a name alone. The same header always gives the same ID (re-imports)."""
    if header.get("PatientID"):
        return ""
    name = normalise_name(header.get("PatientName"))
    birth_date = header.get("PatientBirthDate") or ""
    if placeholder_key(name) in PLACEHOLDER_NAMES:
        basis, why = f"study|{header.get('StudyInstanceUID')}", (
            f"a placeholder name {name!r}" if name else "no Patient's Name")
    elif not birth_date:
        basis, why = f"study|{header.get('StudyInstanceUID')}", f"no birth date for {name!r}"
    else:
        basis, why = f"{name}|{birth_date}", ""
    header["PatientID"] = "DICOMTUI-" + hashlib.sha1(basis.encode("utf-8")).hexdigest()[:12].upper()
    header["generated_id"] = True
    if why:
        return f"no PatientID and {why}: using generated {header['PatientID']} from the study"
    return f"no PatientID: using generated {header['PatientID']} from the name and birth date"


# ((patient, study, series), instance) rows of one file; the instance row lacks only series_fk.
Prepared = tuple[tuple[tuple, tuple, tuple], tuple]


def prepare(rec: FileRecord) -> Prepared:
    """Turn a parsed file into database rows: cheap to send between processes, ready for executemany."""
    h = rec.header
    get = h.get
    name = get("PatientName")
    return (
        ((h["PatientID"], normalise_name(name), name, get("PatientBirthDate"), get("PatientSex"),
          int(bool(get("generated_id")))),
         (h["StudyInstanceUID"], get("StudyDate"), get("StudyTime"), get("StudyDescription"),
          get("AccessionNumber"), get("ReferringPhysicianName"), get("StudyID")),
         (h["SeriesInstanceUID"], get("SeriesNumber"), get("Modality"), get("SeriesDescription"),
          get("BodyPartExamined"), get("SeriesDate"), get("SeriesTime"))),
        (h["SOPInstanceUID"], get("TransferSyntaxUID"), rec.path, int(rec.stored), rec.file_size, rec.file_mtime_ns,
         rec.source_path, rec.source_size, rec.source_mtime_ns, time.time(), int(bool(get("has_pixels"))),
         get("pixel_offset"), get("frames"), get("refs"), *map(get, _TAG_COLUMNS)),
    )

