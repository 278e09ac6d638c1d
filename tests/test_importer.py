"""Importing folders: link/copy, re-import, bad input, DICOMDIR, hostile UIDs, cancellation, kill -9, concurrency."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomtui.core import storage
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import ImportReport, import_paths, run_import
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, replicate, series_datasets, write_series

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm", download=False)).parent / "dicomdirtests"


def _totals(db: DicomDatabase) -> tuple[int, int, int, int]:
    s = db.stats()
    return s["patients"], s["studies"], s["series"], s["instances"]


def _consistent(db: DicomDatabase) -> None:
    """Kept counts equal real counts, no orphan rows, no duplicate SOP UIDs."""
    q = lambda sql: db.conn.execute(sql).fetchone()[0]  # noqa: E731
    assert q("SELECT COUNT(*) FROM series s WHERE num_instances != "
             "(SELECT COUNT(*) FROM instances WHERE series_fk = s.id)") == 0
    assert q("SELECT COUNT(*) FROM studies s WHERE num_series != "
             "(SELECT COUNT(*) FROM series WHERE study_fk = s.id)") == 0
    assert q("SELECT COUNT(*) FROM patients p WHERE num_studies != "
             "(SELECT COUNT(*) FROM studies WHERE patient_fk = p.id)") == 0
    assert q("SELECT COUNT(*) FROM series WHERE num_instances = 0") == 0
    assert q("SELECT COUNT(DISTINCT SOPInstanceUID) FROM instances") == q("SELECT COUNT(*) FROM instances")
    assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_link_import_then_reimport_adds_nothing(series_folder: Path, db: DicomDatabase) -> None:
    report = import_paths(db, [series_folder], ImportMode.LINK)
    assert (report.patients_added, report.studies_added, report.series_added, report.instances_added) == (1, 1, 2, 15)
    assert not report.rejected and not report.warnings
    rows = db.instances()
    assert all(not r["stored"] and Path(r["path"]).is_absolute() and Path(r["path"]).is_file() for r in rows)
    again = import_paths(db, [series_folder], ImportMode.LINK)
    assert again.skipped_unchanged == 15 and again.instances_added == 0 and again.updated == 0
    assert _totals(db) == (1, 1, 2, 15)
    _consistent(db)


def test_examine_tags_are_stored(series_folder: Path, db: DicomDatabase) -> None:
    import_paths(db, [series_folder / "a"])
    row = db.instances()[0]
    ds = pydicom.dcmread(row["path"])
    assert row["ImagePositionPatient"] == "\\".join(str(v) for v in ds.ImagePositionPatient)
    assert row["ImageOrientationPatient"] == "1.0\\0.0\\0.0\\0.0\\1.0\\0.0"
    assert (row["Rows"], row["Columns"], row["BitsAllocated"], row["PixelRepresentation"]) == (64, 64, 16, 1)
    assert (row["RescaleIntercept"], row["RescaleSlope"], row["WindowCenter"]) == (-1024.0, 1.0, str(ds.WindowCenter))
    assert row["SpecificCharacterSet"] == "ISO_IR 192" and row["FrameOfReferenceUID"] == ds.FrameOfReferenceUID
    with open(row["path"], "rb") as f:
        f.seek(row["pixel_offset"])
        assert f.read(len(ds.PixelData)) == ds.PixelData


def test_changed_linked_file_is_reindexed(series_folder: Path, db: DicomDatabase) -> None:
    import_paths(db, [series_folder])
    path = sorted((series_folder / "a").glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    ds.WindowCenter = 60
    ds.save_as(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    report = import_paths(db, [series_folder])
    assert report.updated == 1 and report.skipped_unchanged == 14 and report.instances_added == 0
    assert db.find("instance", ds.SOPInstanceUID)["WindowCenter"] == str(ds.WindowCenter)


def test_same_sop_from_another_file_updates_and_newer_wins(series_folder: Path, tmp_path: Path,
                                                          db: DicomDatabase) -> None:
    import_paths(db, [series_folder / "a"], ImportMode.COPY)
    first = sorted((series_folder / "a").glob("*.dcm"))[0]
    sop = pydicom.dcmread(first).SOPInstanceUID
    old_stored = db.abspath(db.find("instance", sop)["path"], True)
    other = tmp_path / "elsewhere" / "copy.dcm"
    other.parent.mkdir()
    shutil.copy(first, other)
    report = import_paths(db, [other], ImportMode.LINK)
    assert report.updated == 1 and report.instances_added == 0
    row = db.find("instance", sop)
    assert row["path"] == str(other) and not row["stored"]
    assert not old_stored.exists()  # our superseded copy is removed; the user's files are not
    assert first.exists() and other.exists()
    assert _totals(db) == (1, 1, 1, 10)


def test_bad_input_is_reported_and_the_rest_imported(tmp_path: Path, db: DicomDatabase) -> None:
    folder = tmp_path / "mixed"
    good = write_series(folder / "good", SeriesSpec(slices=3))
    (folder / "notes.txt").write_text("not dicom at all\n" * 10)
    (folder / "empty.dcm").write_bytes(b"")
    data = good[0].read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) - 100])
    (folder / "header_only_cut.dcm").write_bytes(data[:300])
    ds = series_datasets(SeriesSpec(slices=1, seed=9))[0]
    del ds.SeriesInstanceUID
    ds.save_as(folder / "no_series_uid.dcm", enforce_file_format=True)
    ds = series_datasets(SeriesSpec(slices=1, seed=10))[0]
    del ds.PatientID
    ds.save_as(folder / "no_patient_id.dcm", enforce_file_format=True)
    (folder / "dangling").symlink_to(folder / "nowhere.dcm")
    shutil.copy(get_testdata_file("MR_small_bigendian.dcm", download=False), folder / "bigendian.dcm")
    ds = series_datasets(SeriesSpec(slices=1, seed=11))[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(folder / "deflate.dcm", enforce_file_format=True)

    report = import_paths(db, [folder], ImportMode.LINK)
    reasons = {Path(p.path).name: p.reason for p in report.rejected}
    assert set(reasons) == {"notes.txt", "empty.dcm", "truncated.dcm", "header_only_cut.dcm",
                            "no_series_uid.dcm", "dangling"}
    assert "not a DICOM file" in reasons["notes.txt"]
    assert "empty" in reasons["empty.dcm"]
    assert "truncated" in reasons["truncated.dcm"] and "truncated" in reasons["header_only_cut.dcm"]
    assert "SeriesInstanceUID" in reasons["no_series_uid.dcm"]
    assert "broken symbolic link" in reasons["dangling"]
    assert [Path(w.path).name for w in report.warnings] == ["no_patient_id.dcm"]
    assert report.instances_added == 3 + 1 + 2  # good series, the one without PatientID, big endian, deflate
    generated = [p for p in db.patients() if p["generated_id"]]
    assert len(generated) == 1 and generated[0]["PatientID"].startswith("DICOMTUI-")
    # the generated ID is stable: importing the file again finds the same patient
    again = import_paths(db, [folder / "no_patient_id.dcm"], ImportMode.COPY)
    assert again.patients_added == 0
    _consistent(db)


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    """Permissions do not stop root, so as root the import runs without the capabilities that bypass them."""
    folder = tmp_path / "perm"
    write_series(folder, SeriesSpec(slices=3))
    secret = sorted(folder.glob("*.dcm"))[0]
    secret.chmod(0)
    cmd = [sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "import", str(folder), "--json"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to drop root's file-permission override")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    import json

    report = json.loads(out.stdout)
    assert report["instances_added"] == 2
    assert [(Path(r["path"]).name, "permission denied" in r["reason"]) for r in report["rejected"]] == [
        (secret.name, True)]


def test_dicomdir_reports_missing_files_and_imports_unlisted_ones(tmp_path: Path, db: DicomDatabase) -> None:
    """Issue 12: a DICOMDIR no longer limits the import; what it does not list is imported and counted."""
    media = tmp_path / "media"
    shutil.copytree(DICOMDIR_TESTS, media)
    for extra in media.glob("DICOMDIR-*"):  # pydicom's variants of the index are not part of the media
        extra.unlink()
    write_series(media / "UNLISTED", SeriesSpec(slices=2))
    referenced = pydicom.dcmread(media / "DICOMDIR").DirectoryRecordSequence
    files = {(r.ReferencedFileID,) if isinstance(r.ReferencedFileID, str) else tuple(r.ReferencedFileID)
             for r in referenced if "ReferencedFileID" in r}
    victim = sorted(files)[0]
    (media.joinpath(*victim)).unlink()
    report = import_paths(db, [media], ImportMode.LINK)
    tiny_alpha = 50  # images of pydicom's TINY_ALPHA media, a sub-folder the top DICOMDIR does not list
    assert report.instances_added == len(files) - 1 + 2 + tiny_alpha
    assert [(os.path.relpath(r.path, media), r.reason) for r in report.rejected] == [
        (os.path.join(*victim), "referenced by DICOMDIR but missing")]
    assert sum(1 for r in db.instances() if "UNLISTED" in r["path"]) == 2
    # TINY_ALPHA's images are listed by its own DICOMDIR; outside any: README.txt, UNLISTED/*, TINY_ALPHA/README.
    # The READMEs are not DICOM: named in their DICOMDIR's warning, not rejected (media carry viewers and notes).
    assert report.outside_dicomdir == 4
    assert sorted((os.path.relpath(w.path, media), w.reason) for w in report.warnings) == [
        ("DICOMDIR", "3 files in its folder not listed in this DICOMDIR: read too (README.txt, UNLISTED/ (2 files)); "
                     "not DICOM, left out: 1 (README.txt)"),
        ("TINY_ALPHA/DICOMDIR", "1 file in its folder not listed in this DICOMDIR: read too (README); "
                                "not DICOM, left out: 1 (README)")]
    _consistent(db)


def test_hidden_files_and_symlink_loops(tmp_path: Path, db: DicomDatabase) -> None:
    folder = tmp_path / "tree"
    write_series(folder / ".hidden", SeriesSpec(slices=2, seed=1))
    write_series(folder / "visible", SeriesSpec(slices=2, seed=2), name=".IM{index:03d}")
    (folder / "visible" / "loop").symlink_to(folder)  # a loop back to the top
    (folder / "again").symlink_to(folder / ".hidden")  # the same folder reached twice
    report = import_paths(db, [folder])
    assert report.instances_added == 4 and not report.rejected
    assert report.files_seen == 4


@pytest.mark.parametrize("hostile", ["../../../etc/passwd", "/etc/passwd", "a/../../b", "1" * 250,
                                     "1.2.\x01\x1b[31m.3", ".", "..", "1.2.3\\..\\..\\x"])
def test_hostile_uids_stay_inside_storage(tmp_path: Path, db: DicomDatabase, hostile: str) -> None:
    """Key UIDs with characters no UID holds (PS3.5 9.1) are rejected with a sentence before anything is copied;
    one made of digits and dots only, however long, is imported with a warning and its file stays inside storage
    under a name of at most 255 bytes (storage.safe_name, the second line of defence)."""
    ds = series_datasets(SeriesSpec(slices=1))[0]
    with warnings.catch_warnings():  # pydicom warns about the invalid UIDs we write on purpose
        warnings.simplefilter("ignore")
        ds.StudyInstanceUID = hostile
        ds.SeriesInstanceUID = hostile + ("9" if not hostile.strip("0123456789.") else "s")
        ds.SOPInstanceUID = hostile
        ds.save_as(tmp_path / "evil.dcm", enforce_file_format=True)
    report = import_paths(db, [tmp_path / "evil.dcm"], ImportMode.COPY)
    if hostile.strip("0123456789."):
        assert report.instances_added == 0
        assert [p.reason for p in report.rejected] and all(
            "is not a valid UID (PS3.5 9.1" in p.reason for p in report.rejected), report.rejected
        assert not [f for f in (db.root / "dicom").rglob("*") if f.is_file()]
        return
    assert report.instances_added == 1, report.rejected
    row = db.instances()[0]
    stored = (db.root / row["path"]).resolve()
    assert (db.root / "dicom").resolve() in stored.parents and stored.is_file()
    assert all(len(part) <= 255 for part in stored.parts)
    assert row["SOPInstanceUID"] == hostile.strip(" ")
    db.delete([("instance", row["id"])])
    assert not stored.exists() and (db.root / "dicom").is_dir()


def test_safe_names() -> None:
    assert storage.safe_name("1.2.840.10008.1") == "1.2.840.10008.1"
    for bad in ("..", ".", "", "../x", "a/b", "1" * 65, "x\x00y"):
        name = storage.safe_name(bad)
        assert name.startswith("x") and "/" not in name and name not in (".", "..") and len(name) <= 64
    assert storage.safe_name("a/b") != storage.safe_name("a_b")


def test_progress_events_and_cancel(tmp_path: Path, db: DicomDatabase) -> None:
    tpl = write_series(tmp_path / "tpl", SeriesSpec(slices=20))
    replicate(tpl, 150, tmp_path / "many", patients=3)  # 3,000 files
    events = [e for e in run_import(db, [tmp_path / "many"], ImportMode.LINK, workers=0)]
    assert events[0].phase == "scan" and isinstance(events[-1], ImportReport)
    assert events[-2].phase == "import" and events[-2].done == events[-2].total == 3000
    db.delete([("patient", p["id"]) for p in db.patients()])

    cancel = threading.Event()
    cancel.set()  # cancelled from the start: the import stops after its first chunk, with that chunk committed
    report = import_paths(db, [tmp_path / "many"], ImportMode.LINK, workers=0, cancel=cancel)
    assert report.cancelled and 0 < report.instances_added < 3000
    _consistent(db)
    rest = import_paths(db, [tmp_path / "many"])
    assert rest.skipped_unchanged == report.instances_added
    assert rest.instances_added == 3000 - report.instances_added
    assert _totals(db) == (3, 3, 150, 3000)


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12,000 small files in 120 series of 4 patients (made by byte replication: fast)."""
    root = tmp_path_factory.mktemp("big")
    tpl = write_series(root / "tpl", SeriesSpec(slices=100, rows=32, cols=32))
    replicate(tpl, 120, root / "files", patients=4)
    shutil.rmtree(root / "tpl")
    return root / "files"


def _cli(db_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dicomtui", "--db", str(db_path), *args]


def test_kill_9_mid_import_loses_nothing(big_folder: Path, tmp_path: Path) -> None:
    db_path = tmp_path / "db"
    DicomDatabase.open(db_path).close()
    proc = subprocess.Popen(_cli(db_path, "import", "--copy", str(big_folder)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with DicomDatabase.open(db_path) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if watcher.stats()["instances"] > 0:
                    break
                time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    _wait_for_workers_to_die(db_path)
    with DicomDatabase.open(db_path) as db:
        partial = db.stats()["instances"]
        assert 0 < partial < 12000
        _consistent(db)
        assert not db.check().missing  # every row's file is in storage
        report = import_paths(db, [big_folder], ImportMode.COPY)
        assert report.skipped_unchanged == partial
        assert report.instances_added == 12000 - partial and not report.rejected
        assert _totals(db) == (4, 4, 120, 12000)
        _consistent(db)
        fixed = db.check(repair=True)  # files renamed into storage before the kill but never committed
        assert not fixed.errors and not fixed.missing
        final = db.check()
        assert final.ok and not final.stale_temp
        assert _totals(db) == (4, 4, 120, 12000)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_workers_to_die(db_path: Path, seconds: float = 20.0) -> None:
    """The killed importer's workers get SIGKILL from the kernel (PR_SET_PDEATHSIG), a moment later: wait for
    the processes named by its temp files to be gone, so that their files count as stale."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = {int(p.name.split("-", 1)[0]) for p in (db_path / "incoming").iterdir()
                if p.name.split("-")[0].isdigit()}
        if not any(_alive(pid) for pid in pids):
            return
        time.sleep(0.05)


def test_two_processes_import_into_one_database(big_folder: Path, tmp_path: Path) -> None:
    db_path = tmp_path / "db"
    DicomDatabase.open(db_path).close()
    halves = sorted(big_folder.iterdir())
    first = [str(p) for p in halves[:60]]
    second = [str(p) for p in halves[50:]]  # 10 series overlap: both processes import them
    procs = [subprocess.Popen(_cli(db_path, "import", "--json", *paths), stdout=subprocess.PIPE, text=True)
             for paths in (first, second)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    import json

    reports = [json.loads(o) for o in outputs]
    added = sum(r["instances_added"] for r in reports)
    # the 1,000 overlapping files: updated by the later process, or skipped if it saw the earlier one's rows
    again = sum(r["updated"] + r["skipped_unchanged"] for r in reports)
    assert added == 12000 and again == 1000
    with DicomDatabase.open(db_path) as db:
        assert _totals(db) == (4, 4, 120, 12000)
        _consistent(db)


def test_import_report_summary_and_headline() -> None:
    from dicomtui.core.indexer import Problem

    report = ImportReport(patients_added=1, studies_added=1, series_added=2, instances_added=15, updated=3,
                          skipped_unchanged=4, rejected=[Problem("/x", "not DICOM")], files_seen=22, elapsed_s=0.5,
                          mode=ImportMode.COPY, database="/data/db")
    assert report.summary() == (
        "Copied into /data/db: 1 patient, 1 study, 2 series, 15 instances added; 3 updated, 4 unchanged "
        "(skipped), 1 rejected — 22 files in 0.50 s (44 files/s)")
    assert report.summary("db").startswith("Copied into db: ")
    assert report.headline() == (
        "Import finished (copy, 22 files in 0.5 s): 1 patient, 1 study, 2 series, 15 instances added; "
        "3 updated, 4 unchanged, 1 rejected.")
    report.cancelled, report.mode, report.warnings = True, ImportMode.LINK, [Problem("/y", "no PatientID")]
    # issue 14 item 20: a cancelled import's summary goes on to say what was kept (a line of its own)
    first, kept = report.summary().split("\n")
    assert first.startswith("Linked into /data/db: ") and first.endswith(" (cancelled)")
    assert kept.startswith("The 18 instances read before the cancel are kept, indexed; the files not read yet")
    assert report.headline().startswith("Import cancelled (link, ") and ", 1 warning. The 18 instances read" in (
        report.headline())


def test_the_report_names_the_database(tmp_path: Path, series_folder: Path, db: DicomDatabase) -> None:
    report = import_paths(db, [series_folder])
    assert report.database == str(db.root) and report.summary().startswith(f"Linked into {db.root}: ")
    assert report.to_dict()["mode"] == "link"


# ---- regressions a review found: each test is the reproduction, made to pass ----


def test_linking_the_database_storage_deletes_nothing(tmp_path: Path, series_folder: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [series_folder], ImportMode.COPY)
        report = import_paths(db, [db.root / "dicom"], ImportMode.LINK)
        assert [p.reason for p in report.rejected] == [
            "inside the database folder: not imported (its files are already ours)"]
        report = import_paths(db, [tmp_path], ImportMode.LINK)  # a folder that contains the database
        assert report.instances_added == 0 and report.skipped_unchanged == 0
        assert not any("dicomtui.sqlite" in p.path for p in report.rejected)
        assert db.check().ok and tuple(db.stats()[k] for k in ("patients", "studies", "series", "instances")) == (
            1, 1, 2, 15)



@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_dicomdir_references_outside_its_folder_are_ignored(tmp_path: Path, db: DicomDatabase) -> None:
    from pydicom.fileset import FileSet

    media = tmp_path / "media"
    outside = write_series(tmp_path / "secret", SeriesSpec(slices=1, seed=4))
    inside = write_series(media / "A", SeriesSpec(slices=2, seed=5), name="IM{index:05d}")
    fs = FileSet()
    for path in inside:
        fs.add(pydicom.dcmread(path))
    fs.write(media / "out")
    dicomdir = pydicom.dcmread(media / "out" / "DICOMDIR")
    for rec in dicomdir.DirectoryRecordSequence:
        if "ReferencedFileID" in rec:
            rec.ReferencedFileID = ["..", "..", "secret", outside[0].name]
            break
    dicomdir.save_as(media / "out" / "DICOMDIR")
    report = import_paths(db, [media / "out"])
    assert any(p.reason == "DICOMDIR reference outside its folder: ignored" for p in report.rejected)
    assert not any("secret" in r["path"] for r in db.instances())



def test_an_unreadable_dicomdir_falls_back_to_the_folder(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "cd", SeriesSpec(slices=3))
    (tmp_path / "cd" / "DICOMDIR").write_bytes(b"")
    report = import_paths(db, [tmp_path / "cd"])
    assert report.instances_added == 3
    assert any("importing every file of its folder instead" in p.reason for p in report.rejected)



def test_a_fifo_in_a_folder_is_reported(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=1))
    os.mkfifo(tmp_path / "in" / "pipe")
    report = import_paths(db, [tmp_path / "in"])
    assert [(Path(p.path).name, p.reason) for p in report.rejected] == [
        ("pipe", "not a regular file (FIFO)")]


# ---- issue 12: files without file meta; library warnings ----

def test_copy_mode_stores_bare_data_sets_as_part10_files_and_says_so(tmp_path: Path, db: DicomDatabase) -> None:
    from dicomtui.core import dicomfile
    from dicomtui.core.net import wire
    from tests.test_dicomfile import bare

    originals = write_series(tmp_path / "orig", SeriesSpec(slices=2, rows=8, cols=8))
    sources = [bare(originals[0], tmp_path / "cd" / "IM1", explicit=False),
               bare(originals[1], tmp_path / "cd" / "IM2", explicit=True)]
    report = import_paths(db, [tmp_path / "cd"], mode="copy")
    assert report.instances_added == 2 and not report.rejected
    assert report.meta_written == 2 and report.to_dict()["meta_written"] == 2
    assert "0 rejected, 2 given a file meta — 2 files" in report.summary()
    assert "0 rejected, 2 given a file meta, 2 warnings." in report.headline()
    assert sorted((Path(p.path).name, p.reason) for p in report.warnings) == [
        ("IM1", dicomfile.META_WRITTEN), ("IM2", dicomfile.META_WRITTEN)]
    by_uid = {r["SOPInstanceUID"]: r for r in db.instances()}
    for source, syntax in zip(sources, ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"), strict=True):
        ds = pydicom.dcmread(source, force=True)
        row = by_uid[ds.SOPInstanceUID]
        stored = db.abspath(row["path"], True).read_bytes()
        assert stored[:128] == b"\0" * 128 and stored[128:132] == b"DICM"
        meta = pydicom.dcmread(db.abspath(row["path"], True)).file_meta
        assert (meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID,
                meta.ImplementationClassUID) == (ds.SOPClassUID, ds.SOPInstanceUID, syntax, wire.IMPLEMENTATION_UID)
        layout = dicomfile.layout_of(stored[: dicomfile.HEAD_SIZE])
        assert stored[layout.dataset_offset:] == source.read_bytes()  # the data set as it came
        assert row["TransferSyntaxUID"] == syntax
    again = import_paths(db, [tmp_path / "cd"], mode="copy")
    assert (again.skipped_unchanged, again.meta_written) == (2, 0)
    with DicomDatabase.open(tmp_path / "db2") as other:
        linked = import_paths(other, [tmp_path / "cd"])
    assert linked.meta_written == 0 and "given a file meta" not in linked.summary()


def test_pydicom_warnings_at_import_are_reported_per_file_not_printed(tmp_path: Path, db: DicomDatabase) -> None:
    from tests.test_dicomfile import MISMATCH_WARNING, mismatched

    originals = write_series(tmp_path / "orig", SeriesSpec(slices=2, rows=8, cols=8))
    for n, original in enumerate(originals, 1):  # the same warning twice: each file gets it
        mismatched(original, tmp_path / "odd" / f"IM{n}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped would turn into a rejection
        report = import_paths(db, [tmp_path / "odd"])
    assert not report.rejected
    assert sorted((Path(p.path).name, p.reason) for p in report.warnings) == [
        ("IM1", f"pydicom: {MISMATCH_WARNING}"), ("IM2", f"pydicom: {MISMATCH_WARNING}")]


# ---- issue 12: DICOMDIR quirks; one SOPInstanceUID in several files ----

def _fileset_media(tmp_path: Path, slices: int) -> Path:
    """A media folder with a DICOMDIR written by pydicom's FileSet (file IDs PT000000/ST000000/SE000000/IM…)."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    for path in write_series(tmp_path / "src", SeriesSpec(slices=slices, seed=7)):
        fs.add(pydicom.dcmread(path))
    fs.write(tmp_path / "media")
    return tmp_path / "media"


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_dicomdir_entries_find_files_with_an_extension(tmp_path: Path, db: DicomDatabase) -> None:
    """Entry IM000000, file IM000000.dcm: all 3 imported (main: 0 of 3, "referenced by DICOMDIR but missing")."""
    media = _fileset_media(tmp_path, 3)
    for image in [p for p in media.rglob("IM*") if p.is_file()]:
        image.rename(image.with_name(image.name + ".dcm"))
    report = import_paths(db, [media])
    assert report.instances_added == 3 and report.rejected == [] and report.outside_dicomdir == 0


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_a_folder_the_dicomdir_does_not_list_is_imported_and_counted(tmp_path: Path, db: DicomDatabase) -> None:
    """A sub-folder of 50 images beside the DICOMDIR: imported, counted and named (main: silently skipped)."""
    media = _fileset_media(tmp_path, 3)
    write_series(media / "EXTRA", SeriesSpec(slices=50, rows=4, cols=4, seed=8))
    report = import_paths(db, [media])
    assert report.instances_added == 53 and report.rejected == []
    assert report.outside_dicomdir == 50
    assert [(w.path, w.reason) for w in report.warnings] == [
        (str(media / "DICOMDIR"), "50 files in its folder not listed in this DICOMDIR: read too (EXTRA/ (50 files))")]
    assert "50 found outside the DICOMDIR" in report.summary()
    again = import_paths(db, [media])
    assert (again.instances_added, again.updated, again.skipped_unchanged) == (0, 0, 53)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_a_dicomdir_with_another_name_is_named_as_such(tmp_path: Path, db: DicomDatabase) -> None:
    """A Media Storage Directory file not named DICOMDIR (main: "not importable: no StudyInstanceUID")."""
    media = _fileset_media(tmp_path, 2)
    (media / "DICOMDIR").rename(media / "DICOMDIR-copy.dcm")
    report = import_paths(db, [media])
    assert report.instances_added == 2
    assert [(Path(p.path).name, p.reason) for p in report.rejected] == [
        ("DICOMDIR-copy.dcm", "a DICOMDIR index (media storage directory), not an image: its folder is scanned")]
    other = DicomDatabase.open(tmp_path / "db2")
    try:  # given by itself, its entries are followed
        alone = import_paths(other, [media / "DICOMDIR-copy.dcm"])
        assert alone.instances_added == 2 and alone.rejected == []
    finally:
        other.close()


def _one_image_in_five_files(folder: Path) -> dict[str, Path]:
    """One SOPInstanceUID in five files: the lossy one first in path order, then four lossless encodings."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless

    folder.mkdir(parents=True)
    files = {}
    for name, syntax in [("a-lossy-jpeg.dcm", JPEGBaseline8Bit), ("b-explicit.dcm", ExplicitVRLittleEndian),
                         ("c-implicit.dcm", ImplicitVRLittleEndian), ("d-rle.dcm", RLELossless),
                         ("e-deflate.dcm", DeflatedExplicitVRLittleEndian)]:
        ds = series_datasets(SeriesSpec(slices=1, rows=8, cols=8, seed=9))[0]
        if syntax == JPEGBaseline8Bit:  # the header is what import reads: a stand-in JPEG stream will do
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
        elif syntax == RLELossless:
            ds.compress(RLELossless, generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = syntax
        files[name] = folder / name
        ds.save_as(files[name], enforce_file_format=True)
    return files


@pytest.mark.parametrize("mode", [ImportMode.LINK, ImportMode.COPY])
def test_one_sop_uid_in_five_files_keeps_the_first_lossless_one(tmp_path: Path, db: DicomDatabase,
                                                                 mode: ImportMode) -> None:
    """Main: "1 added, 4 updated", no warning, link and copy keep different files, every re-import "4 updated"."""
    import filecmp

    files = _one_image_in_five_files(tmp_path / "same")
    report = import_paths(db, [tmp_path / "same"], mode)
    assert (report.instances_added, report.updated, report.duplicates) == (1, 0, 4)
    kept = str(files["b-explicit.dcm"])  # lossless before lossy, then path order
    (row,) = db.instances()
    assert row["source_path"] == kept
    assert filecmp.cmp(db.abspath(row["path"], bool(row["stored"])), kept, shallow=False)
    (warning,) = report.warnings
    assert warning.path == kept
    assert warning.reason.startswith(f"SOPInstanceUID {row['SOPInstanceUID']} is in 5 files: kept this one")
    assert all(str(f) in warning.reason for name, f in files.items() if name != "b-explicit.dcm")
    for _ in range(2):
        again = import_paths(db, [tmp_path / "same"], mode)
        assert (again.instances_added, again.updated, again.duplicates, again.skipped_unchanged) == (0, 0, 0, 5)
        assert db.instances()[0]["source_path"] == kept
    _consistent(db)


def test_the_kept_file_is_the_same_across_batches_and_workers(tmp_path: Path, db: DicomDatabase,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy mode with one file per chunk, two workers and batches of two: the kept copy is still the rule's."""
    import filecmp

    from dicomtui.core import indexer

    monkeypatch.setattr(indexer, "CHUNK", 1)
    monkeypatch.setattr(indexer, "BATCH", 2)
    files = _one_image_in_five_files(tmp_path / "same")
    write_series(tmp_path / "same" / "others", SeriesSpec(slices=6, rows=4, cols=4, seed=10))
    report = import_paths(db, [tmp_path / "same"], ImportMode.COPY, workers=2)
    assert (report.instances_added, report.updated, report.duplicates) == (7, 0, 4)
    row = next(r for r in db.instances() if r["source_path"].endswith(".dcm") and "others" not in r["path"])
    assert row["source_path"] == str(files["b-explicit.dcm"])
    assert filecmp.cmp(db.abspath(row["path"], True), files["b-explicit.dcm"], shallow=False)
    again = import_paths(db, [tmp_path / "same"], ImportMode.COPY, workers=2)
    assert (again.instances_added, again.updated, again.skipped_unchanged) == (0, 0, 11)
    assert filecmp.cmp(db.abspath(row["path"], True), files["b-explicit.dcm"], shallow=False)
    assert db.check().ok
    _consistent(db)


PYDICOM_TEST_FILES = DICOMDIR_TESTS.parent


@pytest.mark.parametrize("mode", [ImportMode.LINK, ImportMode.COPY])
def test_pydicom_test_files_imported_twice_are_unchanged_the_second_time(tmp_path: Path, db: DicomDatabase,
                                                                         mode: ImportMode) -> None:
    """The issue's "done when": every file of pydicom's test_files (those present locally) unchanged or rejected
    for the same reason the second time (main: 28 "updated" every time: pydicom ships images in several
    transfer syntaxes with one SOPInstanceUID)."""
    first = import_paths(db, [PYDICOM_TEST_FILES], mode)
    assert first.instances_added > 100 and first.updated == 0 and first.duplicates > 0
    second = import_paths(db, [PYDICOM_TEST_FILES], mode)
    assert (second.instances_added, second.updated, second.duplicates) == (0, 0, 0)
    assert second.left_out == first.left_out == 2  # dicomdirtests/README.txt, TINY_ALPHA/README: named, not DICOM
    assert second.skipped_unchanged + len(second.rejected) + second.left_out == second.files_seen == first.files_seen
    assert sorted((p.path, p.reason) for p in second.rejected) == sorted((p.path, p.reason) for p in first.rejected)
    assert db.check().ok
    _consistent(db)
