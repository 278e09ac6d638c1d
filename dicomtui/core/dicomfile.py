"""Open a stored DICOM file the way the import read it: every reader of an indexed file comes here.

A file may lack the PS3.10 7.1 header (128-byte preamble, ``DICM``, the file meta group): old scanners and some
PACS exports write the bare data set. The import's header walk accepts such a file (pydicom reads it with
``force=True`` and guesses its encoding from its first element); so must every later reader, and only those: a
file that did not pass the walk is not forced. :func:`layout_of` says where the data set starts and in which
transfer syntax (from the file meta, else guessed as pydicom does); :func:`read_dataset` gives the pydicom data
set with a usable ``file_meta``; :func:`file_meta` writes the header we give a file (copies, received files).

pydicom and its decoders report oddities as Python warnings ("Expected explicit VR, but found implicit VR"),
which would print raw on stderr with a site-packages path: :func:`captured_warnings` collects them, per thread,
for the caller to report with the file's name.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
# A fixed UID under pydicom's root (pydicom.uid.generate_uid(entropy_srcs=["dicomtui implementation"]))
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.10155331945626853729602317572875953617"
IMPLEMENTATION_VERSION = "DICOMTUI"

# What an import in copy mode says about a file it stored with a PS3.10 header the source did not have
META_WRITTEN = "no file meta (PS3.10 7.1) in the source: the copy has a preamble and one written"
HEAD_SIZE = 1 << 16  # bytes read to find the data set: a file meta group is far smaller
PREAMBLE = 128  # PS3.10 7.1: 128 bytes, then "DICM", then the file meta group
# Every VR of PS3.5 6.2: two such letters after the first tag mean explicit VR (pydicom's guess, filereader.py)
_VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US "
                 b"UT UV".split())
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"UV"))
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")


@dataclass(frozen=True)
class Layout:
    """Where a file's data set starts (``dataset_offset``, bytes) and its transfer syntax; ``has_meta``: the file
    has the PS3.10 header (preamble, ``DICM``, file meta). Without it the syntax is guessed from the first element
    as pydicom guesses it: explicit VR when a VR follows the tag, big endian when the group reads >= 1024."""

    dataset_offset: int
    transfer_syntax: str
    has_meta: bool


def layout_of(head: bytes) -> Layout | None:
    """The layout of a file from its first bytes (up to :data:`HEAD_SIZE`); None when its file meta group runs
    past them or is malformed."""
    if len(head) >= PREAMBLE + 4 and head[PREAMBLE:PREAMBLE + 4] == b"DICM":
        found = _meta_group(head, PREAMBLE + 4)
        if found is None:
            return None
        pos, transfer = found
        return Layout(pos, transfer or _guess(head, pos), True)
    # No preamble: pydicom still reads a file meta group at the very start (written without its header)
    found = _meta_group(head, 0) if head[:2] == b"\2\0" else (0, "")
    if found is None:
        return None
    pos, transfer = found
    return Layout(pos, transfer or _guess(head, pos), False)


def read_layout(path: str | os.PathLike[str]) -> Layout | None:
    """:func:`layout_of` the file at ``path``. Raises OSError."""
    with open(path, "rb") as f:
        return layout_of(f.read(HEAD_SIZE))


def _meta_group(head: bytes, pos: int) -> tuple[int, str] | None:
    """Walk the group 0002 elements from ``pos`` (explicit VR little endian, PS3.10 7.1): (end, transfer syntax)."""
    transfer = ""
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 2:
            return pos, transfer
        vr = head[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(head):
                return None
            length = _U32.unpack_from(head, pos + 8)[0]
            value_at = pos + 12
        elif vr in _VRS:
            length = _U16.unpack_from(head, pos + 6)[0]
            value_at = pos + 8
        else:  # implicit VR meta elements (written by some old tools)
            length = _U32.unpack_from(head, pos + 4)[0]
            value_at = pos + 8
        if length == 0xFFFFFFFF or value_at + length > len(head):
            return None
        if element == 0x10:
            transfer = head[value_at : value_at + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = value_at + length
    if len(head) >= HEAD_SIZE:
        return None  # a meta group longer than the head: not a file we understand
    return pos, transfer


def _guess(head: bytes, pos: int) -> str:
    """pydicom's guess of the encoding of a data set without a Transfer Syntax UID (``filereader.read_partial``)."""
    if pos + 6 > len(head) or head[pos + 4 : pos + 6] not in _VRS:
        return IMPLICIT_LE
    return EXPLICIT_BE if _U16.unpack_from(head, pos)[0] >= 1024 else EXPLICIT_LE


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str = "") -> bytes:
    """Preamble, ``DICM`` and the file meta information group (explicit VR little endian, PS3.10 7.1), as
    pydicom's ``write_file_meta_info`` writes it — built by hand: pydicom takes ~0.2 ms, a fifth of a small
    image's budget in the SCP. Our Implementation Class UID and version name; Source AE Title when given."""
    def short(tag: int, vr: bytes, value: bytes) -> bytes:
        return _U16.pack(2) + _U16.pack(tag) + vr + _U16.pack(len(value)) + value

    body = (_U16.pack(2) + _U16.pack(1) + b"OB\0\0" + _U32.pack(2) + b"\0\1"
            + short(2, b"UI", pad(sop_class.encode(), b"\0"))
            + short(3, b"UI", pad(sop_instance.encode(), b"\0"))
            + short(0x10, b"UI", pad(transfer_syntax.encode(), b"\0"))
            + short(0x12, b"UI", pad(IMPLEMENTATION_UID.encode(), b"\0"))
            + short(0x13, b"SH", pad(IMPLEMENTATION_VERSION.encode(), b" ")))
    if source_ae:
        body += short(0x16, b"AE", pad(source_ae.encode("ascii", "replace"), b" "))
    return b"\0" * PREAMBLE + b"DICM" + short(0, b"UL", _U32.pack(len(body))) + body


def part10_head(path: str | os.PathLike[str], sop_class: str, sop_instance: str) -> tuple[bytes, int, str] | None:
    """For a file without the PS3.10 header: (the header to write in front of its data set, the bytes of the file
    to leave out, the transfer syntax written) — None for a file that has one (or that cannot be read: its copy
    will say why)."""
    try:
        layout = read_layout(path)
    except OSError:
        return None
    if layout is None or layout.has_meta:
        return None
    return file_meta(sop_class, sop_instance, layout.transfer_syntax), layout.dataset_offset, layout.transfer_syntax


def pad(value: bytes, padding: bytes) -> bytes:
    """``value`` padded to an even length with ``padding`` (NUL for UI, space for text VRs; PS3.5 6.2)."""
    return value + padding if len(value) % 2 else value


# ---- opening with pydicom ------------------------------------------------------------------------------------

@dataclass
class Opened:
    """A file read by pydicom: ``dataset`` (its ``file_meta`` holds at least the Transfer Syntax UID, also for a
    file without a file meta group), whether the file has the PS3.10 header, whether ``file_meta`` holds only what
    we added (``meta_added``: the file has no group 0002 at all), and the library's warnings."""

    dataset: Any
    has_meta: bool
    warnings: list[str] = field(default_factory=list)
    meta_added: bool = False

    @property
    def transfer_syntax(self) -> str:
        return str(self.dataset.file_meta.TransferSyntaxUID)


def read_dataset(path: str | os.PathLike[str], *, pixels: bool = False, defer_size: int | None = None,
                 accepted: bool = True) -> Opened:
    """The pydicom data set of the file at ``path``: the header only, or with Pixel Data (``pixels``); values
    larger than ``defer_size`` bytes are read when used. ``accepted``: the file passed the import's header walk
    (every indexed file did), so a file without the PS3.10 header is read with ``force=True`` as the walk read
    it; else pydicom's verdict stands. The library's warnings are in ``Opened.warnings``, not on stderr.
    Raises what pydicom raises (InvalidDicomError, OSError, …): the caller words it for its user."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with captured_warnings() as caught:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels, defer_size=defer_size)
            has_meta = True
        except InvalidDicomError:
            if not accepted:
                raise
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels, defer_size=defer_size, force=True)
            has_meta = False
        added = _complete_meta(ds)
    return Opened(ds, has_meta, caught, added)


def _complete_meta(ds: Any) -> bool:
    """Give a data set read without a Transfer Syntax UID the one pydicom read it with (its decoders need it);
    True when its file meta held nothing before."""
    from pydicom.dataset import FileMetaDataset

    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in ds.file_meta:
        return False
    empty = len(ds.file_meta) == 0
    implicit, little = ds.original_encoding
    ds.file_meta.TransferSyntaxUID = IMPLICIT_LE if implicit else EXPLICIT_LE if little else EXPLICIT_BE
    return empty


def read_for_sending(path: str | os.PathLike[str], *, accepted: bool = False) -> tuple[bytes, Layout] | None:
    """The bytes of the file at ``path`` and its layout, for sending its data set as it is (after
    ``dataset_offset``); None when the file has no file meta we can walk — or no PS3.10 header at all and is
    not ``accepted`` (see :func:`read_dataset`). Raises OSError."""
    with open(path, "rb") as f:
        data = f.read()
    layout = layout_of(data[:HEAD_SIZE])
    if layout is None or not (layout.has_meta or accepted):
        return None
    return data, layout


# ---- the library's warnings ----------------------------------------------------------------------------------

_local = threading.local()  # .stack: the lists of the captures open in this thread, innermost last
_lock = threading.Lock()
_state: dict[str, Any] = {"open": 0, "show": None}
_ALWAYS = ("always", None, Warning, None, 0)


@contextlib.contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect the Python warnings raised in this thread inside the block (their text, each once) into the list
    yielded, instead of printing them. Safe in threads, unlike ``warnings.catch_warnings`` (which swaps
    process-wide state): other threads' warnings go where they went before. Captures nest."""
    caught: list[str] = []
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(caught)
    _open()
    try:
        yield caught
    finally:
        stack.pop()
        _close()


def _open() -> None:
    with _lock:
        _state["open"] += 1
        if _state["open"] == 1:
            _state["show"] = warnings.showwarning
            warnings.showwarning = _show
            # "always": each file's warning is seen (the default filter shows a message once per code location)
            cast(list, warnings.filters).insert(0, _ALWAYS)
            _filters_mutated()


def _close() -> None:
    with _lock:
        _state["open"] -= 1
        if _state["open"] == 0:
            if warnings.showwarning is _show:
                warnings.showwarning = _state["show"]
            with contextlib.suppress(ValueError):  # another thread's catch_warnings may have replaced the list
                cast(list, warnings.filters).remove(_ALWAYS)
            _filters_mutated()


def _filters_mutated() -> None:
    mutated = getattr(warnings, "_filters_mutated", None)  # what warnings.simplefilter calls: caches are reset
    if mutated is not None:
        mutated()


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
          line: str | None = None) -> None:
    stack = getattr(_local, "stack", None)
    if stack:
        text = str(message)
        if text not in stack[-1]:
            stack[-1].append(text)
        return
    previous = _state["show"] or warnings.showwarning
    if previous is not _show:
        previous(message, category, filename, lineno, file, line)
