"""Read the attributes the database stores from one DICOM file, fast.

The fast path walks the elements of a little-endian file (explicit or implicit VR) in the first few kilobytes,
keeping only the tags in :data:`FIELDS`, and stops at Pixel Data, whose byte offset it records. Everything it
cannot handle (big endian, deflate, no ``DICM`` prefix, odd layouts) goes to pydicom, and values in character
sets other than ASCII, Latin-1 and UTF-8 go through pydicom's codecs, so correctness never depends on the fast
path: ``tests/test_header.py`` checks that both give the same record for every file pydicom ships.

The element walk exists twice: in Python (``_top_explicit``/``_top_implicit``, the reference) and in C
(``_scan.c``, built when a compiler is there, 2-3× faster per file). Tests compare them on every pydicom test
file and on thousands of mutated files; ``DICOMTUI_PURE_PYTHON=1`` forces the Python walk.
"""

from __future__ import annotations

import itertools
import operator
import os
import stat
import struct
from collections.abc import Sequence
from typing import Any

from .charsets import mis_decoded_by_pydicom
from .dicomfile import captured_warnings, layout_of
from .errors import HeaderError
from .header_walk import (  # the Python reference walk and the byte-level names it shares with this reader
    _EXPLICIT,
    _IMPLICIT,
    _LONG_VRS,
    _PIXEL_SW,
    _SHORT_VRS,
    _U32,
    FLOAT_PIXEL_DATA,
    PIXEL_DATA,
    UNDEFINED,
    _NeedMore,
    _swap,
    _top_explicit,
    _top_implicit,
    _Unsupported,
)
from .tags import _SPEC_KW, _TEXT_KEYWORDS, FIELDS, _finish, _num, convert, normalise_name

__all__ = ["FIELDS", "HAS_PIXELS", "PIXEL_OFFSET", "TRANSFER_SYNTAX", "HeaderError", "convert", "normalise_name",
           "present", "read_header", "read_header_pydicom"]

# Keys a record has beside the FIELDS keywords.
TRANSFER_SYNTAX = "TransferSyntaxUID"
PIXEL_OFFSET = "pixel_offset"  # byte offset of native Pixel Data in the file, else None
HAS_PIXELS = "has_pixels"

IMPLICIT_LE = "1.2.840.10008.1.2"
# (implicit VR, little endian) as pydicom's Dataset.original_encoding says → the transfer syntax it is
_BY_ENCODING = {(True, True): IMPLICIT_LE, (False, True): "1.2.840.10008.1.2.1", (False, False): "1.2.840.10008.1.2.2"}
BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
FIRST_READ = 16384
# The largest window the walk reads at once: one element that does not fit (an undefined-length sequence, a
# damaged length of a kept attribute) grows the window up to this, then pydicom reads the file. Values the walk
# skips are never read: the next window starts after them, so a 4 GB file costs a few 16 KiB reads.
MAX_HEADER = 16 << 20



def read_header(path: str, size: int | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """The database record of the file at ``path`` (keywords of FIELDS plus the keys above).

    ``notes`` receives what could not be read (a damaged element, Pixel Data not found) and the library's
    warnings about the file ("pydicom: Expected explicit VR, but found implicit VR"…), captured instead of
    printed. Only the pydicom fallback can raise any, so only it is wrapped: a capture costs ~4 µs, an eighth
    of the fast walk's time per file. Raises :class:`HeaderError` with a sentence for the user when the file is
    not importable.
    """
    if size is None:
        size = os.stat(path).st_size
    if size == 0:
        raise HeaderError("empty file (0 bytes)")
    buf = b""
    try:
        # plain fds: a third cheaper than file objects, in the hot path. O_NONBLOCK: a FIFO put in a regular
        # file's place after the scan fails (EAGAIN) instead of blocking the import; no effect on regular files.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            buf = os.read(fd, FIRST_READ)
            if len(buf) < min(size, FIRST_READ):  # a regular file gives what its size says
                _check_regular(fd)
            while True:
                try:
                    return _fast(buf, size, fd)
                except _NeedMore:
                    if len(buf) >= size:  # the whole file is read and an element still runs past its end
                        raise HeaderError("truncated: the file ends inside a data element") from None
                    if len(buf) >= MAX_HEADER:
                        break
                    buf = os.pread(fd, min(size, max(len(buf) * 8, 1 << 20)), 0)
                except (_Unsupported, struct.error, UnicodeDecodeError, ValueError):
                    break
        finally:
            os.close(fd)
    except PermissionError as exc:
        raise HeaderError(f"cannot read the file: permission denied ({exc.strerror})") from None
    except IsADirectoryError:
        raise HeaderError("is a directory") from None
    except OSError as exc:
        raise HeaderError(f"cannot read the file: {exc.strerror or exc}") from None
    if notes is None:
        return read_header_pydicom(path, looks_dicom=buf[128:132] == b"DICM")
    with captured_warnings() as caught:
        record = read_header_pydicom(path, buf[128:132] == b"DICM", notes)
    notes += [f"pydicom: {w}" for w in caught]
    return record


def _fast(buf: bytes, size: int, fd: int) -> dict[str, Any]:
    if buf[128:132] != b"DICM":
        raise _Unsupported
    record: dict[str, Any] = {}
    # File meta: always explicit VR little endian.
    ts = ""
    pos = 132
    n = len(buf)
    while pos + 8 <= n:
        group, elem, vr, short = _EXPLICIT(buf, pos)
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            length = _U32(buf, pos + 8)[0]
            vpos = pos + 12
        else:
            length, vpos = short, pos + 8
        if vpos + length > n:
            raise _NeedMore
        if elem == 0x0010:
            ts = buf[vpos : vpos + length].rstrip(b"\x00 ").decode("ascii")
        pos = vpos + length
    else:
        raise _NeedMore
    if ts == IMPLICIT_LE:
        explicit = False
    elif ts == BIG_ENDIAN or ts in DEFLATED or not ts:
        raise _Unsupported
    else:
        explicit = True
    pixel_tag, vpos, length = _walk_windows(buf, pos, size, fd, explicit, record)
    _finish(record)
    record[TRANSFER_SYNTAX] = ts
    if pixel_tag is None:
        record[HAS_PIXELS] = False
        record[PIXEL_OFFSET] = None
        return record
    record[HAS_PIXELS] = True
    if length == UNDEFINED:  # encapsulated (compressed) frames
        record[PIXEL_OFFSET] = None
        _check_encapsulated_end(fd, vpos, size)
    else:
        if vpos + length > size:
            raise HeaderError(
                f"truncated: Pixel Data needs {length} bytes at offset {vpos}, the file ends after {size - vpos}"
            )
        record[PIXEL_OFFSET] = vpos if pixel_tag == _PIXEL_SW else None
    return record


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def _check_regular(fd: int) -> None:
    """Raise HeaderError when ``fd`` is not a regular file (a FIFO or device put in a file's place after the scan,
    which names each kind: scan.special_reason; header may not import scan, a module of its layer)."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise HeaderError("not a regular file (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file")


def _walk_windows(buf: bytes, pos: int, size: int, fd: int, explicit: bool,
                  record: dict[str, Any]) -> tuple[int | None, int, int]:
    """Walk the data set from ``pos`` of ``buf`` (the file's first bytes) and on through windows of the file:
    (swapped pixel tag or None, absolute value position, length). A window that ends inside an element is
    followed by one that starts at it; one element larger than the window grows it, up to MAX_HEADER."""
    if _scan is not None:  # the common case first, without the window loop: a file whose header is in buf
        status, pixel_tag, vpos, length = _scan.scan(buf, pos, size, explicit, record)
        if not status:
            return pixel_tag, vpos, length
    base = 0  # file offset of buf[0]
    while True:
        try:
            found = _walk(buf, pos, size - base, explicit, record)
        except _NeedMore as more:
            if more.at > pos:
                base, pos = base + more.at, 0
                buf = os.pread(fd, min(size - base, max(FIRST_READ, len(buf))), base)
                continue
            if len(buf) >= size - base - pos:  # the rest of the file is read: the element runs past its end
                raise HeaderError("truncated: the file ends inside a data element") from None
            if len(buf) >= MAX_HEADER:
                raise _Unsupported from None
            buf = os.pread(fd, min(size - base, max(len(buf) * 8, 1 << 20), MAX_HEADER), base + pos)
            base, pos = base + pos, 0
            continue
        return (found[0], base + found[1], found[2]) if found else (None, 0, 0)


def _walk(buf: bytes, pos: int, size: int, explicit: bool, record: dict[str, Any]):
    """One window of the walk: the C walk when built, else the Python one. ``size``: bytes of the file from
    buf[0]. Returns (swapped pixel tag, value position, length) or None; raises _NeedMore(at)."""
    if _scan is None:
        return (_top_explicit if explicit else _top_implicit)(buf, pos, record, size)
    status, pixel_tag, vpos, length = _scan.scan(buf, pos, size, explicit, record)
    if status:
        if status == _C_NEED_MORE:
            raise _NeedMore(vpos)
        if status == _C_UNSUPPORTED:
            raise _Unsupported
        raise HeaderError("truncated: the file ends inside a data element")
    return (pixel_tag, vpos, length) if pixel_tag is not None else None


def _check_encapsulated_end(fd: int, start: int, size: int) -> None:
    """Walk the fragment items of compressed Pixel Data (headers only) to see that the file holds them all.

    A missing final sequence delimiter at the very end of the file is tolerated, as pydicom and DCMTK do."""
    pos = start
    while pos + 8 <= size:
        head = os.pread(fd, 8, pos)
        group, elem, length = _IMPLICIT(head, 0)
        if group != 0xFFFE or elem not in (0xE000, 0xE0DD):
            raise HeaderError(f"corrupt: compressed Pixel Data has no fragment item at offset {pos}")
        pos += 8
        if elem == 0xE0DD:
            return
        if length == UNDEFINED or pos + length > size:
            raise HeaderError(f"truncated: a compressed Pixel Data fragment at offset {pos - 8} runs past the end "
                              f"of the file")
        pos += length
    if pos != size:
        raise HeaderError("truncated: the file ends inside compressed Pixel Data")


# The C walk (dicomtui/core/_scan.c), when it was compiled; the Python walk (header_walk.py) is the reference.
_C_NEED_MORE, _C_UNSUPPORTED = 1, 2
_C_KINDS = {"str": 0, "multi": 2, "int": 3, "float": 4, "us": 5, "fd": 6, "fdm": 6, "pn": 0}


def _load_scan():
    if os.environ.get("DICOMTUI_PURE_PYTHON") == "1":
        return None
    try:
        from . import _scan as module
    except ImportError:
        return None
    module.configure([(_swap(tag), 1 if kw in _TEXT_KEYWORDS else _C_KINDS[kind], kw)
                      for kw, (tag, kind) in FIELDS.items()])
    return module


_scan = _load_scan()
_NONES = itertools.repeat(None)


def _present(row: tuple) -> tuple[bytes, tuple]:
    """(mask, values) of ``row``: ``mask`` holds 1 where an item is not None, ``values`` those items in order.
    The database writer names only a row's present columns (binding a None costs the sqlite3 module an adapter
    lookup, ~0.3 µs each); the C twin (``_scan.present``) takes ~0.2 µs a row, this one ~2."""
    flags = tuple(map(operator.is_not, row, _NONES))
    return bytes(flags), tuple(itertools.compress(row, flags))


present = _scan.present if _scan is not None else _present


# A file without the PS3.10 header is handed to pydicom (``force=True``) only when its first element is one a
# bare data set starts with: group 0002 (a file meta group written without preamble), 0004 (a DICOMDIR) or 0008
# (the first group of every IOD, PS3.3 C.12.1), little or big endian, followed by a VR (explicit) or by a length
# that fits in the file (implicit). Anything else is "not a DICOM file" from its first 8 bytes: pydicom, forced,
# reads a 100 MB file of zeros as 12.5 million empty (0000,0000) elements (29 s) and random bytes as values of
# random lengths (a 1 GB file: 1.1 GB of memory).
_FIRST_GROUPS = frozenset((0x0002, 0x0004, 0x0008))
_VRS = _SHORT_VRS | _LONG_VRS
NOT_DICOM = "not a DICOM file (no DICM prefix and no plausible first data element)"
# Values larger than this are not read by the pydicom fallback (pydicom's defer_size): none of FIELDS is (short
# VRs hold at most 64 KiB, PS3.5 7.1.2); a larger one is a damaged length, reported, never loaded.
DEFER_SIZE = 1 << 16


def plausible_start(head: bytes, size: int) -> bool:
    """Whether the first bytes ``head`` (>= 8) of a file of ``size`` bytes without ``DICM`` can start a bare data
    set (see :data:`_FIRST_GROUPS`)."""
    if len(head) < 8:
        return False
    if head[0] | head[1] << 8 in _FIRST_GROUPS:
        return head[4:6] in _VRS or 8 + _U32(head, 4)[0] <= size
    return head[0] << 8 | head[1] in _FIRST_GROUPS and head[4:6] in _VRS  # big endian is always explicit VR


def read_header_pydicom(path: str, looks_dicom: bool = True, notes: list[str] | None = None) -> dict[str, Any]:
    """The same record through pydicom: slower, but it reads every encoding pydicom knows.

    Bounded as the fast walk is: reading stops at Pixel Data (whose length is checked against the file size and
    the image attributes, never read), values larger than :data:`DEFER_SIZE` are skipped, and a file without
    ``DICM`` whose first element is not plausible (:func:`plausible_start`) is refused from its first bytes.
    Reading also stops at damage pydicom would read through: a top-level tag not above the one before (PS3.5 7.1:
    ascending order; a shifted walk reads tags out of order, a run of zeros reads (0000,0000) forever) or a value
    running past the end of the file; ``notes`` then receives what could not be read. Raises :class:`HeaderError`.
    """
    walk = _Walk()
    try:
        with open(path, "rb", opener=_open_nonblocking) as f:
            _check_regular(f.fileno())
            size = os.fstat(f.fileno()).st_size
            head = f.read(4096)
            if not looks_dicom and not plausible_start(head, size):
                raise HeaderError(NOT_DICOM)
            _check_command_group(head)
            from pydicom.filereader import read_partial  # after the checks: importing pydicom takes 0.2 s

            f.seek(0)
            walk.start(f, size, deflated=any(uid.encode() in head for uid in DEFLATED))
            ds = read_partial(f, walk.stop_when, defer_size=DEFER_SIZE, force=not looks_dicom)
            if not looks_dicom and len(ds) == 0:
                raise HeaderError("not a DICOM file (no DICM prefix and no readable data elements)")
            record = _from_dataset(ds)
            if walk.pixel:
                _check_pixel_length(ds, f.fileno(), size, *walk.pixel)
    except HeaderError:
        raise
    except OSError as exc:
        raise HeaderError(f"cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on corrupt input; each is "unreadable"
        if type(exc).__name__ == "InvalidDicomError":  # pydicom.errors, not imported before it is needed
            raise HeaderError(f"not a DICOM file ({exc})") from None
        raise HeaderError(f"unreadable or corrupt DICOM: {type(exc).__name__}: {exc}") from None
    record[HAS_PIXELS] = walk.pixel is not None
    if not looks_dicom and not record.get("SOPInstanceUID") and not record.get("StudyInstanceUID"):
        raise HeaderError("not a DICOM file (no DICM prefix, no DICOM identifiers)")
    if walk.damage and notes is not None:
        notes.append(walk.damage + ("; Pixel Data not found" if walk.pixel is None else ""))
    return record


def _check_command_group(head: bytes) -> None:
    """Refuse a data set that starts with group 0000, the command group of PS3.7 E.1 that no stored data set
    holds: pydicom reads such elements one by one before the data set (a run of zeros after ``DICM`` is
    (0000,0000) elements of length 0: a 100 MB file took 30 s)."""
    layout = layout_of(head)
    if layout is not None and head[layout.dataset_offset:layout.dataset_offset + 2] == b"\0\0":
        raise HeaderError(f"not importable: the data set at offset {layout.dataset_offset} starts with a command "
                          "element (0000,xxxx), which no stored data set holds (damaged or zeroed bytes)")


class _Walk:
    """pydicom's ``stop_when`` for the top level of a data set: stops at Pixel Data (kept as ``pixel``: tag,
    value position, length) and at damage (``damage``: the sentence)."""

    def __init__(self) -> None:
        self.pixel: tuple[int, int, int] | None = None
        self.damage = ""
        self._prev = -1
        self._prev_at = 0
        self._calls = 0

    def start(self, f, size: int, deflated: bool) -> None:
        self._f, self._size, self._deflated = f, size, deflated

    def stop_when(self, tag: int, vr: str | None, length: int) -> bool:
        at = self._f.tell()  # the value's position (pydicom asks once more, first, for the first element)
        self._calls += 1
        if tag == PIXEL_DATA or tag in FLOAT_PIXEL_DATA:
            self.pixel = (tag, at, length)
            return True
        if tag < self._prev or (tag == self._prev and self._calls > 2):
            self.damage = (f"{self._after()} comes {_tag(tag)}, out of order (PS3.5 7.1): damaged bytes at "
                           f"offset {at - 8} or a wrong length before them; the elements after it were not read")
            return True
        if not self._deflated and length != UNDEFINED and at + length > self._size:
            self.damage = (f"{self._after()} the element {_tag(tag)} at offset {at - 8} runs past the end of the "
                           f"file ({length} bytes, {self._size - at} left); the elements from it on were not read")
            return True
        self._prev, self._prev_at = tag, at
        return False

    def _after(self) -> str:
        return f"after the element {_tag(self._prev)}" if self._prev >= 0 else "first"


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _from_dataset(ds) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for kw, (tag, kind) in FIELDS.items():
        raw = ds.get_item(tag)
        if raw is not None and raw.value is None and int(getattr(raw, "length", 0)):
            continue  # deferred: longer than any value of FIELDS can be (a damaged length), never loaded
        if raw is not None and _SPEC_KW[kw][2] and mis_decoded_by_pydicom(raw.value):
            record[kw] = raw.value  # pydicom 3.0.2 keeps ISO 2022 IR 58 escapes: _finish decodes it (charsets)
            continue
        elem = ds.get(tag)
        if elem is None or elem.value is None or elem.value == "":
            continue
        value = elem.value
        if isinstance(value, bytes):  # an element pydicom could not type (VR UN): decode as the fast path does
            record[kw] = _SPEC_KW[kw][1](value)
        elif kind in ("us", "fd"):
            first = value[0] if isinstance(value, Sequence) else value
            record[kw] = int(first) if kind == "us" else float(first)
        elif kind == "fdm":
            vals = value if isinstance(value, Sequence) else [value]
            record[kw] = "\\".join(_num(v) for v in vals) or None
        else:
            if isinstance(value, Sequence) and not isinstance(value, str):
                text = "\\".join(str(v) for v in value)
            else:
                text = str(value)
            record[kw] = convert(kind, text)
    _finish(record)  # the values left in bytes above, as the fast walk decodes them
    meta = getattr(ds, "file_meta", None)
    record[TRANSFER_SYNTAX] = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not record[TRANSFER_SYNTAX]:  # no file meta: the encoding pydicom found (PS3.5 A.1–A.3), not a guess
        record[TRANSFER_SYNTAX] = _BY_ENCODING.get(getattr(ds, "original_encoding", None) or (True, True),
                                                   IMPLICIT_LE)
    record[HAS_PIXELS] = any(t in ds for t in (PIXEL_DATA, *FLOAT_PIXEL_DATA))
    record[PIXEL_OFFSET] = None
    return record


def _check_pixel_length(ds, fd: int, size: int, tag: int, vpos: int, length: int) -> None:
    """The Pixel Data element at ``vpos`` (not read) is whole: its fragments are in the file (encapsulated), or
    its length fits in the file and covers what the image attributes need (pydicom silently accepts a file cut
    inside Pixel Data). Positions are those of the file, so a deflated data set is not checked."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is not None and ts.is_deflated:
        return
    if length == UNDEFINED:
        _check_encapsulated_end(fd, vpos, size)
        return
    if vpos + length > size:
        raise HeaderError(
            f"truncated: Pixel Data needs {length} bytes at offset {vpos}, the file ends after {size - vpos}"
        )
    if tag != PIXEL_DATA or (ts is not None and ts.is_encapsulated):
        return
    from pydicom.pixels.utils import get_expected_length

    try:
        expected = int(get_expected_length(ds, unit="bytes"))
    except (AttributeError, KeyError, TypeError, ValueError):
        return  # not enough image attributes to say
    if length < expected:
        raise HeaderError(f"truncated: Pixel Data holds {length} of the {expected} bytes the image needs")
