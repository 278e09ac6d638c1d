"""Retention (``dicomtui db prune``, issue 20): which studies go, oldest first, and their deletion through the
database's own delete (:meth:`.maintenance.Maintenance.delete`), so linked files are never touched (only their rows
go) and copied files go with their rows.

A study's age is the time its newest instance was received or imported (``instances.imported_at``, seconds since
the epoch): a study still arriving is young. The size limit counts the files in our storage only (copied and
received files, ``stored = 1``): rows of linked files free no disk, so the size limit never picks a study that
holds only linked files; the age limit does (its rows go, its files stay).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ..levels import Level
from .maintenance import DeleteReport

if TYPE_CHECKING:
    from . import DicomDatabase

_STUDIES = """
SELECT st.id, st.StudyInstanceUID, p.PatientID, COALESCE(st.StudyDate, ''), COALESCE(st.StudyDescription, ''),
       COALESCE(MAX(i.imported_at), 0),
       COUNT(i.id), COALESCE(SUM(CASE WHEN i.stored = 1 THEN i.file_size END), 0),
       COALESCE(SUM(CASE WHEN i.stored = 0 THEN i.file_size END), 0)
FROM studies st JOIN patients p ON p.id = st.patient_fk
JOIN series s ON s.study_fk = st.id JOIN instances i ON i.series_fk = s.id
GROUP BY st.id ORDER BY MAX(i.imported_at), st.id
"""


@dataclass
class PruneItem:
    """One study a prune deletes: its row id, UIDs, when its newest instance arrived (``received``: seconds
    since the epoch), its instances, bytes of copied files (freed) and of linked files (kept), and why."""

    study_id: int
    StudyInstanceUID: str
    PatientID: str
    StudyDate: str
    StudyDescription: str
    received: float
    instances: int
    stored_bytes: int
    linked_bytes: int
    reason: str = ""  # "older than the limit" / "over the size limit"

    def as_dict(self) -> dict:
        return asdict(self)


def plan(db: DicomDatabase, older_than: float | None = None, max_size: int | None = None,
         keep_patients: Iterable[str] = (), now: float | None = None) -> list[PruneItem]:
    """The studies to delete, oldest first: every study received more than ``older_than`` seconds before ``now``,
    then, while the copied files of the studies left exceed ``max_size`` bytes, the oldest left that hold copied
    files. Studies of a PatientID in ``keep_patients`` are never chosen. No limit given: nothing is chosen."""
    now = time.time() if now is None else now
    keep = set(keep_patients)
    chosen: list[PruneItem] = []
    rest: list[PruneItem] = []
    for row in db.conn.execute(_STUDIES):
        item = PruneItem(*row)
        if item.PatientID in keep:
            continue
        if older_than is not None and item.received < now - older_than:
            item.reason = "older than the limit"
            chosen.append(item)
        else:
            rest.append(item)
    if max_size is not None:
        total = db.conn.execute("SELECT COALESCE(SUM(file_size), 0) FROM instances WHERE stored = 1").fetchone()[0]
        total -= sum(item.stored_bytes for item in chosen)
        for item in rest:
            if total <= max_size:
                break
            if item.stored_bytes:
                item.reason = "over the size limit"
                chosen.append(item)
                total -= item.stored_bytes
    return chosen


_NEWEST = ("SELECT MAX(i.imported_at) FROM instances i JOIN series s ON s.id = i.series_fk "
           "WHERE s.study_fk = ? AND s.study_fk IN (SELECT id FROM studies WHERE StudyInstanceUID = ?)")


def prune(db: DicomDatabase, items: Iterable[PruneItem]) -> tuple[DeleteReport, list[PruneItem]]:
    """Delete the studies of ``items`` (their rows; copied files too, linked files never): (what the delete
    removed, the items skipped). A study that received an instance since the plan was made (a listener runs
    meanwhile) is skipped, not deleted: it is young again. The check is just before the delete, not inside its
    transaction: an instance arriving in between is deleted with its study."""
    keep: list[PruneItem] = []
    skipped: list[PruneItem] = []
    for item in items:
        newest = db.conn.execute(_NEWEST, (item.study_id, item.StudyInstanceUID)).fetchone()[0]
        (keep if newest is not None and newest <= item.received else skipped).append(item)
    return db.delete([(Level.STUDY, item.study_id) for item in keep]), skipped
