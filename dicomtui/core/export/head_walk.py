"""The edit's head read without pydicom's reader: a Part-10 file's file meta and top-level elements walked by hand
up to a tag, each kept as pydicom's own ``RawDataElement`` (value bytes, ``value_tell``, length), so that the data
set built from them behaves as ``pydicom.filereader.read_partial``'s does (values decoded by pydicom when asked).

Only the plain case: a preamble and "DICM" (PS3.10 7.1), explicit VR little endian file meta (PS3.10 7.1), an
implicit or explicit VR little endian data set (PS3.5 7.1), every element of defined length up to the tag.
Anything else (bare data set, deflate, big endian, an undefined-length element on the way, a file shorter than
its elements say) returns None and the caller reads with pydicom. ``tests/test_edit_head_walk.py`` holds the two
in parity.

Hand-written (why: the speed target of ``edit``, issue 16): pydicom's ``read_partial`` was a third of the plan's
time for a 300-file series (file meta parsed into a FileMetaDataset element by element, a generator per element).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_IMPLICIT = struct.Struct("<HHI").unpack_from
_U32 = struct.Struct("<I").unpack_from
_VRS = frozenset((b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH",
                  b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")) | _LONG_VRS
_UNDEFINED = 0xFFFFFFFF
_FIRST_READ = 1 << 13  # 8 KiB: most heads; read again 4× larger when not
_MAX_READ = 1 << 24  # a head longer than 16 MiB up to the tag: pydicom reads it


def walk_head(path: Path, last_tag: int) -> tuple[Any, int] | None:
    """(data set, stop) of ``path`` read up to ``last_tag`` (included): the pydicom Dataset of raw elements with
    its ``file_meta`` and original encoding set, and the offset of the first element after ``last_tag`` (the file's
    size when none); None when the file is not the plain case (see the module's docstring). Raises OSError."""
    with open(path, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        want = _FIRST_READ
        while True:
            fp.seek(0)
            buf = fp.read(min(want, size))
            found = _walk(buf, last_tag, len(buf) == size)
            if not isinstance(found, str):
                return found
            if want >= _MAX_READ or len(buf) == size:
                return None
            want *= 4


def _walk(buf: bytes, last_tag: int, whole: bool) -> tuple[Any, int] | None | str:
    """The walk over ``buf`` (the file's first bytes; ``whole``: all of it); "more" when it ran out of bytes."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import BaseTag

    if len(buf) < 132 or buf[128:132] != b"DICM":
        return None
    meta: dict[Any, Any] = {}
    pos, n = 132, len(buf)
    while True:  # the file meta: explicit VR little endian, group 2
        if pos + 8 > n:
            return None if whole else "more"
        group, elem, vr, short = _EXPLICIT(buf, pos)
        if group != 2:
            break
        if vr in _LONG_VRS:
            if pos + 12 > n:
                return None if whole else "more"
            length, vpos = _U32(buf, pos + 8)[0], pos + 12
        else:
            length, vpos = short, pos + 8
        if length == _UNDEFINED:
            return None
        if vpos + length > n:
            return None if whole else "more"
        tag = BaseTag(group << 16 | elem)
        meta[tag] = RawDataElement(tag, vr.decode("ascii"), length, buf[vpos:vpos + length], vpos, False, True)
        pos = vpos + length
    syntax_raw = meta.get(BaseTag(0x00020010))
    syntax = syntax_raw.value.rstrip(b"\x00 ").decode("ascii", "replace") if syntax_raw is not None else ""
    if syntax == IMPLICIT_LE:
        implicit = True
    elif syntax and syntax not in ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"):
        implicit = False  # every other transfer syntax: explicit VR little endian data set (PS3.5 A.4 included)
    else:
        return None
    elements: dict[Any, Any] = {}
    while pos < n or not whole:
        if pos + 8 > n:
            if whole and pos == n:
                break
            return None if whole else "more"
        if implicit:
            group, elem, length = _IMPLICIT(buf, pos)
            vr_text, vpos = None, pos + 8
        else:
            group, elem, vr, short = _EXPLICIT(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    return None if whole else "more"
                length, vpos = _U32(buf, pos + 8)[0], pos + 12
            else:
                length, vpos = short, pos + 8
            if vr not in _VRS:  # not an explicit VR data set after all (pydicom guesses again): its reader
                return None
            vr_text = vr.decode("ascii")
        tag_int = group << 16 | elem
        if tag_int > last_tag:
            break
        if length == _UNDEFINED or group == 0xFFFE:
            return None
        if vpos + length > n:
            return None if whole else "more"
        tag = BaseTag(tag_int)
        elements[tag] = RawDataElement(tag, vr_text, length, buf[vpos:vpos + length], vpos, implicit, True)
        pos = vpos + length
    ds = Dataset(elements)
    ds.file_meta = FileMetaDataset(meta)
    ds.set_original_encoding(implicit, True, ds._character_set)  # as pydicom's read_dataset does
    return ds, pos
