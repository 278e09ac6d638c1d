"""A DICOMDIR file-set (PS3.10 and PS3.3 F) written by pydicom's ``FileSet``.

A file-set names its files by File IDs of at most 8 components of at most 8 characters from ``A-Z 0-9 _``
(PS3.10 8.2): names from the data (``Doe_John/…``) cannot be used, so an export with a DICOMDIR is laid out as
pydicom lays a file-set out: ``PT000000/ST000000/SE000000/IM000000`` (patient, study, series, instance), the
DICOMDIR at the top. Checked by ``dciodvfy`` (dicom3tools) and read by ``dcmdump`` (DCMTK) in the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FileSetWriter"]


class FileSetWriter:
    """Collects data sets, then writes the file-set: ``add`` each (its file is staged by pydicom in a temporary
    folder), ``write`` once. ``add`` raises ValueError for a data set that cannot have a directory record (no
    PatientID, a SOP class PS3.3 F gives no record type): the caller reports the file."""

    def __init__(self, file_set_id: str = "DICOMTUI") -> None:
        from pydicom.fileset import FileSet

        class NewFileSet(FileSet):
            """A file-set every instance of which is new and added once (an export's plan lists each SOP
            Instance UID once): pydicom's ``add`` first looks for the instance among those added before, by
            iterating the file-set — quadratic: 2,000 files took 33 s, 30 of them in that search. While
            ``adding``, the file-set iterates as empty, so the search finds nothing at once."""

            adding = False

            def __iter__(self):
                return iter(()) if self.adding else super().__iter__()

        self.file_set = NewFileSet()
        self.file_set.ID = file_set_id
        self.count = 0
        self.uids: set[str] = set()

    def add(self, ds: Any) -> None:
        meta = ds.file_meta
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if ds.SOPInstanceUID in self.uids:
            raise ValueError("another file of the export has the same SOP Instance UID")
        self.file_set.adding = True
        try:
            self.file_set.add(ds)
        except (AttributeError, KeyError) as exc:  # pydicom's recorders read required attributes directly
            raise ValueError(f"it cannot have a DICOMDIR record ({exc})") from exc
        finally:
            self.file_set.adding = False
        self.uids.add(ds.SOPInstanceUID)
        self.count += 1

    def write(self, destination: Path) -> Path:
        """Write the instances and the DICOMDIR into ``destination`` (made if missing); the DICOMDIR's path."""
        destination.mkdir(parents=True, exist_ok=True)
        self.file_set.write(destination)
        return destination / "DICOMDIR"

    def names(self) -> list[str]:
        """The File IDs the instances get (relative paths, ``/``-separated), known once written."""
        return [instance.FileID.replace("\\", "/") for instance in self.file_set]
