"""A 3D Slicer DICOM database folder as a source of files to import, read and never written.

Slicer (through CTK's ``ctkDICOMDatabase``) keeps an SQLite index ``ctkDICOM.sql`` in its database folder, the
files it copied under ``dicom/`` in that folder, and for files added as links their absolute paths. Its ``Images``
table (``SOPInstanceUID``, ``Filename``, ``SeriesInstanceUID``, ``InsertTimestamp``; CTK's
``Libs/DICOM/Core/Resources/dicom-schema.sql``) lists every file; a ``Filename`` is relative to the database folder
when the file is inside it (CTK's ``internalPathFromAbsolute``, so that the folder can move), else absolute.

The index is opened with SQLite's URI ``mode=ro&immutable=1``: no lock, no journal, no ``-wal``/``-shm`` file, no
write of any kind, even when Slicer is running or the folder is read-only. The folder's other files (the tag cache
``ctkDICOMTagCache.sql``, thumbnails) are not DICOM data and are not imported.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

SLICER_INDEX = "ctkDICOM.sql"


@dataclass
class SlicerFiles:
    """The files a Slicer database lists: ``copied`` (inside its folder) and ``linked`` (elsewhere), absolute
    paths in the order of its Images table (by series, then insertion); ``schema`` is its SchemaInfo version."""

    folder: str
    copied: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    schema: str = ""

    def sentence(self) -> str:
        """What the import summary says about this source."""
        schema = f", schema {self.schema}" if self.schema else ""
        return (f"{self.folder} is a 3D Slicer DICOM database ({SLICER_INDEX}{schema}): read its Images table, "
                f"{len(self.copied)} files copied into it and {len(self.linked)} linked files elsewhere; "
                "read only, the Slicer database was not modified")


def is_slicer_database(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a Slicer DICOM database index (``ctkDICOM.sql``)."""
    return os.path.isfile(os.path.join(folder, SLICER_INDEX))


def read_slicer_database(folder: str | os.PathLike[str]) -> SlicerFiles:
    """The files of the Slicer database in ``folder`` (:class:`SlicerFiles`), read without writing anything.

    Raises OSError (with the reason in words) when the index cannot be read as a Slicer database (not SQLite,
    no Images table, damaged)."""
    root = os.path.abspath(os.fspath(folder))
    index = Path(root, SLICER_INDEX)
    out = SlicerFiles(root)
    try:
        conn = sqlite3.connect(f"{index.as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise OSError(f"cannot open {SLICER_INDEX} read-only: {exc}") from exc
    try:
        try:
            rows = conn.execute("SELECT Filename FROM Images ORDER BY SeriesInstanceUID, InsertTimestamp, rowid")
            names = [r[0] for r in rows if r[0]]
        except sqlite3.Error as exc:
            raise OSError(f"not a readable 3D Slicer DICOM database ({exc})") from exc
        try:
            version = conn.execute("SELECT Version FROM SchemaInfo").fetchone()
            out.schema = str(version[0]) if version else ""
        except sqlite3.Error:  # databases before CTK's schema 0.5 have no SchemaInfo
            pass
    finally:
        conn.close()
    inside = root + os.sep
    for name in names:
        path = os.path.normpath(os.path.join(root, name))  # an absolute name stays itself
        (out.copied if path.startswith(inside) else out.linked).append(path)
    return out
