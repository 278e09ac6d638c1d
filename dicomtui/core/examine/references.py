"""Referenced series (Slicer's "load referenced series"): which image series a derived object belongs on, and
which objects refer to an image series — from what import stored (``instances.refs``, see ``core.object_refs``);
no file is opened.

A reference resolves, in order: series named directly (ReferencedSeriesSequence, RTReferencedSeriesSequence);
else the series of the instances named (SourceImageSequence; an RT dose's plan or structure set, followed one step
further to what that refers to); else, for an RT dose or structure set, the image series in the same frame of
reference (PS3.3 C.7.4.1: one patient coordinate system).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..object_refs import REFERRING_CLASSES

__all__ = ["Referrer", "referenced_by", "referenced_by_line", "references_of"]


@dataclass(frozen=True)
class Referrer:
    """An object that refers to a series: its SeriesInstanceUID and SOPInstanceUID, and what it is ("segmentation",
    "structure set", "dose", "plan", "derived series")."""

    series_uid: str
    sop_instance_uid: str
    kind: str


def references_of(db: Any, series_uid: str) -> list[str]:
    """The SeriesInstanceUIDs of the image series the objects of series ``series_uid`` refer to that the database
    holds, in the order the objects name them (the series itself left out); [] when it refers to nothing known."""
    rows = db.conn.execute(
        "SELECT i.refs, i.SOPClassUID FROM instances i JOIN series s ON s.id = i.series_fk "
        "WHERE s.SeriesInstanceUID = ? AND i.refs IS NOT NULL ORDER BY i.InstanceNumber, i.id", (series_uid,))
    found: list[str] = []
    for refs, sop_class in rows.fetchall():
        found += _resolve(db, json.loads(refs), sop_class or "", series_uid, depth=0)
    return [uid for uid in dict.fromkeys(found) if uid != series_uid]


def referenced_by(db: Any, series_uid: str) -> list[Referrer]:
    """The objects (one per instance) whose references resolve to series ``series_uid``, in database order. Reads
    only the rows that refer to something (a partial index on ``refs``)."""
    rows = db.conn.execute(
        "SELECT s.SeriesInstanceUID, i.SOPInstanceUID, i.SOPClassUID, i.refs FROM instances i "
        "JOIN series s ON s.id = i.series_fk WHERE i.refs IS NOT NULL AND s.SeriesInstanceUID != ? "
        "ORDER BY i.series_fk, i.id", (series_uid,)).fetchall()
    out = []
    for uid, sop_uid, sop_class, refs in rows:
        data = json.loads(refs)
        direct = series_uid in data.get("series", ())
        if direct or series_uid in _resolve(db, data, sop_class or "", uid, depth=0):
            out.append(Referrer(uid, sop_uid, REFERRING_CLASSES.get(sop_class or "", "derived series")))
    return out


def referenced_by_line(referrers: list[Referrer]) -> str:
    """"referenced by 2 segmentations, 1 structure set" ("" when none), kinds in a fixed order (segmentations,
    structure sets, doses, plans, derived series): derived series counted once per series, the other objects once
    per instance."""
    if not referrers:
        return ""
    seen: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for item in referrers:
        key = (item.kind, item.series_uid if item.kind == "derived series" else item.sop_instance_uid)
        if key not in seen:
            seen.add(key)
            counts[item.kind] += 1
    ordered = sorted(counts.items(), key=lambda kv: _KIND_ORDER.index(kv[0]) if kv[0] in _KIND_ORDER else 99)
    return "referenced by " + ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in ordered)


_KIND_ORDER = ["segmentation", "structure set", "dose", "plan", "derived series"]


def _resolve(db: Any, data: dict[str, list[str]], sop_class: str, origin: str, depth: int) -> list[str]:
    """The image series in the database that stored references ``data`` (of an object of series ``origin``) lead
    to (see the module)."""
    series = [uid for uid in data.get("series", ()) if _has_series(db, uid)]
    if series:
        return series
    for sop_uid in data.get("sop", ()):
        row = db.conn.execute(
            "SELECT s.SeriesInstanceUID, i.refs, i.SOPClassUID FROM instances i JOIN series s ON s.id = i.series_fk "
            "WHERE i.SOPInstanceUID = ?", (sop_uid,)).fetchone()
        if row is None:
            continue
        uid, refs, its_class = row
        if its_class in REFERRING_CLASSES and refs and depth < 3:  # a plan or structure set: where it points
            series += _resolve(db, json.loads(refs), its_class, origin, depth + 1)
        elif its_class not in REFERRING_CLASSES:
            series.append(uid)
    if series:
        return list(dict.fromkeys(series))
    if sop_class in REFERRING_CLASSES:
        return _same_frame_of_reference(db, data.get("for", ()), origin)
    return []


def _has_series(db: Any, uid: str) -> bool:
    return db.conn.execute("SELECT 1 FROM series WHERE SeriesInstanceUID = ?", (uid,)).fetchone() is not None


def _same_frame_of_reference(db: Any, frames_of_reference: list[str] | tuple[str, ...], origin: str) -> list[str]:
    """Image series (with pixels, not a SEG/RT object) of the patient of series ``origin`` in one of
    ``frames_of_reference`` (a frame of reference is one patient's coordinate system, PS3.3 C.7.4.1), by series
    number. Only that patient's instances are read (indexed: patient → studies → series → instances)."""
    if not frames_of_reference:
        return []
    marks = ", ".join("?" * len(frames_of_reference))
    classes = list(REFERRING_CLASSES)
    rows = db.conn.execute(
        f"SELECT DISTINCT s.SeriesInstanceUID FROM studies st JOIN series s ON s.study_fk = st.id "
        f"JOIN instances i ON i.series_fk = s.id "
        f"WHERE st.patient_fk = (SELECT st2.patient_fk FROM series s2 JOIN studies st2 ON st2.id = s2.study_fk "
        f"WHERE s2.SeriesInstanceUID = ?) AND i.FrameOfReferenceUID IN ({marks}) AND i.has_pixels = 1 "
        f"AND COALESCE(i.SOPClassUID, '') NOT IN ({', '.join('?' * len(classes))}) "
        f"ORDER BY s.SeriesNumber, s.id", (origin, *frames_of_reference, *classes)).fetchall()
    return [r[0] for r in rows]
