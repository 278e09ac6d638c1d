"""A value typed for an attribute, checked against its Value Representation (PS3.5 6.2) and against the file's
Specific Character Set (0008,0005) (PS3.5 6.1, PS3.3 C.12.1.1.2) before anything is written.

pydicom's own validation (``pydicom.valuerep.validate_value``, the checks behind
``config.settings.writing_validation_mode``) does the syntax of DA, TM, DT, AS, CS, DS, IS, UI, the lengths and
the number of PN component groups. What it leaves out is added here: the five components of a PN group, the 64
characters of a PN group, and the character repertoire: a value that the file's Specific Character Set cannot
encode is refused with the offer to change the set to ISO_IR 192 (UTF-8), which encodes every character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

UTF8_CHARSET = "ISO_IR 192"
# VRs whose values are text in the Specific Character Set (PS3.5 6.1.2.3); the others use the default repertoire.
_TEXT_VRS = frozenset(("SH", "LO", "ST", "LT", "UT", "PN", "UC"))
_PN_COMPONENTS = 5  # family, given, middle, prefix, suffix (PS3.5 6.2, PN)
_PN_GROUP_CHARS = 64  # per component group (PS3.5 6.2, PN)


@dataclass
class Check:
    """What a value needs: ``problems`` (sentences; the value is not written while there is one) and
    ``needs_utf8`` (the Specific Character Set cannot encode it; ISO_IR 192 can)."""

    problems: list[str]
    needs_utf8: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def charsets_of(ds: Any) -> tuple[str, ...]:
    """The Specific Character Set (0008,0005) of a pydicom data set as a tuple of its values (() when absent)."""
    value = ds.get("SpecificCharacterSet", "")
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(v) for v in value)


def check_value(name: str, vr: str, value: str, charsets: Sequence[str] = ()) -> Check:
    """Check ``value`` (the text typed; multiple values separated by ``\\``) for the attribute ``name`` of VR
    ``vr`` in a file whose Specific Character Set is ``charsets`` (its values; empty: the default repertoire).
    Each problem is one sentence naming ``name``. Binary and sequence VRs are refused (not editable as text)."""
    from pydicom.config import RAISE
    from pydicom.valuerep import validate_value

    if vr in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return Check([f"{name} ({vr}) cannot be set from text"])
    problems = []
    for one in value.split("\\") if vr not in ("LT", "ST", "UT", "UR") else [value]:
        if not one:
            continue
        try:
            validate_value(vr, _typed(vr, one), RAISE)
        except (ValueError, TypeError) as exc:
            problems.append(f"{name} ({vr}): {_sentence(exc, one)}")
        if vr == "PN":
            problems += _pn_problems(name, one)
    needs_utf8 = False
    if vr in _TEXT_VRS and not _encodable(value, charsets):
        if _encodable(value, [UTF8_CHARSET]):
            needs_utf8 = True
        else:
            problems.append(f"{name}: {value!r} holds characters no character set can encode")
    elif vr not in _TEXT_VRS and not value.isascii():
        problems.append(f"{name} ({vr}): {value!r} is not in the default repertoire (ASCII) its VR requires")
    return Check(problems, needs_utf8)


def _typed(vr: str, text: str) -> object:
    """A binary number VR is validated as a number (pydicom checks the type and the range)."""
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        try:
            return int(text)
        except ValueError:
            return text
    if vr in ("FL", "FD"):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _sentence(exc: Exception, value: str) -> str:
    text = str(exc).split(". Please see")[0].rstrip(".")
    return f"{text} ({value!r})" if repr(value) not in text else text


def _pn_problems(name: str, value: str) -> list[str]:
    out = []
    for group in value.split("="):
        if group.count("^") + 1 > _PN_COMPONENTS:
            out.append(f"{name} (PN): {group!r} has {group.count('^') + 1} components; at most {_PN_COMPONENTS} "
                       f"(family^given^middle^prefix^suffix)")
        if len(group) > _PN_GROUP_CHARS:
            out.append(f"{name} (PN): a component group of {len(group)} characters; at most {_PN_GROUP_CHARS}")
    return out


def _encodable(value: str, charsets: Sequence[str]) -> bool:
    """Whether some character set of ``charsets`` encodes every character of ``value`` (the default repertoire,
    ASCII without control characters but ESC, when there is none)."""
    from pydicom.charset import convert_encodings

    terms = [c for c in charsets if c]
    if not terms or terms == ["ISO_IR 6"]:
        return value.isascii()
    codecs = convert_encodings(terms)
    return any(_encodes(value, codec) for codec in codecs) or (
        len(codecs) > 1 and all(_encodes(ch, "ascii") or any(_encodes(ch, c) for c in codecs) for ch in value))


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
