"""The free-space floor on the other way instances reach storage: a C-GET from Orthanc (its C-STOREs on our
association) below the floor is refused with 0xA700 and nothing is written (issue 20, item 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.query import QueryFilters, query
from dicomtui.core.net.retrieve import retrieve
from tests.interop.test_orthanc import orthanc  # noqa: F401 - the fixture

pytestmark = pytest.mark.interop


def test_a_get_below_the_free_space_floor_stores_nothing(tmp_path: Path, orthanc) -> None:  # noqa: F811
    node, local = orthanc
    study_uid = query(node, "study", QueryFilters(patient_id="INT1"), local)[0]["StudyInstanceUID"]
    starved = dataclasses.replace(local, min_free_bytes=1 << 62)
    with DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [study_uid], "get", starved)
        assert report.completed == 0 and report.errors, report
        assert db.stats()["instances"] == 0
    assert not [p for p in (tmp_path / "db" / "dicom").rglob("*") if p.is_file()]
    assert not list((tmp_path / "db" / "incoming").glob("*"))
    with DicomDatabase.open(tmp_path / "db") as db:  # with room, the same retrieve fetches all
        assert retrieve(db, node, [study_uid], "get", local).completed == 6
