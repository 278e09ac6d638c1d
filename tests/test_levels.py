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
    browser_columns,
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


# What the faces showed before the model (copied from cli.LS_COLUMNS/_heading and the browser's COLUMNS).
_LS_BEFORE = {
    "patients": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"],
    "studies": ["PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
                "modalities", "num_series", "num_instances", "StudyInstanceUID"],
    "series": ["SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances", "image_size",
               "SeriesDate", "SeriesInstanceUID"],
    "instances": ["InstanceNumber", "SOPInstanceUID", "SOPClassUID", "stored", "file_size", "TransferSyntaxUID",
                  "path"],
}
_LS_HEADINGS = {"num_studies": "studies", "num_series": "series", "num_instances": "instances",
                "last_study_date": "last study", "image_size": "size", "stored": "copied"}
_BROWSER_BEFORE = {
    "patient": [("Patient name", "PatientName"), ("Patient ID", "PatientID"), ("Birth date", "PatientBirthDate"),
                ("Sex", "PatientSex"), ("Studies", "num_studies"), ("Last study", "last_study_date")],
    "study": [("Date", "StudyDate"), ("Description", "StudyDescription"), ("Modalities", "modalities"),
              ("Accession", "AccessionNumber"), ("Patient", "PatientName"), ("Series", "num_series"),
              ("Images", "num_instances")],
    "series": [("#", "SeriesNumber"), ("Modality", "Modality"), ("Description", "SeriesDescription"),
               ("Body part", "BodyPartExamined"), ("Images", "num_instances"), ("Size", "image_size"),
               ("Date", "SeriesDate")],
}
_BROWSER_DATES = {"PatientBirthDate", "last_study_date", "StudyDate", "SeriesDate"}


@pytest.mark.parametrize("plural", list(_LS_BEFORE))
def test_ls_columns_and_headings_are_unchanged(plural: str) -> None:
    level = Level.parse(plural)
    assert list(LS_COLUMNS[level]) == _LS_BEFORE[plural]
    assert [column(level, k).label for k in LS_COLUMNS[level]] == [_LS_HEADINGS.get(k, k) for k in _LS_BEFORE[plural]]


@pytest.mark.parametrize("level", list(_BROWSER_BEFORE))
def test_browser_columns_and_date_cells_are_unchanged(level: str) -> None:
    assert browser_columns(level) == _BROWSER_BEFORE[level]
    for _heading, key in _BROWSER_BEFORE[level]:
        expected = "2024-01-02" if key in _BROWSER_DATES else "20240102"
        assert format_value(column(level, key), "20240102") == expected


def test_level_spellings() -> None:
    assert Level.parse("studies") is Level.STUDY and Level.parse("study") is Level.STUDY
    assert Level.STUDY == "study" and Level.STUDY.plural == "studies"
    assert Level.SERIES.plural == "series" and Level.PATIENT.table == "patients"
    assert Level.PATIENT.uid_column == "PatientID" and Level.INSTANCE.uid_column == "SOPInstanceUID"
    assert Level.parse("image") is Level.INSTANCE and Level.INSTANCE.qr_level == "IMAGE"
    assert Level.STUDY.qr_level == "STUDY"
    assert ImportMode("copy") is ImportMode.COPY and ImportMode.LINK == "link"
    with pytest.raises(ValueError):
        Level.parse("frames")


def test_series_label() -> None:
    assert series_label({"SeriesNumber": 3, "SeriesDescription": "T1 axial"}) == "3 T1 axial"
    assert series_label({"SeriesNumber": None, "SeriesDescription": "T1"}) == "T1"
    assert series_label({"SeriesNumber": 0, "SeriesDescription": None}) == "0"
    assert series_label({}) == ""
