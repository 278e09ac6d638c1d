"""The free-space floor on WADO-RS retrieve (issue 20), against Orthanc with its DICOMweb plugin started on
127.0.0.1 by the test: above the disk's free space nothing is asked, and the report names the floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.web_wado import web_retrieve
from tests.interop.test_dicomweb import orthanc_dicomweb, study_files, web_study  # noqa: F401 - fixture

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
