"""Levels and their columns: one model read by the search box, `ls` and the browser; what is shown is searchable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import (
    BROWSER_COLUMNS,
    COLUMNS,
    LS_COLUMNS,
    ImportMode,
    Level,
    column,
    format_value,
    series_label,
)
from dicomtui.core.synth import SeriesSpec, write_series


def _two_patients(tmp_path: Path, db: DicomDatabase) -> None:
    write_series(tmp_path / "in" / "a", SeriesSpec(patient_name="Doe^John", patient_id="A1", seed=1))
    write_series(tmp_path / "in" / "b", SeriesSpec(patient_name="Smith^Anna", patient_id="B2", seed=2))
    import_paths(db, [tmp_path / "in"])


def test_a_patients_name_in_the_studies_box_finds_their_studies(tmp_path: Path, db: DicomDatabase) -> None:
    _two_patients(tmp_path, db)
    assert [s["PatientName"] for s in db.studies(filter="smith")] == ["Smith^Anna"]
    assert [s["PatientID"] for s in db.studies(filter="a1")] == ["A1"]
    assert [s["PatientName"] for s in db.studies(filter="doe^j*")] == ["Doe^John"]


def test_ls_studies_filter_searches_the_patient_columns_it_shows(tmp_path: Path) -> None:
    from dicomtui.cli import main

    folder = tmp_path / "db"
    with DicomDatabase.open(folder) as db:
        _two_patients(tmp_path, db)
    out = tmp_path / "out.json"
    import contextlib

    with out.open("w") as f, contextlib.redirect_stdout(f):
        code = main(["--db", str(folder), "ls", "studies", "--filter", "Smith", "--json"])
    assert code == 0
    assert [s["PatientName"] for s in json.loads(out.read_text())] == ["Smith^Anna"]


@pytest.mark.parametrize("level", [Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE])
def test_every_shown_column_is_searchable(level: Level) -> None:
    for face in (BROWSER_COLUMNS, LS_COLUMNS):
        for keyword in face.get(level, ()):
            assert column(level, keyword).searchable, (level, keyword)
    assert all(c.searchable for c in COLUMNS[level])


def test_the_faces_show_what_they_showed_before() -> None:
    """The column lists, headings and cell texts of `ls` and the browser, as they were before the model."""
    assert LS_COLUMNS[Level.STUDY] == ("PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription",
                                       "AccessionNumber", "modalities", "num_series", "num_instances",
                                       "StudyInstanceUID")
    assert [column(Level.STUDY, k).heading for k in BROWSER_COLUMNS[Level.STUDY]] == [
        "Date", "Description", "Modalities", "Accession", "Patient", "Series", "Images"]
    assert [column(Level.PATIENT, k).label for k in LS_COLUMNS[Level.PATIENT]] == [
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "studies", "last study"]
    assert column(Level.INSTANCE, "stored").label == "copied"
    assert format_value(column(Level.INSTANCE, "stored"), 1) == "copy"
    assert format_value(column(Level.INSTANCE, "stored"), 0) == "link"
    assert format_value(column(Level.STUDY, "StudyDate"), "20240102") == "2024-01-02"
    assert format_value(column(Level.STUDY, "StudyDate"), "20240102", iso_dates=False) == "20240102"
    assert format_value(column(Level.STUDY, "StudyDate"), None) == ""
    assert format_value(column(Level.SERIES, "SeriesNumber"), 3) == "3"


def test_level_spellings() -> None:
    assert Level.parse("studies") is Level.STUDY and Level.parse("study") is Level.STUDY
    assert Level.STUDY == "study" and Level.STUDY.plural == "studies"
    assert Level.SERIES.plural == "series" and Level.PATIENT.table == "patients"
    assert Level.PATIENT.uid_column == "PatientID" and Level.INSTANCE.uid_column == "SOPInstanceUID"
    assert ImportMode("copy") is ImportMode.COPY and ImportMode.LINK == "link"
    with pytest.raises(ValueError):
        Level.parse("frames")


def test_series_label() -> None:
    assert series_label({"SeriesNumber": 3, "SeriesDescription": "T1 axial"}) == "3 T1 axial"
    assert series_label({"SeriesNumber": None, "SeriesDescription": "T1"}) == "T1"
    assert series_label({"SeriesNumber": 0, "SeriesDescription": None}) == "0"
    assert series_label({}) == ""
