"""Several files with one SOPInstanceUID in one import (one image saved in several transfer syntaxes, a buggy
anonymiser): which one the database keeps. ONE rule, the same in link and copy mode and whatever the order in
which files are read, parsed or batched:

1. a lossless transfer syntax before a lossy one (PS3.5 8 and 10: JPEG baseline/extended, JPEG-LS near-lossless,
   JPEG 2000 / HTJ2K irreversible, MPEG/HEVC video are lossy; native, deflate, RLE, JPEG lossless, JPEG-LS
   lossless, JPEG 2000 / HTJ2K lossless are not; a file without a Transfer Syntax UID is read as native);
2. then the first source path in sorted order.

The other files are not imported; one warning per SOPInstanceUID names every file and the one kept. The files of
an earlier import count as candidates when they still lie under the folders imported, unchanged: so a re-import
of an unchanged folder recognises its duplicates and reports them unchanged (no "updated", no new row).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .scan import Problem

# Transfer syntaxes that keep every bit of the pixel data (PS3.5 A.4; PS3.6 Table A-1 names them "Lossless").
LOSSLESS_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (Process 14 SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Multi-component (Lossless Only)
    "1.2.840.10008.1.2.4.201",  # HTJ2K (Lossless Only)
    "1.2.840.10008.1.2.4.202",  # HTJ2K with RPCL Options (Lossless Only)
    "1.2.840.10008.1.2.5",  # RLE Lossless
})

# Positions in an instance row made by database.prepare (SOPInstanceUID, TransferSyntaxUID, path, stored, ...).
_UID, _TS, _SOURCE = 0, 1, 6


def rank(transfer_syntax: str | None, source_path: str) -> tuple[int, str]:
    """The sort key of the rule: the smallest is kept (0 for lossless, 1 for lossy; then the path)."""
    lossy = bool(transfer_syntax) and transfer_syntax not in LOSSLESS_TRANSFER_SYNTAXES
    return (int(lossy), source_path)


@dataclass
class Source:
    """Where the database row of a SOPInstanceUID came from (columns of the instances table)."""

    source_path: str
    source_size: int | None
    source_mtime_ns: int | None
    TransferSyntaxUID: str | None
    imported_at: float


@dataclass
class SameUid:
    """The files of one SOPInstanceUID met in an import, and the one kept."""

    kept: str
    files: set[str] = field(default_factory=set)

    def warning(self, uid: str) -> Problem:
        others = sorted(self.files - {self.kept})
        return Problem(self.kept, f"SOPInstanceUID {uid} is in {len(self.files)} files: kept this one (lossless "
                                  f"transfer syntax first, then path order); not imported: {', '.join(others)}")


@dataclass
class Resolved:
    """A batch after the rule: the rows to write, the kept files to copy again (copy mode), and the counts."""

    rows: list
    recopy: list[str] = field(default_factory=list)
    not_updates: int = 0  # rows that will be counted as updates but only settle a duplicate of this import
    duplicates: int = 0  # files not imported: another file of this import has their SOPInstanceUID
    unchanged: int = 0  # files not imported: the file kept by an earlier import is still there, unchanged


class Duplicates:
    """The rule applied batch by batch across one import (:meth:`resolve`), and its warnings (:meth:`warnings`).

    ``tops`` are the absolute paths imported; ``started`` the import's start (``time.time()``: rows written
    since are this import's); ``copy`` whether files are copied into storage, where every file of one
    SOPInstanceUID lands on one path, so that the kept one must be copied again after the others."""

    def __init__(self, tops: Sequence[str], started: float, copy: bool) -> None:
        self.tops = [t.rstrip(os.sep) for t in tops]
        self.started = started
        self.copy = copy
        self.sets: dict[str, SameUid] = {}
        self.earlier: set[str] = set()

    def resolve(self, in_database: dict[str, tuple], pending: Sequence) -> Resolved:
        """Apply the rule to a batch of (hierarchy rows, instance row) pairs; rows dropped keep their order.
        ``in_database``: per SOPInstanceUID of the batch already in the database, its (source_path, source_size,
        source_mtime_ns, TransferSyntaxUID, imported_at), read by the writer in the batch's transaction (the
        ``settle`` of DicomDatabase.add_prepared: one lookup serves both)."""
        by_uid: dict[str, list[int]] = {}
        for i, (_hier, inst) in enumerate(pending):
            by_uid.setdefault(inst[_UID], []).append(i)
        existing = {uid: Source(*in_database[uid]) for uid in by_uid if uid in in_database}
        out = Resolved([])
        drop: set[int] = set()
        sets = self.sets
        for uid, idxs in by_uid.items():
            old = existing.get(uid)
            if old is None and len(idxs) == 1 and uid not in sets:
                continue  # the common case, first: one file for this SOPInstanceUID, new to the database
            sources = {pending[i][1][_SOURCE] for i in idxs}
            rival = old if old is not None and old.source_path not in sources and self._competes(old) else None
            if len(idxs) == 1 and rival is None and uid not in self.sets:
                continue  # the common case: one file for this SOPInstanceUID
            self._settle(uid, pending, idxs, old, rival, drop, out)
        out.rows = [p for i, p in enumerate(pending) if i not in drop]
        return out

    def _settle(self, uid: str, pending: Sequence, idxs: list[int], old: Source | None, rival: Source | None,
                drop: set[int], out: Resolved) -> None:
        candidates = {pending[i][1][_SOURCE]: (rank(pending[i][1][_TS], pending[i][1][_SOURCE]), i) for i in idxs}
        if rival is not None:
            candidates.setdefault(rival.source_path, (rank(rival.TransferSyntaxUID, rival.source_path), -1))
        kept_path = min(candidates, key=lambda p: candidates[p][0])
        kept_index = candidates[kept_path][1]
        group = self.sets.setdefault(uid, SameUid(kept_path))
        group.files.update(candidates)
        if len(group.files) == 1:
            del self.sets[uid]  # the same file twice in a batch, say: not a duplicate
        else:
            group.kept = kept_path
        if rival is not None and rival.imported_at < self.started:
            self.earlier.add(uid)  # kept by an earlier import (its row may be rewritten below, in copy mode)
        earlier = uid in self.earlier
        for i in idxs:
            if i != kept_index:
                drop.add(i)
                if pending[i][1][_SOURCE] != kept_path:
                    if kept_index < 0 and earlier:
                        out.unchanged += 1
                    else:
                        out.duplicates += 1
        if self.copy and len(group.files) > 1:
            out.recopy.append(kept_path)  # its bytes may have been overwritten by another file of this UID
            if kept_index >= 0:
                drop.add(kept_index)
        written = kept_index >= 0 or (self.copy and len(group.files) > 1)
        if written and old is not None and (kept_index < 0 or old.imported_at >= self.started):
            out.not_updates += 1

    def _competes(self, old: Source) -> bool:
        """Whether the file of an existing row is a candidate of this import: written by it, or lying under the
        folders imported and unchanged since (then the scan met it, and skipped it as unchanged)."""
        if old.imported_at >= self.started:
            return True
        path = old.source_path
        if not any(path == t or path.startswith(t + os.sep) for t in self.tops):
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (old.source_size, old.source_mtime_ns)

    def warnings(self) -> list[Problem]:
        """One warning per SOPInstanceUID met in several files, in the order of the kept files."""
        return sorted((g.warning(uid) for uid, g in self.sets.items()), key=lambda p: (p.path, p.reason))

