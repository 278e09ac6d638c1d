"""The de-identification mapping: original PatientID → pseudonym and date offset, original UID → new UID.

Kept as one JSON file in the database folder (``deidentification-map.json``, mode 0600, never exported) so that
the same patient gets the same pseudonym, the same UID the same new UID and the same date offset in every job,
and so that a user can re-identify their own data (PS3.15 E.1: the mapping is the "key" a site keeps). Written
beside and renamed over the old file: an interrupted save leaves the previous mapping whole.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

from ..errors import DicomtuiError

__all__ = ["MAPPING_NAME", "DeidMapping", "MappingError", "PatientPseudonym", "database_mapping"]

MAPPING_NAME = "deidentification-map.json"
OFFSET_DAYS = (-3650, -365)  # the random date shift per patient: between one and ten years back (whole days)


class MappingError(DicomtuiError):
    """The de-identification mapping file cannot be read or written; the message names the file."""


@dataclass
class PatientPseudonym:
    """A patient's pseudonym (PatientID and PatientName of the output) and date offset in whole days."""

    pseudonym: str
    offset_days: int


@dataclass
class DeidMapping:
    """Original → de-identified values; ``path`` None keeps them in memory only (one job)."""

    path: Path | None = None
    patients: dict[str, PatientPseudonym] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> DeidMapping:
        """The mapping in ``path`` (an empty one when the file does not exist yet). Raises MappingError."""
        if path is None:
            return cls()
        path = Path(path)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise MappingError(f"cannot read the de-identification mapping {path}: {exc}") from exc
        patients = {k: PatientPseudonym(v["pseudonym"], int(v["offset_days"]))
                    for k, v in data.get("patients", {}).items()}
        return cls(path, patients, dict(data.get("uids", {})))

    def patient(self, key: str) -> PatientPseudonym:
        """The pseudonym of the patient ``key`` (original PatientID), made on first use."""
        found = self.patients.get(key)
        if found is None:
            taken = {p.pseudonym for p in self.patients.values()}
            name = f"DEID-{secrets.token_hex(4).upper()}"
            while name in taken:
                name = f"DEID-{secrets.token_hex(4).upper()}"
            found = self.patients[key] = PatientPseudonym(name, -secrets.choice(range(-OFFSET_DAYS[1],
                                                                                       -OFFSET_DAYS[0] + 1)))
        return found

    def uid(self, original: str) -> str:
        """The new UID of ``original`` (a 2.25 UUID-derived UID, PS3.5 B.2), made on first use."""
        new = self.uids.get(original)
        if new is None:
            new = self.uids[original] = str(generate_uid(None))
        return new

    def save(self) -> None:
        """Write the mapping to ``path`` (nothing without one). Raises MappingError."""
        if self.path is None:
            return
        data = {"version": 1, "patients": {k: {"pseudonym": v.pseudonym, "offset_days": v.offset_days}
                                           for k, v in self.patients.items()}, "uids": self.uids}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f)
                os.replace(partial, self.path)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise MappingError(f"cannot write the de-identification mapping {self.path}: "
                               f"{exc.strerror or exc}") from exc


def database_mapping(db_folder: str | os.PathLike[str]) -> DeidMapping:
    """The mapping kept in the database folder ``db_folder`` (every job of that database uses it). Raises
    MappingError."""
    return DeidMapping.load(Path(db_folder) / MAPPING_NAME)
