"""A patient's identity (PatientID, PatientName) changed on part of a study (issue 16, patient merge/split): the
index keeps a study under one patient, so such an edit would carry the whole study row to the other patient
while the files left out still name the old one. The plan refuses it in a sentence (nothing written); the whole
study moves as before, and other patient or study attributes on part of a study stay a warning."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.edit import EditError, apply_edit, plan_edit
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series


def _db(tmp_path: Path) -> DicomDatabase:
    """One patient J1, one study of two series (3 instances each)."""
    for number in (1, 2):
        write_series(tmp_path / "in" / str(number), SeriesSpec(patient_id="J1", series_number=number, slices=3))
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"], "copy", workers=0)
    return db


def _series(db: DicomDatabase, number: int) -> Item:
    return Item(Level.SERIES, next(s["id"] for s in db.series() if s["SeriesNumber"] == number))


@pytest.mark.parametrize("settings", [{"PatientID": "K2"}, {"PatientName": "Roe^Rick"}])
def test_a_patient_change_on_part_of_a_study_is_refused(tmp_path: Path, settings: dict[str, str]) -> None:
    with _db(tmp_path) as db:
        before = {f["path"]: pydicom.dcmread(f["path"]) for f in db.instance_files([_series(db, 1)])}
        plan = plan_edit(db, [_series(db, 1)], settings)
        (problem,) = plan.problems
        keyword = next(iter(settings))
        assert problem.startswith(f"{keyword} would move study ") and "only 3 of its 6 instances" in problem
        assert "a study belongs to one patient (select the whole study" in problem
        with pytest.raises(EditError, match="a study belongs to one patient"):
            apply_edit(db, plan)
        assert [p["PatientID"] for p in db.patients()] == ["J1"]
        for path, ds in before.items():  # nothing written
            assert pydicom.dcmread(path) == ds
        plan = plan_edit(db, [_series(db, 1)], settings, as_new_series=True)  # a new series joins the same study
        assert any("a new series of it" in p for p in plan.problems)


def test_the_whole_study_moves_and_other_attributes_stay_a_warning(tmp_path: Path) -> None:
    with _db(tmp_path) as db:
        plan = plan_edit(db, [_series(db, 1)], {"PatientBirthDate": "19700101"})
        assert not plan.problems and any("3 of 6 instances edited" in w for w in plan.warnings)
        plan = plan_edit(db, [_series(db, 1)], {"PatientID": "J1"})  # unchanged: nothing moves, nothing refused
        assert not plan.problems
        plan = plan_edit(db, [Item(Level.STUDY, db.studies()[0]["id"])], {"PatientID": "K2"})
        assert not plan.problems
        assert apply_edit(db, plan).written == 6
        assert [p["PatientID"] for p in db.patients()] == ["K2"]
