"""What the user selected, once for both faces: UIDs or PatientIDs (the CLI) or marked rows (the browser) become
items (level, row id); items have a description, instance files and a delete plan.

An item is a ``(level, row id)`` pair (:class:`Item`, a NamedTuple, so it is what the database methods take).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .database import DicomDatabase
from .levels import Item, Level, column, format_value, series_label
from .plural import counted

__all__ = ["DeletePlan", "Item", "Resolved", "delete_plan", "describe", "describe_named", "describe_resolved",
           "instance_files", "marked", "missing_sentence", "resolve"]

@dataclass
class Resolved:
    """Items found for the texts given, in the order given, and the texts that named nothing."""

    items: list[Item] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    names: list[tuple[str, Item]] = field(default_factory=list)  # (text as given, item it named)


def resolve(db: DicomDatabase, texts: Iterable[str], levels: Iterable[Level] | None = None) -> Resolved:
    """Study, series or instance UIDs and PatientIDs → items; a unique UID prefix, a row id as ``--json`` prints
    it and a ``LEVEL:`` qualifier (``series:1.2.8``, ``series:42``) too (:meth:`DicomDatabase.resolve`).
    ``levels``: only rows of these levels. A text may name several rows (a PatientID shared by two patients of
    different names); each text that names none is in ``missing``. Raises SelectionError for an ambiguous prefix
    or row id (the message lists the matches)."""
    out = Resolved()
    wanted = None if levels is None else list(levels)
    for text in texts:
        found = [Item(Level(level), row_id) for level, row_id in db.resolve(text, wanted)]
        if not found:
            out.missing.append(text)
        out.items += found
        out.names += [(text, item) for item in found]
    return out


def marked(level: Level | str, row_ids: Iterable[int]) -> list[Item]:
    """The browser's marked rows (or the row under the cursor) of one pane as items."""
    return [Item(Level(level), row_id) for row_id in row_ids]


def missing_sentence(text: str) -> str:
    """What the CLI says for a UID or PatientID that names nothing."""
    return f"no patient, study, series or instance {text} in the database"


def describe_named(db: DicomDatabase, text: str, item: Item) -> str:
    """An item as ``rm`` names it, by the text the user gave: "patient SYN0001 (Doe^John)" (a PatientID may name
    several patients, so the name says which), "study 1.2.3"."""
    if item.level is Level.PATIENT:
        name = (db.get(Level.PATIENT, item.id) or {}).get("PatientName")
        return f"patient {text} ({name or 'no name'})"
    return f"{item.level} {text}"


def describe_resolved(db: DicomDatabase, resolved: Resolved) -> str:
    """Everything ``rm`` is about to delete, as its question and its --yes hint name it, joined by commas."""
    return ", ".join(describe_named(db, text, item) for text, item in resolved.names)


def describe(db: DicomDatabase, items: Sequence[Item],
             rows: dict[int, dict[str, Any]] | None = None) -> str:
    """Items of one level as the browser names them: "3 studies" for several, else the row in words:
    "patient Doe^John (P1)", "study 2024-01-02 Head CT", "series 3 T1 axial". ``rows`` (by id) saves reading the
    row again when the caller has it. Empty text for no items."""
    if not items:
        return ""
    level = Level(items[0].level)
    if len(items) > 1:
        return f"{len(items)} {level.plural}"
    row = (rows or {}).get(items[0].id) or db.get(level, items[0].id) or {}
    if level is Level.PATIENT:
        return f"patient {row.get('PatientName') or ''} ({row.get('PatientID')})"
    if level is Level.STUDY:
        date = format_value(column(Level.STUDY, "StudyDate"), row.get("StudyDate"))
        return f"study {date} {row.get('StudyDescription') or ''}".rstrip()
    if level is Level.SERIES:
        return f"series {series_label(row)}".rstrip()
    return f"instance {row.get('SOPInstanceUID') or items[0].id}"


def instance_files(db: DicomDatabase, items: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """The instances under the items, each once, in series and instance order: dicts with SOPInstanceUID,
    SOPClassUID, TransferSyntaxUID and the absolute ``path`` (what a send, a metadata view or an export needs)."""
    return db.instance_files(items)


@dataclass
class DeletePlan:
    """What deleting some items would do: ``deleted`` copied files (ours, in storage) go with their rows;
    ``kept`` linked files stay where they are. Paths are absolute."""

    instances: int = 0
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def details(self) -> str:
        """The sentence the browser's delete dialog shows under its question."""
        stay = "stays where it is" if len(self.kept) == 1 else "stay where they are"
        text = (f"{counted(self.instances, 'instance')}. "
                + (f"{counted(len(self.deleted), 'copied file')} will be deleted. " if self.deleted else "")
                + (f"{counted(len(self.kept), 'linked file')} {stay}." if self.kept else ""))
        return text.strip()


def delete_plan(db: DicomDatabase, items: Iterable[tuple[str, int]]) -> DeletePlan:
    """The :class:`DeletePlan` of ``items`` (nothing is changed; :meth:`DicomDatabase.delete` does it)."""
    plan = DeletePlan()
    for row in db.instance_rows(items, "path, stored"):
        plan.instances += 1
        (plan.deleted if row["stored"] else plan.kept).append(db.abspath(row["path"], bool(row["stored"])))
    return plan
