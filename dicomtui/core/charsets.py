"""Text values in a file's Specific Character Set (0008,0005) (PS3.5 6.1, PS3.3 C.12.1.1.2): pydicom's codecs,
with a work-around for the one code extension pydicom 3.0.2 decodes wrong, ISO 2022 IR 58 (GB 2312, Chinese).

pydicom 3.0.2 (``pydicom.charset``, unchanged on its main branch as read in 2026) lists ``iso_ir_58`` among the
encodings whose escape sequences "Python strips" (``handled_encodings``). Python's ``iso_ir_58`` is an alias of
``gb2312`` (EUC-CN), which knows no escape sequences, so ``ESC $ ) A`` (PS3.3 Table C.12-4: GB 2312 designated to
G1) stays in the text: PS3.5 Annex K's ``Zhang^XiaoDong=ESC$)A张^ESC$)A小东`` comes out with the raw escapes where
dcmdump (DCMTK 3.6.7, ``+U8``) shows ``Zhang^XiaoDong=张^小东``. We decode those fragments the way pydicom decodes
the other G1 sets (ISO 2022 IR 149, Korean): the escape sequence dropped, GB 2312 up to the first delimiter, the
first character set after it (a delimiter resets the code elements, PS3.5 6.1.2.5.3). Everything else goes to
pydicom unchanged. Remove the work-around when pydicom decodes ``ESC $ ) A`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import TypeGuard

ESC_ISO_2022_IR_58 = b"\x1b$)A"  # PS3.3 Table C.12-4: ISO 2022 IR 58, GB 2312 in G1
_IR_58_CODEC = "gb2312"  # EUC-CN: GB 2312 in G1 (bytes 0xA1-0xFE), ASCII in G0
_FRAGMENTS = re.compile(b"(^[^\x1b]+|\x1b[^\x1b]*)")  # the text before the first escape, then one per escape

# Delimiters that reset the character set inside a value (PS3.5 6.1.2.5.3), as pydicom uses them.
PN_DELIMITERS = frozenset((0x5E, 0x3D))  # "^" between components, "=" between component groups
TEXT_DELIMITERS = frozenset((0x5C,))  # "\" between values


def python_encodings(charsets: Sequence[str]) -> list[str]:
    """The Python codec names of the Defined Terms of Specific Character Set (``["", "ISO 2022 IR 58"]`` →
    ``["iso8859", "iso_ir_58"]``), from pydicom's table; unknown terms warn (pydicom) and read as Latin-1."""
    from pydicom.charset import convert_encodings

    return convert_encodings(list(charsets))


def decode(value: bytes, encodings: Sequence[str], delimiters: Collection[int]) -> str:
    """``value`` (one element's bytes, padding included or not) as text: pydicom's ``decode_bytes`` except for
    fragments that start with ``ESC $ ) A`` while ``iso_ir_58`` is among ``encodings`` (see the module's
    docstring). ``encodings``: Python codec names (:func:`python_encodings`), first the default one.
    ``delimiters``: byte values that reset the character set (:data:`PN_DELIMITERS`, :data:`TEXT_DELIMITERS`).
    Undecodable bytes are replaced (pydicom warns), never raised."""
    from pydicom.charset import decode_bytes

    if ESC_ISO_2022_IR_58 not in value or "iso_ir_58" not in encodings:
        return decode_bytes(value, list(encodings), set(delimiters))
    return "".join(_decode_fragment(part, encodings, delimiters) for part in _FRAGMENTS.findall(value))


def _decode_fragment(part: bytes, encodings: Sequence[str], delimiters: Collection[int]) -> str:
    from pydicom.charset import decode_bytes

    if part.startswith(ESC_ISO_2022_IR_58):
        body = part[len(ESC_ISO_2022_IR_58):]
        end = next((i for i, byte in enumerate(body) if byte in delimiters), len(body))
        try:
            return body[:end].decode(_IR_58_CODEC) + body[end:].decode(encodings[0])
        except (UnicodeError, LookupError):
            pass  # not GB 2312 after all: pydicom's reading (with its warning and replacement characters)
    return decode_bytes(part, list(encodings), set(delimiters))


def mis_decoded_by_pydicom(value: object) -> TypeGuard[bytes]:
    """Whether pydicom 3.0.2 would keep raw escapes in the text of these value bytes (ISO 2022 IR 58)."""
    return isinstance(value, bytes) and ESC_ISO_2022_IR_58 in value


# The VRs whose values may hold code extensions (PS3.5 6.1.2.3), and those of them that hold one value only.
_EXTENSIBLE_VRS = frozenset(("SH", "LO", "UC", "ST", "LT", "UT", "PN"))
_SINGLE_VALUE_VRS = frozenset(("ST", "LT", "UT"))
_CONTROL_DELIMITERS = frozenset((0x09, 0x0A, 0x0C, 0x0D))  # TAB, LF, FF, CR also reset (PS3.5 6.1.2.5.3)


def text_values(value: bytes, vr: str, encodings: Sequence[str]) -> list[str] | None:
    """The values of a text element (VR ``vr``, bytes ``value``) as pydicom gives them, the ISO 2022 IR 58
    fragments decoded right: one string per value, trailing padding (and a PN's empty trailing component groups)
    gone. None when ``vr`` is not a text VR that code extensions apply to (PS3.5 6.1.2.3)."""
    if vr not in _EXTENSIBLE_VRS:
        return None
    if vr == "PN":
        text = decode(value.rstrip(b"\x00 "), encodings, PN_DELIMITERS | TEXT_DELIMITERS)
        return [name.rstrip("=") for name in text.split("\\")]
    if vr in _SINGLE_VALUE_VRS:
        return [decode(value, encodings, _CONTROL_DELIMITERS).rstrip("\x00 ")]
    text = decode(value, encodings, TEXT_DELIMITERS | _CONTROL_DELIMITERS)
    return [part.rstrip("\x00 ") for part in text.split("\\")]
