"""Every tag of one DICOM file as display rows, for the metadata viewer and ``dicomtui show``.

A file becomes a flat list of :class:`TagRow` in depth-first order (file meta group first); a sequence is a row
followed by its "Item N" rows and their elements, so a UI can indent by ``depth`` and fold by ``path``. Values are
display text: pydicom decodes them (SpecificCharacterSet included), this module only shortens and escapes them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .dicomfile import Opened, captured_warnings, read_dataset
from .errors import MetadataError
from .text import printable

# A path step: an element's (group, element), or the 0-based index of a sequence item.
PathStep = tuple[int, int] | int

DEFAULT_MAX_VALUE_LEN = 256
DEFER_SIZE = 4096  # bytes: larger values are not read with the header (only their first bytes are, on display)
BYTES_PREVIEW = 16  # how many leading bytes of a binary value are shown in hex
BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"})
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
ITEM_TAG = "(FFFE,E000)"



@dataclass(frozen=True)
class TagRow:
    """One line of the metadata tree: an element, or an item of a sequence (``path`` ends with its index)."""

    depth: int
    tag: str
    keyword: str
    vr: str
    value: str
    path: tuple[PathStep, ...]
    is_sequence: bool = False
    item_count: int = 0
    creator: str = ""  # the private creator of a private element, when the file declares one

    @property
    def is_item(self) -> bool:
        return bool(self.path) and isinstance(self.path[-1], int)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path steps as "(gggg,eeee)" text and item indexes as numbers."""
        out = asdict(self)
        out["path"] = [step if isinstance(step, int) else _tag_text(step) for step in self.path]
        return out


def tag_rows(path: str | os.PathLike, max_value_len: int = DEFAULT_MAX_VALUE_LEN,
             include_pixel_data: bool = False) -> list[TagRow]:
    """The rows of the file at ``path``. Raises :class:`MetadataError` for a missing, non-DICOM or truncated file.
    A file without file meta (read as the import read it) has no group 0002 rows: none are made up."""
    with captured_warnings():  # pydicom warns about odd values; the viewer shows them as they are
        opened = _read(Path(path), include_pixel_data)
        ds = opened.dataset
        reader = _Reader(Path(path), max_value_len)
        meta = None if opened.meta_added else getattr(ds, "file_meta", None)
        rows = reader.dataset(meta, 0, ()) if meta is not None else []
        return rows + reader.dataset(ds, 0, ())


def _read(path: Path, include_pixel_data: bool) -> Opened:
    """Parse the header (large values deferred); first make sure the file is whole, which pydicom does not."""
    from pydicom.errors import InvalidDicomError

    accepted = _check_complete(path)
    try:
        return read_dataset(path, pixels=include_pixel_data, defer_size=DEFER_SIZE, accepted=accepted)
    except InvalidDicomError as exc:
        raise MetadataError(f"{path}: not a DICOM file ({exc})") from None
    except OSError as exc:
        raise MetadataError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on corrupt input; each is "unreadable"
        raise MetadataError(f"{path}: unreadable or corrupt DICOM: {type(exc).__name__}: {exc}") from None


def _check_complete(path: Path) -> bool:
    """pydicom silently reads a file cut short; the importer's header walk notices, so ask it first. True when
    the walk accepts the file (then it is read as the import reads it, also without a file meta)."""
    from .header import HeaderError, read_header

    if not path.exists():
        raise MetadataError(f"{path}: no such file")
    if path.is_dir():
        raise MetadataError(f"{path}: is a directory")
    try:
        read_header(str(path))
    except HeaderError as exc:  # its other objections (odd but readable layouts) are for pydicom to judge
        reason = str(exc)
        if reason.startswith(("truncated", "empty file", "cannot read")):
            raise MetadataError(f"{path}: {reason}") from None
        return False
    except Exception:  # noqa: BLE001 - e.g. a character set the walk cannot decode: pydicom judges the file
        return False
    return True


class _Reader:
    """Turns datasets into rows; keeps the file path for the few values deferred at read time."""

    def __init__(self, path: Path, max_value_len: int):
        self.path = path
        self.max_len = max_value_len

    def dataset(self, ds, depth: int, prefix: tuple[PathStep, ...]) -> list[TagRow]:
        rows: list[TagRow] = []
        for tag in sorted(ds.keys()):
            rows += self.element(ds, tag, depth, prefix)
        return rows

    def element(self, ds, tag: int, depth: int, prefix: tuple[PathStep, ...]) -> list[TagRow]:
        from pydicom.dataelem import RawDataElement

        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement) and raw.value is None and raw.length:
            return [self._deferred_row(ds, raw, depth, prefix)]
        try:
            elem = ds[tag]
        except Exception as exc:  # noqa: BLE001 - one bad value must not hide the rest of the file
            return [_row(depth, _bare_element(ds, tag, getattr(raw, "VR", None)), prefix,
                         f"<unreadable: {type(exc).__name__}: {exc}>")]
        if elem.VR == "SQ":
            return self._sequence(elem, depth, prefix)
        return [_row(depth, elem, prefix, _value_text(elem, self.max_len, _redecoded(raw, elem, ds)))]

    def _sequence(self, elem, depth: int, prefix: tuple[PathStep, ...]) -> list[TagRow]:
        items = list(elem.value or [])
        here = (*prefix, _step(elem.tag))
        count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
        rows = [_row(depth, elem, prefix, count, is_sequence=True, item_count=len(items))]
        for index, item in enumerate(items):
            size = f"{len(item)} element" + ("" if len(item) == 1 else "s")
            rows.append(TagRow(depth + 1, ITEM_TAG, f"Item {index + 1}", "", size, (*here, index)))
            rows += self.dataset(item, depth + 2, (*here, index))
        return rows

    def _deferred_row(self, ds, raw, depth: int, prefix: tuple[PathStep, ...]) -> TagRow:
        """A large value skipped at read time: binary ones show their first bytes, others are read now."""
        elem = _bare_element(ds, raw.tag, raw.VR)
        if elem.VR in BYTES_VRS or raw.tag in PIXEL_TAGS:
            head = self._peek(raw.value_tell, BYTES_PREVIEW)
            if raw.length == 0xFFFFFFFF:  # encapsulated: the size is known only by walking every fragment
                return _row(depth, elem, prefix, f"undefined length (encapsulated): {head.hex(' ')} …")
            return _row(depth, elem, prefix, _bytes_text(head, raw.length))
        try:
            full = ds[raw.tag]
            return _row(depth, full, prefix, _value_text(full, self.max_len))
        except Exception as exc:  # noqa: BLE001 - e.g. a deferred value inside a sequence item without a file
            return _row(depth, elem, prefix, f"<{raw.length} bytes, not read: {type(exc).__name__}>")

    def _peek(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(size)


def _bare_element(ds, tag: int, vr: str | None):
    """A value-less element with the right VR and private creator, for names of rows we do not decode."""
    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import DataElement
    from pydicom.tag import Tag

    tag = Tag(tag)
    if not vr:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
    elem = DataElement(tag, vr, None)
    if tag.is_private and tag.element >= 0x1000:
        creator_tag = Tag(tag.group, tag.element >> 8)
        if creator_tag in ds:
            with contextlib.suppress(Exception):  # an unreadable creator just leaves the element unnamed
                elem.private_creator = str(ds[creator_tag].value)
    return elem


def _row(depth: int, elem, prefix: tuple[PathStep, ...], value: str, is_sequence: bool = False,
         item_count: int = 0) -> TagRow:
    creator = (getattr(elem, "private_creator", None) or "") if elem.tag.is_private else ""
    return TagRow(depth=depth, tag=_tag_text(elem.tag), keyword=elem.keyword or elem.name, vr=str(elem.VR),
                  value=value, path=(*prefix, _step(elem.tag)), is_sequence=is_sequence, item_count=item_count,
                  creator=creator)


def _step(tag: int) -> tuple[int, int]:
    return (tag >> 16, tag & 0xFFFF)


def _tag_text(tag: int | tuple[int, int]) -> str:
    group, element = tag if isinstance(tag, tuple) else _step(tag)
    return f"({group:04X},{element:04X})"


# ---- values ------------------------------------------------------------------------------------------------

def _redecoded(raw, elem, ds) -> list[str] | None:
    """pydicom 3.0.2 keeps ISO 2022 IR 58 escapes in text (see :mod:`.charsets`): such values decoded again."""
    from .charsets import mis_decoded_by_pydicom, text_values

    value = getattr(raw, "value", None)
    if not mis_decoded_by_pydicom(value):
        return None
    return text_values(value, elem.VR, ds._character_set)  # the item's, else its parent's, as pydicom


def _value_text(elem, max_len: int, values: list[str] | None = None) -> str:
    """What a person reads: binary as length + hex, several values joined with ``\\``, long text shortened.
    ``values``: the element's text values when decoded by us rather than by pydicom (:func:`_redecoded`)."""
    from pydicom.multival import MultiValue

    value = elem.value if values is None else values
    if value is None or (isinstance(value, (str, bytes, bytearray, list, tuple)) and len(value) == 0):
        return ""
    if isinstance(value, (bytes, bytearray)):
        return _bytes_text(bytes(value[:BYTES_PREVIEW]), len(value))
    if isinstance(value, (MultiValue, list, tuple)):
        text = "\\".join(_one(v, elem.VR) for v in value)
    else:
        text = _one(value, elem.VR)
    return _shorten(printable(text), max_len)  # one line per value, no terminal control


def _one(value: Any, vr: str) -> str:
    if vr == "AT" and isinstance(value, int):
        return _tag_text(value)
    if vr == "UI":
        from pydicom.uid import UID

        uid = UID(str(value))
        return f"{uid} ({uid.name})" if uid.name != str(uid) else str(uid)
    return str(value)


def _bytes_text(head: bytes, length: int) -> str:
    more = " …" if length > len(head) else ""
    return f"{length} bytes: {head.hex(' ')}{more}" if head else f"{length} bytes"


def _shorten(text: str, max_len: int) -> str:
    if len(text) <= max_len:
        return text
    return f"{text[:max_len]}… ({len(text)} chars)"


# ---- filter and text ---------------------------------------------------------------------------------------

def filter_rows(rows: Sequence[TagRow], text: str) -> list[TagRow]:
    """Rows whose tag, keyword, VR, value or creator contain ``text`` (case-insensitive), or match the regular
    expression after a ``re:`` prefix; the sequence and item rows above a match stay, so the tree still reads."""
    if not text.strip():
        return list(rows)
    matches = _matcher(text)
    keep: set[int] = set()
    parents: list[int] = []  # parents[d] = index of the latest row at depth d
    for index, row in enumerate(rows):
        del parents[row.depth:]
        parents.append(index)
        if matches(row):
            keep.update(parents)
    return [row for index, row in enumerate(rows) if index in keep]


def _matcher(text: str) -> Callable[[TagRow], bool]:
    """A predicate over a row's searchable fields. A bad ``re:`` pattern is a ValueError that says why."""
    if text.startswith("re:"):
        try:
            pattern = re.compile(text[3:], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"bad regular expression {text[3:]!r}: {exc}") from None
        return lambda row: any(pattern.search(field) for field in _fields(row))
    needle = text.casefold()
    return lambda row: any(needle in field.casefold() for field in _fields(row))


def _fields(row: TagRow) -> tuple[str, ...]:
    compact = row.tag.strip("()").replace(",", "")  # "00100010" finds (0010,0010) too
    return (row.tag, compact, row.keyword, row.vr, row.value, row.creator)


def rows_as_text(rows: Iterable[TagRow]) -> str:
    """Plain text, one line per row, indented two spaces per level: for the clipboard and the CLI."""
    return "\n".join(_line(row) for row in rows)


def _line(row: TagRow) -> str:
    indent = "  " * row.depth
    if row.is_item:
        return f"{indent}{row.keyword} ({row.value})"
    label = f"{row.keyword} [{row.creator}]" if row.creator else row.keyword
    return f"{indent}{row.tag} {row.vr or '--'} {label}: {row.value}".rstrip()
