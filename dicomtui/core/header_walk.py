"""The Python reference walk of the header reader: the top level of a data set read element by element, keeping
the values of FIELDS, skipping everything else (sequences item by item), stopping at Pixel Data. The C walk
(``_scan.c``) does the same, faster; ``tests/test_header.py`` holds the two in parity. ``header`` chooses between
them and owns everything else (file meta, windows, the pydicom fallback).
"""

from __future__ import annotations

import struct

from .errors import HeaderError
from .tags import FIELDS

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)

_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_IMPLICIT = struct.Struct("<HHI").unpack_from
_U32 = struct.Struct("<I").unpack_from
UNDEFINED = 0xFFFFFFFF


class _NeedMore(Exception):
    """The element walk ran past the bytes read so far; ``at``: where the top-level element it needs starts
    (-1 inside a sequence: its top-level element says)."""

    def __init__(self, at: int = -1) -> None:
        self.at = at


class _Unsupported(Exception):
    """The fast path does not handle this file; pydicom will."""


# The hot loops read a tag as one little-endian uint32, which puts the element number in the high half:
# (gggg,eeee) reads as 0xeeeegggg. Tags are looked up in that "swapped" form.
def _swap(tag: int) -> int:
    return (tag & 0xFFFF) << 16 | tag >> 16


_PIXEL_SW = _swap(PIXEL_DATA)
_FLOAT_PIXEL_SW = frozenset(_swap(t) for t in FLOAT_PIXEL_DATA)
_SHORT_VRS = frozenset((b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"))
_EXPL_SW = struct.Struct("<I2sH").unpack_from
_IMPL_SW = struct.Struct("<II").unpack_from


def _top_explicit(buf: bytes, pos: int, raw: dict[str, bytes], size: int):
    """Walk the top level of an explicit VR little endian data set, keeping wanted values in ``raw``.

    Returns (swapped pixel tag, value position, length) at pixel data, or None at the end of a file without it.
    The hot loop of every import: keep it lean."""
    n = len(buf)
    unpack, u32, shorts, longs, wanted = _EXPL_SW, _U32, _SHORT_VRS, _LONG_VRS, _WANTED_SW
    while pos + 8 <= n:
        tag, vr, length = unpack(buf, pos)
        if vr in shorts:
            vpos = pos + 8
        elif vr in longs:
            if pos + 12 > n:
                break
            length = u32(buf, pos + 8)[0]
            vpos = pos + 12
            if tag == _PIXEL_SW or tag in _FLOAT_PIXEL_SW:
                return tag, vpos, length
            if length == UNDEFINED:
                pos = _skip_top_sequence(buf, pos, vpos, vr != b"UN", size)
                continue
        else:
            raise _Unsupported  # an unknown VR, or implicit VR inside an explicit file: pydicom sorts it out
        end = vpos + length
        if tag in wanted:
            if end > n:
                break
            raw[wanted[tag]] = buf[vpos:end]
        pos = end
    return _at_end(pos, n, size)


def _top_implicit(buf: bytes, pos: int, raw: dict[str, bytes], size: int):
    """As :func:`_top_explicit`, for implicit VR little endian."""
    n = len(buf)
    unpack, wanted = _IMPL_SW, _WANTED_SW
    while pos + 8 <= n:
        tag, length = unpack(buf, pos)
        vpos = pos + 8
        if tag == _PIXEL_SW or tag in _FLOAT_PIXEL_SW:
            return tag, vpos, length
        if length == UNDEFINED:
            pos = _skip_top_sequence(buf, pos, vpos, False, size)
            continue
        end = vpos + length
        if tag in wanted:
            if end > n:
                break
            raw[wanted[tag]] = buf[vpos:end]
        pos = end
    return _at_end(pos, n, size)


def _at_end(pos: int, n: int, size: int) -> None:
    if pos == size == n:
        return None  # a file without pixel data, read to its end
    _out_of_bytes(n, size, pos)


def _out_of_bytes(n: int, size: int, at: int = -1) -> None:
    """The walk needs bytes past the ``n`` read (for the top-level element at ``at``): read more, or the file is
    cut short."""
    if n < size:
        raise _NeedMore(at)
    raise HeaderError("truncated: the file ends inside a data element")


def _skip_top_sequence(buf: bytes, at: int, pos: int, explicit: bool, size: int) -> int:
    """:func:`_skip_sequence` of the top-level element at ``at``, whose items start at ``pos``."""
    try:
        return _skip_sequence(buf, pos, explicit, size)
    except _NeedMore:
        raise _NeedMore(at) from None


MAX_DEPTH = 32  # nesting of undefined-length sequences the walk follows (the C walk too); deeper: pydicom


def _skip_item(buf: bytes, pos: int, explicit: bool, size: int, depth: int = 1) -> int:
    """Walk the elements of an undefined-length item from ``pos``; returns the position after its delimiter."""
    if depth > MAX_DEPTH:
        raise _Unsupported
    n = len(buf)
    while True:
        if pos + 8 > n:
            _out_of_bytes(n, size)
        if explicit:
            group, elem, vr, short = _EXPLICIT(buf, pos)
            if group == 0xFFFE:
                length = _U32(buf, pos + 4)[0]
                vpos = pos + 8
            elif vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _NeedMore
                length = _U32(buf, pos + 8)[0]
                vpos = pos + 12
            elif vr in _SHORT_VRS:
                length, vpos = short, pos + 8
            else:
                raise _Unsupported  # implicit VR element inside an explicit file: let pydicom sort it out
        else:
            group, elem, length = _IMPLICIT(buf, pos)
            vr = b""
            vpos = pos + 8
        if group == 0xFFFE:
            if elem == 0xE00D:
                return vpos
            raise _Unsupported  # a stray item tag
        if length == UNDEFINED:
            pos = _skip_sequence(buf, vpos, explicit and vr != b"UN", size, depth + 1)
            continue
        pos = vpos + length


def _skip_sequence(buf: bytes, pos: int, explicit: bool, size: int, depth: int = 1) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; returns the position after it."""
    if depth > MAX_DEPTH:
        raise _Unsupported
    n = len(buf)
    while True:
        if pos + 8 > n:
            _out_of_bytes(n, size)
        group, elem, length = _IMPLICIT(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise _Unsupported
        if elem == 0xE0DD:
            return pos
        if elem != 0xE000:
            raise _Unsupported
        if length == UNDEFINED:
            pos = _skip_item(buf, pos, explicit, size, depth + 1)
        else:
            pos += length


# swapped tag -> keyword
_WANTED_SW = {_swap(tag): kw for kw, (tag, kind) in FIELDS.items()}
