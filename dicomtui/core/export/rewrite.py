"""One file written again with some elements changed: the bytes the edit does not touch are copied as they are.

The fast path (top-level elements of defined length in a little-endian, not deflated Part-10 file, no group
length in a group edited): the file's head is read by pydicom up to the last element edited (``read_partial``
with ``stop_when``; the values read stay raw), each edited element is encoded by pydicom (``write_data_element``
with the file's encoding and character set) and spliced in at the byte offset pydicom recorded (``value_tell``),
and the rest of the file (pixel data included) is copied without being parsed. Everything else (sequences,
a new Specific Character Set that transcodes the text, new UIDs, bare data sets) goes through a full pydicom
read and write, whose result the fast path must equal (``tests/test_edit.py`` compares them).

Hand-written splicing rather than ``dcmread``/``save_as`` per file because an edit of a 300-file series is
mostly the cost of parsing and writing elements nobody changed: the issue asks for ≥ 2× the plain pydicom loop.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .head_walk import Head, head_of_dataset, walk_head
from .tagpath import EditError, TagPath, private_creator_of, private_moves, relocate, set_value
from .vr import UTF8_CHARSET

DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"

# (path, VR, new text) of one edit; None as the text: the element deleted
Setting = tuple[TagPath, str, str | None]


def read_head(path: Path, last_tag: int) -> Head:
    """The head of ``path`` read up to ``last_tag`` (included; values raw, pixel data never read): by the hand walk
    (:func:`.head_walk.walk_head`) when the file is the plain case, else by pydicom's ``read_partial``. Raises
    OSError and pydicom's errors."""
    from pydicom.filereader import read_partial

    walked = walk_head(path, last_tag)
    if walked is not None:
        return walked
    with open(path, "rb") as fp:
        ds = read_partial(fp, stop_when=lambda tag, vr, length: tag > last_tag, force=True)
        return head_of_dataset(ds, fp.tell())


# how pydicom converts a text VR (``pydicom.values``), for the raw ASCII shortcut of :func:`head_text`:
# "whole": the value's trailing NUL/space stripped then split (multi_string, convert_UI, convert_PN);
# "each": split, then each value's trailing NUL/space stripped (convert_text); "strip": split, each value
# stripped of surrounding white space (convert_AE_string); "single": one value, trailing NUL/space stripped
_TEXT_RULE = {"AS": "whole", "CS": "whole", "DA": "whole", "DT": "whole", "TM": "whole", "UI": "whole",
              "PN": "whole", "SH": "each", "LO": "each", "UC": "each", "AE": "strip",
              "LT": "single", "ST": "single", "UT": "single"}


def head_text(head: Head, tag: int, vr: str | None = None) -> str | None:
    """A top-level element of a head as the editor shows it (:func:`.tagpath.as_text`: values joined by ``\\``),
    None when absent. A raw ASCII value of a text VR is decoded here by pydicom's own rules (``_TEXT_RULE``; the
    same text for every character set, ISO 2022 escapes excluded); anything else through pydicom's conversion.
    ``vr``: the VR to decode with when the file gives none (implicit VR, private: ``(0011,1001)LO``).
    Why: converting the values the plan shows was its largest cost (``tests/test_edit_head_walk.py`` holds the
    two ways equal on pydicom's test files)."""
    entry = head.raw.get(tag)
    if entry is None:
        return None
    value = entry[1]
    vr = entry[0] or _dictionary_vr(tag) or vr or ""
    rule = _TEXT_RULE.get(vr)
    if (value is None or rule is None or not value.isascii() or b"\x1b" in value
            or (vr in ("DA", "DT", "TM") and _datetime_conversion())):
        from .tagpath import as_text

        return as_text(head.ds[tag].value)
    text = value.decode("ascii")
    if rule in ("whole", "single"):
        return text.rstrip("\0 ")
    if rule == "each":
        return "\\".join(v.rstrip("\0 ") for v in text.split("\\"))
    return "\\".join(v.strip() for v in text.split("\\"))


def _datetime_conversion() -> bool:
    from pydicom import config

    return bool(config.datetime_conversion)


@functools.lru_cache(maxsize=1024)
def _dictionary_vr(tag: int) -> str:
    """The VR of an implicit VR element (PS3.6), "" for a private or unknown tag."""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag) if tag >> 16 & 1 == 0 else ""
    except KeyError:
        return ""


@functools.lru_cache(maxsize=64)
def _tag_of(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def head_uid(head: Head, keyword: str) -> str:
    """A top-level element of a head named by ``keyword`` as text (:func:`head_text`), "" when absent."""
    tag = _tag_of(keyword)
    return "" if tag is None else head_text(head, tag) or ""


def head_vr(head: Head, path: TagPath) -> str | None:
    """The VR an edit of ``path`` writes (:func:`.tagpath.element_vr`), from the element's explicit VR when it has
    one (no value converted)."""
    from .tagpath import element_vr

    if not path.nested and path.top in head.raw:
        vr = head.raw[path.top][0]
        if vr is not None and vr != "UN":
            return vr
    return element_vr(head.ds, path)


def place_private(head: Head, settings: Sequence[Setting]) -> list[Setting]:
    """``settings`` with their private tags moved to where this file's blocks lie (:func:`.tagpath.private_moves`:
    the block of a private creator the edit sets is the one the file holds it in, else a free one). Raises
    EditError for a private element whose creator neither the file nor the edit holds (PS3.5 7.8.1)."""
    creators = {p.top: text for p, _, text in settings
                if text and not p.nested and private_creator_of(p.top) == p.top}
    moves = private_moves(creators, lambda tag: head_text(head, tag)) if creators else {}
    out = []
    for p, vr, text in settings:
        creator = None if p.nested else private_creator_of(p.top)
        if creator not in (None, p.top) and text is not None and creator not in creators and creator not in head.raw:
            raise EditError(f"{p.text}: a private element needs its private creator (PS3.5 7.8.1); set it too, "
                            f"as --set '({creator >> 16:04X},{creator & 0xFFFF:04X})=CREATOR'")
        out.append((relocate(p, moves), vr, text))
    return out


def last_tag(paths: Iterable[TagPath]) -> int:
    """How far a head must be read for an edit of ``paths``: the last top-level tag, or the end of the group of a
    private one (its block may move, :func:`place_private`)."""
    return max((p.top | 0xFFFF if private_creator_of(p.top) is not None else p.top for p in paths), default=0)


def splice_possible(head: Head, settings: Sequence[Setting]) -> bool:
    """Whether the fast path can write these settings into the file ``head`` was read from."""
    syntax = head.syntax
    if not syntax or syntax in (DEFLATED, BIG_ENDIAN):
        return False
    groups = {p.top >> 16 for p, _, _ in settings}
    if any((g << 16) in head.spans for g in groups):  # a group length (retired, PS3.5 7.2) would go stale
        return False
    return all(not p.nested and p.top != 0x00080005 and (p.top not in head.spans or head.spans[p.top])
               for p, _, _ in settings)


def write_spliced(source: Path, head: Head, settings: Sequence[Setting], dest: Path, *,
                  keep_source: bool = False) -> int:
    """Write ``source`` with ``settings`` applied into ``dest`` by the fast path (``head`` from
    :func:`read_head`; :func:`splice_possible` must hold). Returns the descriptor of ``source``, left open for the
    caller to close, when ``keep_source`` (the edit holds the old file so that its unlink frees no blocks), else
    -1."""
    implicit, little, charsets = head.implicit, head.little, head.character_set
    tags = sorted(head.spans)
    pieces: list[tuple[int, int, bytes]] = []  # (start, end) of the source replaced by bytes
    for p, vr, text in sorted(settings, key=lambda s: s[0].top):
        span = head.spans.get(p.top)
        if span is not None:
            start, end = span
        else:  # inserted before the first element after it
            after = next((t for t in tags if t > p.top), None)
            start = end = head.stop if after is None else head.spans[after][0]  # type: ignore[index]
        if text is None:  # deleted: its bytes left out (nothing to do when the file does not hold it)
            if span is not None:
                pieces.append((start, end, b""))
            continue
        pieces.append((start, end, encoded(p, vr, text, bool(implicit), bool(little), charsets)))
    src = os.open(source, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        tail = max((end for _, end, _ in pieces), default=0)  # the bytes after it are copied, not read
        old = os.pread(src, tail, 0)
        parts, at = [], 0
        for start, end, data in pieces:
            parts += [old[at:start], data]
            at = end
        parts.append(old[at:tail])
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(out, b"".join(parts))
            _copy_tail(src, out, tail, size - tail)
            start_writeback(out)
        finally:
            os.close(out)
    except BaseException:
        os.close(src)
        raise
    if keep_source:
        return src
    os.close(src)
    return -1


@functools.lru_cache(maxsize=256)
def encoded(path: TagPath, vr: str, text: str, implicit: bool, little: bool,
            charsets: str | tuple[str, ...] | None) -> bytes:
    """The bytes of one top-level element as pydicom writes it (tag, VR, length, padded value): the same for
    every file of a series, so encoded once (``charsets``: the file's Specific Character Set, as read)."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    holder = Dataset()
    set_value(holder, path, vr, text)
    buf = DicomBytesIO()
    buf.is_implicit_VR, buf.is_little_endian = implicit, little
    write_data_element(buf, holder[path.top], list(charsets) if isinstance(charsets, tuple) else charsets)
    return buf.getvalue()


@functools.cache
def _sync_file_range() -> Any:
    try:
        import ctypes

        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return call


def start_writeback(fd: int) -> None:
    """Start writing the file's dirty pages to disk without waiting (Linux ``sync_file_range`` with
    ``SYNC_FILE_RANGE_WRITE``; nothing elsewhere), so that the batch's ``syncfs`` finds most of them written: the
    disk works while the next files are copied. No durability by itself (no metadata, no disk cache flush)."""
    call = _sync_file_range()
    if call is not None:
        call(fd, 0, 0, 2)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_tail(src: int, out: int, offset: int, count: int) -> None:
    """Bytes ``offset`` to ``offset + count`` of ``src`` appended to ``out`` (both raw descriptors): in the kernel
    (``copy_file_range``; a reflink where the file system shares blocks) when it can, else through a buffer."""
    try:
        while count > 0:
            done = os.copy_file_range(src, out, count, offset)
            if done == 0:
                return
            offset += done
            count -= done
        return
    except OSError:  # not supported here (another file system, an old kernel): copy through a buffer
        pass
    while count > 0 and (chunk := os.pread(src, min(count, 1 << 20), offset)):
        _write_all(out, chunk)
        offset += len(chunk)
        count -= len(chunk)


def write_full(source: Path, settings: Sequence[Setting], dest: Path,
               change: Callable[[Any], None] | None = None, utf8: bool = False) -> None:
    """Write ``source`` with ``settings`` applied into ``dest`` through a full pydicom read and write. ``change``
    (the data set → None) runs after the settings (new UIDs). ``utf8``: every text value decoded in the file's
    character set, then the set changed to ISO_IR 192 before the settings, so that pydicom encodes all of them
    in UTF-8 (PS3.5 6.1.2.5). Group lengths of the groups
    changed are dropped (retired, PS3.5 7.2); a bare data set gets a file meta (PS3.10 7.1)."""
    from pydicom import dcmread

    ds = dcmread(source, force=True)
    if utf8:
        ds.decode()
        ds.SpecificCharacterSet = UTF8_CHARSET
    apply_settings(ds, settings, change)
    ds.save_as(dest, enforce_file_format=True)


def apply_settings(ds: Any, settings: Sequence[Setting], change: Callable[[Any], None] | None = None) -> None:
    """The edit applied to a full pydicom data set in memory (what :func:`write_full` writes)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    from .tagpath import _parent

    for p, vr, text in settings:
        if text is None:  # deleted, where the file holds it
            parent = _parent(ds, p, create=False)
            if parent is not None and p.tag in parent:
                del parent[p.tag]
        else:
            set_value(ds, p, vr, text)
        if (p.top >> 16 << 16) in ds:
            del ds[p.top >> 16 << 16]
    if change is not None:
        change(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        implicit = ds.original_encoding[0] if ds.original_encoding[0] is not None else True
        meta = ds.file_meta = FileMetaDataset(meta or {})
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
