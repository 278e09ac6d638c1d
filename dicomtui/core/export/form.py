"""What the tag editor's forms show before anything is typed: for the selected items, the values each file has
now of the attributes of Slicer's export dialog (a patient table, a study table, one table per series)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..database import DicomDatabase
from ..levels import Item, Level, series_label
from .rewrite import read_head
from .tagpath import PATIENT_KEYWORDS, SERIES_KEYWORDS, STUDY_KEYWORDS, EditError, get_value, parse_path
from .vr import UTF8_CHARSET, charsets_of, check_value

__all__ = ["FORM_KEYWORDS", "FormValues", "SeriesValues", "form_values"]

FORM_KEYWORDS = {Level.PATIENT: PATIENT_KEYWORDS, Level.STUDY: STUDY_KEYWORDS, Level.SERIES: SERIES_KEYWORDS}
_LAST = max(parse_path(k).top for keys in FORM_KEYWORDS.values() for k in keys)


@dataclass
class SeriesValues:
    """One series of the selection: its UID, its label ("3 T1 axial") and keyword → values (value → files)."""

    uid: str
    label: str
    values: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass
class FormValues:
    """keyword → values (value → number of files) over every file, for the patient and study tables; one
    :class:`SeriesValues` per series, in browser order."""

    files: int = 0
    common: dict[str, Counter[str]] = field(default_factory=dict)
    series: list[SeriesValues] = field(default_factory=list)
    charsets: set[tuple[str, ...]] = field(default_factory=set)  # the Specific Character Sets of the files

    def check(self, keyword: str, value: str) -> list[str]:
        """What is wrong with ``value`` typed for ``keyword`` (or a tag path) in these files (sentences; [] when
        it can be written): its VR's rules and the character sets of the files (ISO_IR 192 offered when needed)."""
        vr = parse_path(keyword).dictionary_vr()
        out: list[str] = []
        if vr is None:  # a private attribute: checked by the plan, against the VR each file gives it
            return out
        for charsets in self.charsets or {()}:
            check = check_value(keyword, vr, value, charsets)
            out += [p for p in check.problems if p not in out]
            if check.needs_utf8 and not any("ISO_IR 192" in p for p in out):
                out.append(f"{keyword}: the files' character set cannot encode {value!r}; allow the change to "
                           f"{UTF8_CHARSET} (UTF-8)")
        return out


def shown(values: Counter[str]) -> str:
    """A value as the form shows it beside the edit: the one value, "(absent)", or "3 values"."""
    if len(values) == 1:
        return next(iter(values)) or "(empty)"
    return f"{len(values)} values" if values else "(no file)"


def form_values(db: DicomDatabase, items: Iterable[Item]) -> FormValues:
    """Read the head of every file of ``items`` (up to the last attribute of the forms). Raises EditError for a
    file that cannot be read (the message names it)."""
    out = FormValues()
    by_uid: dict[str, SeriesValues] = {}
    for row in db.instance_rows(list(items), "path, stored"):
        path = db.abspath(row["path"], bool(row["stored"]))
        try:
            ds = read_head(path, _LAST).ds
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
            raise EditError(f"cannot read {path}: {exc}") from exc
        out.files += 1
        out.charsets.add(charsets_of(ds))
        uid = str(ds.get("SeriesInstanceUID", ""))
        if uid not in by_uid:
            series_row = db.find(Level.SERIES, uid) or {}
            by_uid[uid] = SeriesValues(uid, series_label(series_row) or uid)
            out.series.append(by_uid[uid])
        for level, keywords in FORM_KEYWORDS.items():
            target = by_uid[uid].values if level is Level.SERIES else out.common
            for keyword in keywords:
                target.setdefault(keyword, Counter())[get_value(ds, parse_path(keyword)) or ""] += 1
    return out
