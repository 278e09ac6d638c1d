"""What an import reports: :class:`ImportProgress` events while it runs and the :class:`ImportReport` it ends with
(counts per level, rejected files and warnings with their reasons, the summary and headline sentences, JSON).
Out of indexer.py, which does the work, so that the faces and tests read the report without the machinery."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import dicomfile
from .levels import ImportMode
from .plural import counted
from .scan import Problem

__all__ = ["ImportProgress", "ImportReport"]


@dataclass
class ImportProgress:
    """Where an import is: ``phase`` is "scan" (listing files) or "import" (parsing and indexing)."""

    phase: str
    done: int
    total: int
    path: str = ""
    scanned: int = 0


@dataclass
class ImportReport:
    """What an import did: rows added per level, instances updated, files skipped as unchanged, files rejected
    and warnings (each with its reason), how many files in how long, whether it was cancelled.

    ``duplicates``: files not imported because another file of this import with their SOPInstanceUID is kept
    (a warning names them); on a re-import they count as unchanged. ``outside_dicomdir``: files found in a
    DICOMDIR's folder that the DICOMDIR does not list (imported like the others); ``left_out``: those of them that
    are not DICOM (a viewer, notes on a CD), named in the DICOMDIR's warning instead of rejected."""

    patients_added: int = 0
    studies_added: int = 0
    series_added: int = 0
    instances_added: int = 0
    updated: int = 0
    skipped_unchanged: int = 0
    duplicates: int = 0
    outside_dicomdir: int = 0
    left_out: int = 0
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    files_seen: int = 0
    elapsed_s: float = 0.0
    cancelled: bool = False
    disk_full: bool = False  # the import stopped because the database's disk is full
    min_free: int = 0  # ... or at this free-space floor (bytes; 0: not there)
    mode: ImportMode = ImportMode.LINK
    database: str = ""  # the database folder imported into
    notes: list[str] = field(default_factory=list)  # sentences about the sources (a 3D Slicer database read)

    @property
    def meta_written(self) -> int:
        """Files copied as PS3.10 files with a file meta the source did not have (their warnings say so)."""
        return sum(dicomfile.META_WRITTEN in p.reason for p in self.warnings)

    @property
    def files_per_s(self) -> float:
        return self.files_seen / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self, database: str | os.PathLike[str] | None = None) -> str:
        """The line ``dicomtui import`` prints: "Copied into DB: 1 patient, 2 studies, … (N files/s)". ``database`` is
        the folder as the user named it (default: the database's absolute path)."""
        verb = "Copied" if self.mode == ImportMode.COPY else "Linked"
        where = os.fspath(database) if database is not None else self.database
        return (
            f"{verb} into {where}: {self._added()} added; {self.updated} updated, "
            f"{self.skipped_unchanged} unchanged (skipped), {len(self.rejected)} rejected{self._extra()} — "
            f"{self.files_seen} files in {self.elapsed_s:.2f} s ({self.files_per_s:,.0f} files/s)"
            + (" (cancelled)" if self.cancelled else "") + self._stopped()
        ) + "".join(f"\n{line}" for line in (self._kept(), *self.notes) if line)

    def _added(self) -> str:
        return ", ".join(counted(n, noun) for n, noun in (
            (self.patients_added, "patient"), (self.studies_added, "study"), (self.series_added, "series"),
            (self.instances_added, "instance")))

    def _kept(self) -> str:
        """After a cancel, a sentence on what stays: the instances read before it (indexed; in copy mode with
        their copies) and that the rest was not imported."""
        if not self.cancelled:
            return ""
        where = "copied and indexed" if self.mode == ImportMode.COPY else "indexed"
        return (f"The {self.instances_added + self.updated} instances read before the cancel are kept, {where}; "
                "the files not read yet were not imported (import again to finish: what is in is skipped).")

    def headline(self) -> str:
        """The sentence the TUI shows when an import ends (mode and time first, warnings counted)."""
        head = "Import cancelled" if self.cancelled else "Import finished"
        return (f"{head} ({self.mode}, {self.files_seen} files in {self.elapsed_s:.1f} s): "
                f"{self._added()} added; {self.updated} updated, "
                f"{self.skipped_unchanged} unchanged, {len(self.rejected)} rejected{self._extra()}"
                + (f", {counted(len(self.warnings), 'warning')}" if self.warnings else "") + "." + self._stopped()
                + "".join(f" {line}" for line in (self._kept(), *(f"{n}." for n in self.notes)) if line))

    def _stopped(self) -> str:
        if self.min_free:
            return (f"; stopped before the disk went under the free-space floor of {self.min_free / 2**20:,.0f} MiB "
                    f"(min_free_bytes in [local] of nodes.toml) — what was copied is indexed; make room and import "
                    f"again")
        return ("; stopped: the disk is full — what was copied is indexed; make room and import again"
                if self.disk_full else "")

    def _extra(self) -> str:
        """The counts that are said only when not zero."""
        return ((f", {self.duplicates} duplicates (same SOPInstanceUID, not imported)" if self.duplicates else "")
                + (f", {self.outside_dicomdir} found outside the DICOMDIR" if self.outside_dicomdir else "")
                + (f", {self.meta_written} given a file meta" if self.meta_written else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": str(self.mode),
            "patients_added": self.patients_added,
            "studies_added": self.studies_added,
            "series_added": self.series_added,
            "instances_added": self.instances_added,
            "updated": self.updated,
            "skipped_unchanged": self.skipped_unchanged,
            "meta_written": self.meta_written,
            "duplicates": self.duplicates,
            "outside_dicomdir": self.outside_dicomdir,
            "left_out": self.left_out,
            "rejected": [{"path": p.path, "reason": p.reason} for p in self.rejected],
            "warnings": [{"path": p.path, "reason": p.reason} for p in self.warnings],
            "files_seen": self.files_seen,
            "elapsed_s": round(self.elapsed_s, 3),
            "cancelled": self.cancelled,
            "disk_full": self.disk_full,
            "min_free": self.min_free,
            "notes": list(self.notes),
        }
