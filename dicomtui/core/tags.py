"""The attributes the database keeps from each file (:data:`FIELDS`, PS3.6 tags and keywords) and how their
value bytes become Python values: padding, numbers (IS/DS, PS3.5 6.2), binary US/FD, and text in the file's
Specific Character Set (PS3.5 6.1; ISO 2022 and GB18030 through :mod:`.charsets`). Both walks of ``header`` (the
Python reference and the C twin, which decodes the simple kinds itself) end here, in :func:`_finish`."""

from __future__ import annotations

import re
import struct
from typing import Any

from .charsets import PN_DELIMITERS, TEXT_DELIMITERS, decode, python_encodings

# keyword -> (tag, kind). kind says how to turn the value bytes into a Python value:
#   str: text, padding stripped        pn: person name              multi: text with backslashes kept
#   int: IS text -> int                float: DS text -> float      us: binary uint16
#   fd: binary float64                 fdm: binary float64s -> backslash text
FIELDS: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "multi"),
    "ImageType": (0x00080008, "multi"),
    "SOPClassUID": (0x00080016, "str"),
    "SOPInstanceUID": (0x00080018, "str"),
    "StudyDate": (0x00080020, "str"),
    "SeriesDate": (0x00080021, "str"),
    "ContentDate": (0x00080023, "str"),
    "StudyTime": (0x00080030, "str"),
    "SeriesTime": (0x00080031, "str"),
    "AcquisitionTime": (0x00080032, "str"),
    "ContentTime": (0x00080033, "str"),
    "AccessionNumber": (0x00080050, "str"),
    "Modality": (0x00080060, "str"),
    "ReferringPhysicianName": (0x00080090, "pn"),
    "StudyDescription": (0x00081030, "str"),
    "SeriesDescription": (0x0008103E, "str"),
    "PatientName": (0x00100010, "pn"),
    "PatientID": (0x00100020, "str"),
    "PatientBirthDate": (0x00100030, "str"),
    "PatientSex": (0x00100040, "str"),
    "BodyPartExamined": (0x00180015, "str"),
    "SliceThickness": (0x00180050, "float"),
    "EchoTime": (0x00180081, "float"),
    "TriggerTime": (0x00181060, "float"),
    "DiffusionBValue": (0x00189087, "fd"),
    "DiffusionGradientOrientation": (0x00189089, "fdm"),
    "StudyInstanceUID": (0x0020000D, "str"),
    "SeriesInstanceUID": (0x0020000E, "str"),
    "StudyID": (0x00200010, "str"),
    "SeriesNumber": (0x00200011, "int"),
    "AcquisitionNumber": (0x00200012, "int"),
    "InstanceNumber": (0x00200013, "int"),
    "ImagePositionPatient": (0x00200032, "multi"),
    "ImageOrientationPatient": (0x00200037, "multi"),
    "FrameOfReferenceUID": (0x00200052, "str"),
    "TemporalPositionIdentifier": (0x00200100, "int"),
    "SamplesPerPixel": (0x00280002, "us"),
    "PhotometricInterpretation": (0x00280004, "str"),
    "PlanarConfiguration": (0x00280006, "us"),
    "NumberOfFrames": (0x00280008, "int"),
    "Rows": (0x00280010, "us"),
    "Columns": (0x00280011, "us"),
    "PixelSpacing": (0x00280030, "multi"),
    "BitsAllocated": (0x00280100, "us"),
    "BitsStored": (0x00280101, "us"),
    "PixelRepresentation": (0x00280103, "us"),
    "WindowCenter": (0x00281050, "multi"),
    "WindowWidth": (0x00281051, "multi"),
    "RescaleIntercept": (0x00281052, "float"),
    "RescaleSlope": (0x00281053, "float"),
}

_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*").fullmatch  # the same in every character set DICOM allows
_SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


def _d_text(v: bytes) -> str | None:
    return v.decode("latin-1").strip(" \x00") or None


def _d_multi(v: bytes) -> str | None:
    text = v.decode("latin-1").strip(" \x00")
    if " " in text:
        return convert("multi", text)
    return text or None


def _d_int(v: bytes) -> int | None:
    try:
        return int(v)
    except ValueError:
        return convert("int", v.decode("latin-1"))


def _d_float(v: bytes) -> float | None:
    try:
        return float(v)
    except ValueError:
        return convert("float", v.decode("latin-1"))


def _d_us(v: bytes) -> int | None:
    return v[0] | v[1] << 8 if len(v) >= 2 else None


def _d_fd(v: bytes) -> float | None:
    return struct.unpack_from("<d", v)[0] if len(v) >= 8 else None


def _d_fdm(v: bytes) -> str | None:
    count = len(v) // 8
    return "\\".join(_num(x) for x in struct.unpack_from(f"<{count}d", v)) if count else None


_DECODERS = {"str": _d_text, "pn": _d_text, "multi": _d_multi, "int": _d_int, "float": _d_float, "us": _d_us,
             "fd": _d_fd, "fdm": _d_fdm}
# The only attributes we keep whose VR (LO, SH, PN, ST…) the character set affects.
_TEXT_KEYWORDS = frozenset(("StudyDescription", "SeriesDescription", "PatientName", "ReferringPhysicianName",
                            "BodyPartExamined", "PatientID", "AccessionNumber", "StudyID"))
# keyword -> (kind, decoder, affected by the character set)
_SPEC_KW = {kw: (kind, _DECODERS[kind], kw in _TEXT_KEYWORDS) for kw, (tag, kind) in FIELDS.items()}
_PN_KEYWORDS = [kw for kw, (_tag, kind) in FIELDS.items() if kind == "pn"]


def _finish(record: dict[str, Any]) -> dict[str, Any]:
    """Decode the values still in bytes (all of them from the Python walk; from the C walk only those whose
    decoding needs the character set or has an odd form), in place."""
    charset = record.get("SpecificCharacterSet")
    if type(charset) is bytes:
        charset = record["SpecificCharacterSet"] = _d_multi(charset)
    charsets: list[str] = []
    encoding: str | None = "latin-1"
    if charset:
        charsets = [c.strip() for c in charset.split("\\")]
        simple = [c for c in charsets if c not in ("", "ISO_IR 6")]
        encoding = _SIMPLE_CHARSETS.get(simple[0]) if len(simple) == 1 else ("latin-1" if not simple else None)
    for kw, value in record.items():
        if type(value) is not bytes:
            continue
        kind, decode, text = _SPEC_KW[kw]
        if text and encoding != "latin-1" and not _PRINTABLE_ASCII(value.strip(b" \x00")):
            if encoding is None:  # ISO 2022 escapes, GB18030…: pydicom's codecs
                record[kw] = convert(kind, _decode_charset(value, charsets, kind))
            else:
                record[kw] = convert(kind, value.decode(encoding))
        else:
            record[kw] = decode(value)
    for kw in _PN_KEYWORDS:  # "Wang^XiaoDong=王^小東=": empty trailing component groups go, as in pydicom
        value = record.get(kw)
        if type(value) is str and value.endswith("="):
            record[kw] = value.rstrip("=") or None
    return record


def _decode_charset(value: bytes, charsets: list[str], kind: str) -> str:
    """pydicom's codecs, with our ISO 2022 IR 58 work-around for pydicom 3.0.2 (see :mod:`.charsets`)."""
    delimiters = PN_DELIMITERS if kind == "pn" else TEXT_DELIMITERS
    return decode(value, python_encodings(charsets), delimiters)  # DICOM terms → Python codec names


def _num(v: float) -> str:
    return repr(float(v))


def convert(kind: str, text: str) -> Any:
    """Turn the text of a value into what the database stores (None for empty or malformed numbers)."""
    text = text.strip(" \x00")
    if not text:
        return None
    if kind == "int":
        try:
            return int(text.split("\\")[0].strip())
        except ValueError:
            try:
                return int(float(text.split("\\")[0]))
            except ValueError:
                return None
    if kind == "float":
        try:
            return float(text.split("\\")[0])
        except ValueError:
            return None
    if kind == "multi":
        return "\\".join(part.strip(" \x00") for part in text.split("\\"))
    return text


def normalise_name(name: str | None) -> str:
    """Patient identity uses the name without trailing ``^`` and spaces: ``Doe^John^^`` is ``Doe^John``."""
    return (name or "").rstrip("^ ")


# PS3.5 9.1: a UID is components of digits separated by dots, no component empty or with a leading zero ("0"
# itself is a component), at most 64 characters; the trailing NUL that pads it to even length is stripped with the
# rest of the padding before this check.
_UID_SYNTAX = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*").fullmatch
UID_MAX_LENGTH = 64


def uid_problem(value: str) -> str:
    """What makes ``value`` (padding stripped) an invalid UID per PS3.5 9.1, in words; "" when it is valid."""
    if len(value) <= UID_MAX_LENGTH and _UID_SYNTAX(value):
        return ""
    if len(value) > UID_MAX_LENGTH:
        return f"{len(value)} characters, more than {UID_MAX_LENGTH}"
    if value.strip("0123456789."):
        return "characters other than digits and dots"
    if "" in value.split("."):
        return "an empty component"
    return "a component with a leading zero"
