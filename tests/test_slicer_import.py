"""Importing a 3D Slicer DICOM database folder (issue 14 item 24): ``ctkDICOM.sql`` beside ``dicom/`` is read
through its Images table (CTK's schema): the files Slicer copied (paths relative to its folder, as CTK writes them)
and those it linked elsewhere (absolute paths); nothing in the Slicer folder is written; the summary says so."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.slicerdb import read_slicer_database
from dicomtui.core.synth import SeriesSpec, write_series

# CTK's Libs/DICOM/Core/Resources/dicom-schema.sql (schema 0.6.x), the tables and columns an import reads
CTK_SCHEMA = """
CREATE TABLE 'SchemaInfo' ( 'Version' VARCHAR(1024) NOT NULL );
INSERT INTO 'SchemaInfo' VALUES('0.6.3');
CREATE TABLE 'Images' ( 'SOPInstanceUID' VARCHAR(64) NOT NULL, 'Filename' VARCHAR(1024) NOT NULL,
  'SeriesInstanceUID' VARCHAR(64) NOT NULL, 'InsertTimestamp' VARCHAR(20) NOT NULL,
  'DisplayedFieldsUpdatedTimestamp' DATETIME NULL, PRIMARY KEY ('SOPInstanceUID') );
CREATE TABLE 'Patients' ( 'UID' INTEGER PRIMARY KEY AUTOINCREMENT, 'PatientsName' VARCHAR(255) NULL,
  'PatientID' VARCHAR(255) NULL, 'InsertTimestamp' VARCHAR(20) NOT NULL );
CREATE TABLE 'Studies' ( 'StudyInstanceUID' VARCHAR(64) NOT NULL, 'PatientsUID' INT NOT NULL,
  PRIMARY KEY ('StudyInstanceUID') );
CREATE TABLE 'Series' ( 'SeriesInstanceUID' VARCHAR(64) NOT NULL, 'StudyInstanceUID' VARCHAR(64) NOT NULL,
  PRIMARY KEY ('SeriesInstanceUID') );
"""


def make_slicer_database(tmp_path: Path, missing_link: bool = False) -> tuple[Path, int, int]:
    """A Slicer database folder as Slicer leaves it: 3 copied files under dicom/<study>/<series>/<sop> (no
    extension) recorded relative to the folder, 1 recorded by its absolute path inside it, and 2 linked files
    elsewhere recorded by absolute path; a tag cache and thumbnails beside. Returns (folder, copied, linked)."""
    import pydicom

    folder = tmp_path / "SlicerDICOMDatabase"
    copied = write_series(tmp_path / "gen" / "copied", SeriesSpec(slices=4, series_uid="1.2.826.0.1.3680043.8.498.41",
                                                                  patient_id="SLICER1", seed=1))
    linked = write_series(tmp_path / "elsewhere", SeriesSpec(slices=2, series_uid="1.2.826.0.1.3680043.8.498.42",
                                                            patient_id="SLICER2", seed=2))
    rows = []
    for n, source in enumerate(copied):
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        rel = Path("dicom", ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / rel)
        name = str(folder / rel) if n == 3 else str(rel)  # older Slicer versions wrote absolute paths
        rows.append((ds.SOPInstanceUID, name, ds.SeriesInstanceUID, f"2024-01-0{n + 1}T10:00:00"))
    for n, path in enumerate(linked):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows.append((ds.SOPInstanceUID, str(path), ds.SeriesInstanceUID, f"2024-02-0{n + 1}T10:00:00"))
    if missing_link:
        rows.append(("1.2.826.0.1.3680043.8.498.49.1", str(tmp_path / "gone" / "IM1.dcm"),
                     "1.2.826.0.1.3680043.8.498.49", "2024-03-01T10:00:00"))
    conn = sqlite3.connect(folder / "ctkDICOM.sql")
    conn.executescript(CTK_SCHEMA)
    conn.executemany("INSERT INTO Images (SOPInstanceUID, Filename, SeriesInstanceUID, InsertTimestamp) "
                     "VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    sqlite3.connect(folder / "ctkDICOMTagCache.sql").close()
    (folder / "thumbs").mkdir()
    (folder / "thumbs" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder, len(copied), len(linked)


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a folder with its content hash and mtime: what "not modified" means."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_reader_splits_copied_and_linked(tmp_path: Path) -> None:
    folder, copied, linked = make_slicer_database(tmp_path)
    files = read_slicer_database(folder)
    assert (len(files.copied), len(files.linked), files.schema) == (copied, linked, "0.6.3")
    assert all(p.startswith(str(folder) + "/dicom/") for p in files.copied)
    assert all(p.startswith(str(tmp_path / "elsewhere")) for p in files.linked)


@pytest.mark.parametrize("mode", ["--link", "--copy"])
def test_import_of_a_slicer_database_reads_its_index_and_never_writes_it(
        tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder, copied, linked = make_slicer_database(tmp_path)
    before = _fingerprint(folder)
    db = tmp_path / "db"
    assert main(["--db", str(db), "import", mode, str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"{copied + linked} instances added" in out
    assert "is a 3D Slicer DICOM database" in out and f"{copied} files copied into it and {linked} linked" in out
    assert "read only, the Slicer database was not modified" in out
    assert _fingerprint(folder) == before  # no byte, no mtime, no -journal / -wal / -shm file
    with DicomDatabase.open(db, read_only=True) as opened:
        assert opened.totals() == {"patients": 2, "studies": 2, "series": 2, "instances": copied + linked}
        paths = {r["source_path"] for r in opened.instances()}
    assert not any("thumbs" in p or p.endswith(".sql") for p in paths)  # the tag cache and thumbnails: not DICOM

    assert main(["--db", str(db), "import", mode, str(folder), "--json"]) == 0  # again: nothing new
    report = json.loads(capsys.readouterr().out)
    assert report["instances_added"] == 0 and report["notes"] and report["rejected"] == []


def test_a_missing_linked_file_is_rejected_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, copied, linked = make_slicer_database(tmp_path, missing_link=True)
    assert main(["--db", str(tmp_path / "db"), "import", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["instances_added"] == copied + linked
    assert [r["reason"] for r in report["rejected"]] == ["listed in the 3D Slicer database's Images table but missing"]


def test_a_damaged_index_is_said_and_the_folder_walked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, copied, _linked = make_slicer_database(tmp_path)
    (folder / "ctkDICOM.sql").write_bytes(b"not sqlite at all" * 100)
    assert main(["--db", str(tmp_path / "db"), "import", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["instances_added"] == copied  # the copies under dicom/ are found by walking
    assert any("its folder is walked instead" in r["reason"] for r in report["rejected"])


def test_the_index_given_by_name_imports_its_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, copied, linked = make_slicer_database(tmp_path)
    assert main(["--db", str(tmp_path / "db"), "import", str(folder / "ctkDICOM.sql"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["instances_added"] == copied + linked and "3D Slicer DICOM database" in report["notes"][0]
