"""The free-space floor on WADO-RS retrieve (issue 20), against Orthanc with its DICOMweb plugin started on
127.0.0.1 by the test: above the disk's free space nothing is asked; on a small tmpfs it stops part-way; the report
names the floor and what was kept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.web_stow import stow
from dicomtui.core.net.web_wado import web_retrieve
from dicomtui.core.synth import SeriesSpec, series_datasets
from tests.interop.test_dicomweb import orthanc_dicomweb, study_files, web_study  # noqa: F401 - fixture
from tests.test_robust_import import _mount_tmpfs

pytestmark = pytest.mark.interop
MiB = 1 << 20


def test_a_wado_retrieve_below_the_floor_writes_nothing(tmp_path: Path, web_study) -> None:  # noqa: F811
    node, rows = web_study
    study_uid = rows[0]["StudyInstanceUID"]
    with DicomDatabase.open(tmp_path / "db") as db:
        report = web_retrieve(db, node, [study_uid], min_free=1 << 62)
        assert report.completed == 0 and db.stats()["instances"] == 0
        assert report.errors == [
            f"WADO-RS stopped below the free-space floor: {report.errors[0].split(': ', 1)[1].split(' MiB')[0]} MiB "
            f"free in {tmp_path / 'db'}, below the floor of {(1 << 62) / MiB:,.0f} MiB (min_free_bytes in [local] of "
            f"nodes.toml); nothing was retrieved; make room and retrieve again to fetch the rest"]
        assert not [p for p in (tmp_path / "db" / "dicom").rglob("*") if p.is_file()]
        again = web_retrieve(db, node, [study_uid], min_free=MiB)  # with room: all of it
        assert (again.completed, again.errors) == (6, [])


def test_a_wado_retrieve_stops_before_an_instance_would_go_under_the_floor(tmp_path: Path) -> None:
    """30 instances of 256² (128 KiB) STOWed to Orthanc, retrieved into a database on an 8 MiB tmpfs with a floor
    about 2 MiB under its free space: the retrieve stops part-way (each part reckoned as large as the one before),
    what arrived is indexed, the report names the floor and the count kept; the disk stays above the floor."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "8m")
    try:
        rows = []
        for i, ds in enumerate(series_datasets(SeriesSpec(patient_id="FLOOR", slices=30, rows=256, cols=256))):
            path = tmp_path / "src" / f"{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            rows.append({"path": str(path), "SOPInstanceUID": ds.SOPInstanceUID,
                         "StudyInstanceUID": ds.StudyInstanceUID, "SeriesInstanceUID": ds.SeriesInstanceUID})
        with orthanc_dicomweb(tmp_path / "orthanc") as node:
            assert stow(node, rows).counts["success"] == 30
            with DicomDatabase.open(disk / "db") as db:
                floor = shutil.disk_usage(disk).free - 2 * MiB
                report = web_retrieve(db, node, [rows[0]["StudyInstanceUID"]], min_free=floor, sync="none")
                indexed = db.stats()["instances"]
            free = shutil.disk_usage(disk).free
        assert 5 < report.completed < 30 and indexed == report.completed, report.summary()
        assert len(report.errors) == 1 and report.errors[0].startswith(
            "WADO-RS stopped below the free-space floor: "), report.errors
        assert (f"to write would go below the floor of {floor / MiB:,.0f} MiB" in report.errors[0]
                and f"the {indexed} instances retrieved before are kept and indexed" in report.errors[0])
        assert free >= floor - 256 * 1024, (free, floor)  # the index's growth at most
    finally:
        subprocess.run(["umount", str(disk)], check=False)
