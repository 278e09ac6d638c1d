"""Export of database items to a folder: names from the data in a tree or flat, stable order by InstanceNumber,
nothing overwritten unless asked, linked files read from their paths, the transform hook, cancel, a ZIP, and a
DICOMDIR that dciodvfy (dicom3tools) accepts and dcmdump (DCMTK) reads."""

from __future__ import annotations

import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import ExportError
from dicomtui.core.export import ExportOptions, Layout, export_items, plan_export
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode, Level
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program

JOHN = "P1_Doe_John/20240115_Synthetic_study/3_T1_axial"
JANE = "P1_Doe_Jane/20240115_Synthetic_study/1_Axial"


def _data(tmp_path: Path, db: DicomDatabase) -> list[tuple[str, int]]:
    """John's series (4 slices, copied into the database, written in reverse InstanceNumber order) and Jane's
    (2 slices, linked; same PatientID): both patients as items."""
    john = write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^John", patient_id="P1", series_number=3,
                                                          series_description="T1 axial", slices=4, seed=1))
    for k, path in enumerate(john):  # file names against InstanceNumber: the export orders by InstanceNumber
        path.rename(path.with_name(f"R{len(john) - k}.dcm"))
    write_series(tmp_path / "in2" / "b", SeriesSpec(patient_name="Doe^Jane", patient_id="P1", slices=2, seed=2))
    import_paths(db, [tmp_path / "in"], ImportMode.COPY)
    import_paths(db, [tmp_path / "in2"], ImportMode.LINK)
    return [(Level.PATIENT, p["id"]) for p in db.patients()]


def _instance_numbers(folder: Path, names: list[str]) -> list[int]:
    return [int(pydicom.dcmread(folder / n, stop_before_pixels=True).InstanceNumber) for n in names]


def test_tree_layout_names_from_the_data_in_instance_order(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    out = tmp_path / "out"
    report = export_items(db, items, out)
    assert report.names == [f"{JANE}/0001.dcm", f"{JANE}/0002.dcm"] + [f"{JOHN}/{n:04d}.dcm" for n in range(1, 5)]
    assert report.written == report.total == 6 and not report.problems
    assert _instance_numbers(out, report.names) == [1, 2, 1, 2, 3, 4]
    # copied files come from storage, linked ones from their paths, byte for byte
    sources = {f.sop_instance_uid: f.source for f in plan_export(db, items)}
    for name in report.names:
        uid = pydicom.dcmread(out / name, stop_before_pixels=True).SOPInstanceUID
        assert (out / name).read_bytes() == sources[uid].read_bytes()
    assert sorted(str(s.parent.parent.parent.name) for s in sources.values()).count("dicom") == 4  # John's copies
    assert report.summary().startswith(f"exported 6 files (0.1 MB) of 6 to {out} in ")


def test_flat_layout_and_equal_names_made_unique(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    # a second study of John with the same date and description: its folder gets _2
    write_series(tmp_path / "in3", SeriesSpec(patient_name="Doe^John", patient_id="P1", study_uid="1.2.3.4",
                                              series_uid="1.2.3.4.1", series_number=3, series_description="T1 axial",
                                              slices=1))
    import_paths(db, [tmp_path / "in3"], ImportMode.LINK)
    john = next(p["id"] for p in db.patients() if p["PatientName"] == "Doe^John")
    tree = export_items(db, [(Level.PATIENT, john)], tmp_path / "tree")
    assert sorted({n.rsplit("/", 1)[0] for n in tree.names}) == [
        "P1_Doe_John/20240115_Synthetic_study/3_T1_axial", "P1_Doe_John/20240115_Synthetic_study_2/3_T1_axial"]
    flat = export_items(db, items, tmp_path / "flat", ExportOptions(layout=Layout.FLAT))
    assert "P1_1_Axial_0001.dcm" in flat.names and "P1_3_T1_axial_0004.dcm" in flat.names
    assert "P1_3_T1_axial_2_0001.dcm" in flat.names  # the other series named "3 T1 axial" of P1
    assert all("/" not in n for n in flat.names) and len(set(flat.names)) == len(flat.names) == 7


def test_nothing_is_overwritten_unless_asked(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    out = tmp_path / "out"
    (out / JANE).mkdir(parents=True)
    mine = out / JANE / "0002.dcm"
    mine.write_bytes(b"the user's own file")
    with pytest.raises(ExportError, match=r"0002\.dcm already exist; nothing was exported .*--overwrite"):
        export_items(db, items, out)
    assert mine.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in out.rglob("*.dcm")) == ["0002.dcm"]  # nothing else written either
    report = export_items(db, items, out, ExportOptions(overwrite=True))
    assert report.written == 6 and pydicom.dcmread(mine).PatientName == "Doe^Jane"
    assert not list(out.rglob(".*.part"))


def test_a_missing_linked_file_is_a_report_row(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    gone = sorted((tmp_path / "in2" / "b").iterdir())[0]
    gone.unlink()
    report = export_items(db, items, tmp_path / "out")
    assert report.written == 5 and len(report.problems) == 1
    assert report.problems[0].path == str(gone) and "missing" in report.problems[0].reason
    assert "1 file could not be exported:" in report.summary()


def test_the_transform_hook_changes_or_leaves_out_each_data_set(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    seen: list[str] = []

    def transform(ds):
        seen.append(ds.SOPInstanceUID)
        if ds.PatientName == "Doe^Jane":
            return None
        ds.PatientName = "Anonymous"
        return ds

    report = export_items(db, items, tmp_path / "out", ExportOptions(transform=transform))
    assert len(seen) == 6 and report.written == 4 and report.left_out == 2
    assert "2 files left out by the transform" in report.summary()
    for name in report.names:
        ds = pydicom.dcmread(tmp_path / "out" / name)
        assert ds.PatientName == "Anonymous" and ds.pixel_array.shape == (64, 64)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_cancel_stops_before_the_next_file(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    cancel = threading.Event()
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 2:
            cancel.set()

    report = export_items(db, items, tmp_path / "out", progress=progress, cancel=cancel)
    assert calls == [(1, 6), (2, 6)] and report.written == 2 and report.cancelled and report.not_written == 4
    assert "cancelled: 4 files not exported" in report.summary()
    zipped = export_items(db, items, tmp_path / "z", ExportOptions(zip=True), cancel=cancel)
    assert zipped.cancelled and not (tmp_path / "z.zip").exists() and not list(tmp_path.glob(".dicomtui-export-*"))


def test_zip_holds_the_tree_and_is_not_overwritten(tmp_path: Path, db: DicomDatabase) -> None:
    items = _data(tmp_path, db)
    report = export_items(db, items, tmp_path / "export", ExportOptions(zip=True))
    assert report.destination == tmp_path / "export.zip" and report.zip
    with zipfile.ZipFile(tmp_path / "export.zip") as zf:
        assert sorted(zf.namelist()) == sorted(report.names)
        assert zf.read(f"{JANE}/0001.dcm") == (tmp_path / "in2" / "b" / "IM00001.dcm").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["db", "export.zip", "in", "in2"]  # no staging folder left
    with pytest.raises(ExportError, match="export.zip already exist"):
        export_items(db, items, tmp_path / "export.zip", ExportOptions(zip=True))


@pytest.mark.interop
def test_dicomdir_passes_dciodvfy_and_dcmdump_reads_it(tmp_path: Path, db: DicomDatabase) -> None:
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    dcmdump = require_program("dcmdump", "dcmtk")
    items = _data(tmp_path, db)
    out = tmp_path / "out"
    report = export_items(db, items, out, ExportOptions(dicomdir=True))
    assert report.dicomdir == out / "DICOMDIR" and report.written == 6
    assert all(len(part) <= 8 and part.isupper() | part.isalnum() for n in report.names for part in n.split("/"))
    checked = subprocess.run([dciodvfy, str(out / "DICOMDIR")], capture_output=True, text=True)
    lines = (checked.stdout + checked.stderr).splitlines()
    assert "BasicDirectory" in lines[0] and not [x for x in lines if x.startswith("Error")], lines
    dump = subprocess.run([dcmdump, str(out / "DICOMDIR")], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.count('"Directory Record" IMAGE') == 6 and dump.stdout.count('"Directory Record" STUDY') == 2
    # John and Jane share PatientID P1: a DICOMDIR has one patient record per PatientID, and the user is told
    assert dump.stdout.count('"Directory Record" PATIENT') == 1
    assert report.notes == ["the patients Doe^Jane and Doe^John share the PatientID 'P1': the DICOMDIR lists them as "
                            "one patient (PS3.3 F.5: a patient record is keyed by PatientID)"]
    for name in report.names:  # every record's file is there, and is the instance named
        assert pydicom.dcmread(out / name, stop_before_pixels=True).SOPInstanceUID
    with pytest.raises(ExportError, match="DICOMDIR and 1 other file already exist"):
        export_items(db, items, out, ExportOptions(dicomdir=True))
    (out / "DICOMDIR").unlink()  # the files of a file-set without its DICOMDIR are not overwritten either
    with pytest.raises(ExportError, match="PT000000 already exist"):
        export_items(db, items, out, ExportOptions(dicomdir=True))


def test_a_linked_file_without_the_part10_header_gets_one(tmp_path: Path, db: DicomDatabase) -> None:
    """A bare data set (no preamble, no file meta: what some old archives hold) is linked as it is; its export is
    a PS3.10 file, as a copy-import stores it: the header in front, the data set's bytes unchanged."""
    from pydicom.dataset import FileMetaDataset

    from dicomtui.core.synth import series_datasets

    ds = series_datasets(SeriesSpec(patient_id="BARE", slices=1, implicit=True))[0]
    ds.file_meta = FileMetaDataset()
    bare = tmp_path / "in" / "bare.dcm"
    bare.parent.mkdir()
    ds.save_as(bare, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    import_paths(db, [bare], ImportMode.LINK)
    report = export_items(db, [(Level.PATIENT, db.patients()[0]["id"])], tmp_path / "out")
    exported = (tmp_path / "out" / report.names[0]).read_bytes()
    assert exported[128:132] == b"DICM" and exported.endswith(bare.read_bytes())
    read = pydicom.dcmread(tmp_path / "out" / report.names[0])  # no force needed
    assert read.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID and read.PatientID == "BARE"


def test_a_full_disk_stops_the_export(tmp_path: Path, db: DicomDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the third file: the export stops there (every next file would fail alike), the partial file
    is removed, and the report says how many were not written."""
    import errno

    from dicomtui.core.export import folder

    items = _data(tmp_path, db)
    real, calls = os.sendfile, []

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(out_fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(folder.os, "sendfile", sendfile)
    report = export_items(db, items, tmp_path / "out")
    assert report.written == 2 and len(report.problems) == 1 and report.not_written == 3
    assert report.problems[0].reason == "No space left on device"
    assert report.notes == [f"{tmp_path / 'out'} is full: the export stopped, 3 files not written"]
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
