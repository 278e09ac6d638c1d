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

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .tagpath import TagPath, set_value
from .vr import UTF8_CHARSET

DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
_LONG_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"))

# (path, VR, new text) of one edit
Setting = tuple[TagPath, str, str]


def read_head(path: Path, last_tag: int) -> tuple[Any, int]:
    """The data set of ``path`` read up to ``last_tag`` (included; values raw, pixel data never read) and the
    byte offset of the first element after it (where reading stopped). Raises OSError and pydicom's errors."""
    from pydicom.filereader import read_partial

    with open(path, "rb") as fp:
        ds = read_partial(fp, stop_when=lambda tag, vr, length: tag > last_tag, force=True)
        return ds, fp.tell()


def splice_possible(ds: Any, settings: Sequence[Setting]) -> bool:
    """Whether the fast path can write these settings into the file ``ds`` was read from."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax or syntax in (DEFLATED, BIG_ENDIAN):
        return False
    groups = {p.top >> 16 for p, _, _ in settings}
    if any((g << 16) in ds for g in groups):  # a group length (retired, PS3.5 7.2) would go stale
        return False
    for p, _, _ in settings:
        if p.nested or p.top == 0x00080005:
            return False
        if p.top in ds:
            raw = ds.get_item(p.top)
            if getattr(raw, "value_tell", None) is None or getattr(raw, "is_undefined_length", False) \
                    or raw.length == 0xFFFFFFFF:
                return False
    return True


def write_spliced(source: Path, ds: Any, stop: int, settings: Sequence[Setting], dest: Path) -> None:
    """Write ``source`` with ``settings`` applied into ``dest`` by the fast path (``ds`` and ``stop`` from
    :func:`read_head`; :func:`splice_possible` must hold)."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    implicit, little = ds.original_encoding
    charsets = ds.original_character_set
    pieces: list[tuple[int, int, bytes]] = []  # (start, end) of the source replaced by bytes
    for p, vr, text in sorted(settings, key=lambda s: s[0].top):
        holder = Dataset()
        set_value(holder, p, vr, text)
        buf = DicomBytesIO()
        buf.is_implicit_VR, buf.is_little_endian = implicit, little
        write_data_element(buf, holder[p.top], charsets)
        if p.top in ds:
            raw = ds.get_item(p.top)
            start, end = raw.value_tell - _head_length(raw, implicit), raw.value_tell + raw.length
        else:  # inserted before the first element after it (iterating a Dataset yields elements, not tags)
            after = [t for t in sorted(ds.keys()) if t > p.top]  # noqa: SIM118
            nxt = ds.get_item(after[0]) if after else None
            start = end = stop if nxt is None else nxt.value_tell - _head_length(nxt, implicit)
        pieces.append((start, end, buf.getvalue()))
    with open(source, "rb") as src, open(dest, "wb") as out:
        at = 0
        for start, end, data in pieces:
            out.write(src.read(start - at))
            out.write(data)
            src.seek(end)
            at = end
        shutil.copyfileobj(src, out, 1 << 20)


def _head_length(raw: Any, implicit: bool) -> int:
    return 8 if implicit or raw.VR not in _LONG_VRS else 12


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

    for p, vr, text in settings:
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
