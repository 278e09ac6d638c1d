"""What ``--set`` names: a keyword (``PatientName``), a tag (``(0011,1010)``, ``00111010``) or a path into
sequences (``(0010,1002)[0].PatientID``: item 0 of Other Patient IDs Sequence, its Patient ID), and the level of
the information model it belongs to (PS3.3 C.7: patient, study, series; everything else is per instance).

A path is parsed once into :class:`TagPath` (tags as ints, the item index of each sequence step); the values it
names are read and set through pydicom datasets (:func:`get_value`, :func:`set_value`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DicomtuiError
from ..levels import Level


class EditError(DicomtuiError):
    """An edit the user asked for cannot be planned or applied; the message says which attribute and why."""


# The attributes the tag editor's tables show, by level (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1
# General Series); any other top-level attribute of these modules is placed by LEVEL_OF too.
PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
STUDY_KEYWORDS = ("StudyDescription", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
                  "ReferringPhysicianName")
SERIES_KEYWORDS = ("SeriesDescription", "SeriesNumber", "Modality", "BodyPartExamined", "ProtocolName")
LEVEL_OF: dict[str, Level] = {
    **{k: Level.PATIENT for k in (*PATIENT_KEYWORDS, "OtherPatientIDsSequence", "PatientBirthTime",
                                  "PatientComments", "IssuerOfPatientID", "OtherPatientNames", "EthnicGroup")},
    **{k: Level.STUDY for k in (*STUDY_KEYWORDS, "PatientAge", "PatientSize", "PatientWeight")},
    **{k: Level.SERIES for k in (*SERIES_KEYWORDS, "SeriesDate", "SeriesTime", "Laterality", "PatientPosition",
                                 "OperatorsName", "PerformingPhysicianName")},
}
# Identifiers that change only with "as a new series" (then all together, consistently): never set by hand.
UID_KEYWORDS = frozenset(("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
                          "FrameOfReferenceUID"))

_STEP = re.compile(r"^(?:\((?P<g>[0-9A-Fa-f]{4}),(?P<e>[0-9A-Fa-f]{4})\)|(?P<hex>[0-9A-Fa-f]{8})|(?P<kw>[A-Za-z]\w*))"
                   r"(?P<vr>(?<=[)0-9A-Fa-f])[A-Z]{2})?(?:\[(?P<index>\d+)\])?$")


@dataclass(frozen=True)
class TagPath:
    """``steps``: (tag, item index) from the top-level data set down; the last step's index is None."""

    text: str
    steps: tuple[tuple[int, int | None], ...]
    vr: str | None = None  # given after the tag, ``(0011,1001)LO``: the VR of an element no file holds yet

    @property
    def tag(self) -> int:
        return self.steps[-1][0]

    @property
    def top(self) -> int:
        return self.steps[0][0]

    @property
    def nested(self) -> bool:
        return len(self.steps) > 1

    @property
    def keyword(self) -> str:
        """The keyword of the last step (PS3.6), or the tag as ``(gggg,eeee)`` for a private or unknown one."""
        from pydicom.datadict import keyword_for_tag

        return keyword_for_tag(self.tag) or f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    @property
    def level(self) -> Level:
        """The level the path's top-level attribute belongs to (instance for everything not listed)."""
        from pydicom.datadict import keyword_for_tag

        return LEVEL_OF.get(keyword_for_tag(self.top), Level.INSTANCE)

    def dictionary_vr(self) -> str | None:
        """The VR of the last step from the data dictionary (None for a private tag: the file's VR is used)."""
        from pydicom.datadict import dictionary_VR

        if self.vr:
            return self.vr
        if self.tag >> 16 & 1:
            return "LO" if private_creator_of(self.tag) == self.tag else None  # a private creator: LO (PS3.5 7.8.1)
        try:
            return str(dictionary_VR(self.tag))
        except KeyError:
            return None


def parse_path(text: str) -> TagPath:
    """``PatientName``, ``(0010,0010)``, ``00100010`` or ``(0010,1002)[0].PatientID`` → :class:`TagPath`.
    Raises EditError for an unknown keyword, a sequence step without ``[index]``, a last step with one, the file
    meta group (0002), group lengths, or a UID (they change only as a new series)."""
    from pydicom.datadict import keyword_for_tag, tag_for_keyword
    from pydicom.valuerep import VR

    steps: list[tuple[int, int | None]] = []
    vr: str | None = None
    parts = text.strip().split(".")
    for n, part in enumerate(parts):
        m = _STEP.match(part.strip())
        if not m:
            raise EditError(f"cannot read {part!r} in {text!r}: write a keyword (PatientName), a tag ((0010,0010)) "
                            f"or a path ((0010,1002)[0].PatientID)")
        if m["kw"]:
            tag = tag_for_keyword(m["kw"])
            if tag is None:
                raise EditError(f"{m['kw']!r} is not a DICOM keyword (PS3.6); write its tag as (gggg,eeee)")
        else:
            tag = int(m["hex"] or m["g"] + m["e"], 16)
        index = None if m["index"] is None else int(m["index"])
        last = n == len(parts) - 1
        if m["vr"]:
            if not last or m["vr"] not in VR.__members__:
                raise EditError(f"{part!r} in {text!r}: a VR (PS3.5 6.2) may follow only the last tag, as in "
                                f"(0011,1001)LO")
            vr = m["vr"]
        if last and index is not None:
            raise EditError(f"{text!r} ends in an item index: name the attribute inside the item")
        if not last and index is None:
            raise EditError(f"{part!r} in {text!r} needs an item index, as in {part}[0]")
        steps.append((tag, index))
    top = steps[0][0]
    if top >> 16 == 0x0002 or steps[-1][0] & 0xFFFF == 0:
        raise EditError(f"{text!r} is file meta or a group length: these are written by dicomtui, not edited")
    if keyword_for_tag(steps[-1][0]) in UID_KEYWORDS:
        raise EditError(f"{text!r} is an identifier: UIDs change only with --as-new-series or --as-new-study, "
                        f"all together")
    return TagPath(text.strip(), tuple(steps), vr)


def private_creator_of(tag: int) -> int | None:
    """The tag of the private creator that reserves ``tag``'s block (PS3.5 7.8.1: (gggg,00xx) reserves
    (gggg,xx00)-(gggg,xxFF)); the tag itself for a creator; None for a standard (even group) tag."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or group <= 0x0007:
        return None
    if 0x0010 <= element <= 0x00FF:
        return tag
    return group << 16 | element >> 8 if element >= 0x1000 else None


def private_moves(creators: Mapping[int, str], text_of: Callable[[int], str | None]) -> dict[int, int]:
    """Where the private blocks an edit names lie in one file: {creator tag as typed: creator tag in this file}.
    ``creators``: the creator tags the edit sets, with their values; ``text_of(tag)``: the file's value of a
    top-level tag (None: absent). As pydicom's ``Dataset.private_block``: the block holding the creator already,
    else the block typed when it is free, else the first free one (PS3.5 7.8.1). Raises EditError when the group
    has no free block left."""
    moves: dict[int, int] = {}
    for tag, creator in creators.items():
        group = tag & 0xFFFF0000
        held = {t: text_of(t) for t in range(group | 0x10, group | 0x100)}
        free = [t for t, value in held.items() if value is None]
        found = next((t for t, value in held.items() if value is not None and value.strip() == creator.strip()), None)
        if found is None:
            if tag not in free and not free:
                raise EditError(f"({group >> 16:04X},{tag & 0xFFFF:04X})={creator}: the group has no free private "
                                f"block left (PS3.5 7.8.1)")
            found = tag if tag in free else free[0]
        moves[tag] = found
    return moves


def relocate(path: TagPath, moves: Mapping[int, int]) -> TagPath:
    """``path`` with its top-level private tag moved into the block :func:`private_moves` found (the text kept)."""
    creator = private_creator_of(path.top) if not path.nested else None
    target = moves.get(creator) if creator is not None else None
    if target is None or target == creator:
        return path
    top = target if creator == path.top else (target & 0xFFFF0000) | (target & 0xFF) << 8 | (path.top & 0xFF)
    return TagPath(path.text, ((top, None),), path.vr)


def parse_assignment(text: str) -> tuple[TagPath, str]:
    """``PATH=VALUE`` (the first ``=`` splits; a PN value may hold more) → (path, value). Raises EditError."""
    path, sep, value = text.partition("=")
    if not sep:
        raise EditError(f"--set {text!r} has no '=': write KEYWORD=VALUE, as in PatientName=Doe^Jane")
    return parse_path(path), value


def get_value(ds: Any, path: TagPath) -> str | None:
    """The value ``path`` names in the pydicom data set ``ds`` as text (multiple values joined by ``\\``), or
    None when an element or item on the way is absent."""
    parent = _parent(ds, path, create=False)
    if parent is None or path.tag not in parent:
        return None
    return as_text(parent[path.tag].value)


def as_text(value: Any) -> str:
    """An element value as the editor shows it: multiple values joined by ``\\``, None as ""."""
    from pydicom.multival import MultiValue

    if value is None:
        return ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(as_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def element_vr(ds: Any, path: TagPath) -> str | None:
    """The VR the value will be written with: the file's own for an element present, else the dictionary's."""
    parent = _parent(ds, path, create=False)
    if parent is not None and path.tag in parent:
        return str(parent[path.tag].VR)
    return path.dictionary_vr()


def set_value(ds: Any, path: TagPath, vr: str, text: str) -> None:
    """Set the element ``path`` names in ``ds`` to ``text`` (``\\`` separates values; numbers converted for
    the binary VRs), creating items and the element as needed. Raises EditError when an item index lies beyond
    the end of a sequence (items are appended one at a time: index = length)."""
    parent = _parent(ds, path, create=True)
    assert parent is not None
    values: list[Any] = text.split("\\") if text and vr not in ("LT", "ST", "UT", "UR") else [text]
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        values = [int(v) for v in values if v != ""]
    elif vr in ("FL", "FD"):
        values = [float(v) for v in values if v != ""]
    value: Any = values[0] if len(values) == 1 else (values or None)
    if path.tag in parent:
        elem = parent[path.tag]
        elem.value = value
    else:
        parent.add_new(path.tag, vr, value)


def _parent(ds: Any, path: TagPath, create: bool) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    node = ds
    for tag, index in path.steps[:-1]:
        assert index is not None
        if tag not in node:
            if not create:
                return None
            node.add_new(tag, "SQ", Sequence())
        seq = node[tag].value
        if index >= len(seq):
            if not create:
                return None
            if index > len(seq):
                raise EditError(f"{path.text}: item {index} does not exist (the sequence has {len(seq)} items; "
                                f"a new item is index {len(seq)})")
            seq.append(Dataset())
        node = seq[index]
    return node
