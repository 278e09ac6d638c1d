"""Files without PatientID: a generated ID keeps one patient's studies together (a real name and a birth date)
and never merges unrelated studies under a placeholder name ("Anonymized", "Last Name^First Name"…) or a name
without a birth date; the import's warning says which rule was used, and the IDs are the same at every import."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase, fill_patient_id
from dicomtui.core.database.records import PLACEHOLDER_NAMES, placeholder_key
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, uid, write_series


def _study(folder: Path, name: str, birth_date: str = "", source: str = "a") -> Path:
    """One single-slice study without PatientID, as another source (anonymiser, PACS) would write it."""
    write_series(folder, SeriesSpec(slices=1, rows=8, cols=8, patient_id="", patient_name=name,
                                    birth_date=birth_date, study_uid=uid("study", source, name),
                                    series_uid=uid("series", source, name), seed=ord(source[0])))
    return folder


def _patients(db: DicomDatabase) -> list[tuple[str, str]]:
    return sorted((p["PatientName"] or "", p["PatientID"]) for p in db.patients())


@pytest.mark.parametrize("name", ["Anonymized", "ANONYMIZED", "Anonymized12", "Last Name^First Name",
                                  "anonymous", "Anonymous^", "", "^", "  ^ ^"])
def test_placeholder_names_without_patient_id_stay_apart(tmp_path: Path, name: str) -> None:
    """Two studies from two sources, both named by a placeholder, neither with PatientID nor birth date."""
    _study(tmp_path / "in" / "a", name, source="a")
    _study(tmp_path / "in" / "b", name, source="b")
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
        assert report.patients_added == 2
        assert len({pid for _name, pid in _patients(db)}) == 2
    assert len(report.warnings) == 2
    for warning in report.warnings:
        assert warning.reason.startswith("no PatientID and ")
        assert warning.reason.endswith(" from the study")
        assert ("a placeholder name" in warning.reason) if name.strip(" ^") else ("no Patient's Name" in
                                                                                    warning.reason)


def test_the_warning_names_the_placeholder(tmp_path: Path) -> None:
    _study(tmp_path / "in", "Anonymized")
    with DicomDatabase.open(tmp_path / "db") as db:
        (warning,) = import_paths(db, [tmp_path / "in"]).warnings
        (patient,) = db.patients()
    assert warning.reason == (f"no PatientID and a placeholder name 'Anonymized': using generated "
                              f"{patient['PatientID']} from the study")


def test_a_real_name_without_birth_date_is_not_enough(tmp_path: Path) -> None:
    """"Smith" from two sources, no birth date: two people, as far as anyone can tell."""
    _study(tmp_path / "in" / "a", "Smith^John", source="a")
    _study(tmp_path / "in" / "b", "Smith^John", source="b")
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
        assert report.patients_added == 2
    assert all("no birth date for 'Smith^John'" in w.reason for w in report.warnings)


def test_a_real_name_with_a_birth_date_groups_that_patients_studies(tmp_path: Path) -> None:
    _study(tmp_path / "in" / "a", "Smith^John", "19610203", source="a")
    _study(tmp_path / "in" / "b", "Smith^John^^", "19610203", source="b")  # the same name, other padding
    _study(tmp_path / "in" / "c", "Smith^John", "19700101", source="c")  # another Smith
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"])
        assert report.studies_added == 3 and report.patients_added == 2
        assert sorted(p["num_studies"] for p in db.patients()) == [1, 2]
    assert all(w.reason.endswith(" from the name and birth date") for w in report.warnings)


def test_generated_ids_are_stable_across_imports(tmp_path: Path) -> None:
    """The same files give the same IDs in a new database (and the name + birth date rule is unchanged, so the
    IDs of databases made before this rule stay valid)."""
    _study(tmp_path / "in" / "a", "Anonymized", source="a")
    _study(tmp_path / "in" / "b", "Smith^John", "19610203", source="b")
    ids = []
    for db_name in ("db1", "db2"):
        with DicomDatabase.open(tmp_path / db_name) as db:
            import_paths(db, [tmp_path / "in"])
            again = import_paths(db, [tmp_path / "in"])
            assert again.patients_added == 0
            ids.append(_patients(db))
    assert ids[0] == ids[1]
    by_name_and_birth_date = "DICOMTUI-" + hashlib.sha1(b"Smith^John|19610203").hexdigest()[:12].upper()
    assert ("Smith^John", by_name_and_birth_date) in ids[0]


def test_fill_patient_id_keeps_an_existing_id() -> None:
    header = {"PatientID": "P1", "PatientName": "Anonymized"}
    assert fill_patient_id(header) == "" and header["PatientID"] == "P1" and "generated_id" not in header


def test_placeholder_list_is_small_and_case_insensitive() -> None:
    assert len(PLACEHOLDER_NAMES) <= 8
    assert placeholder_key("  LAST NAME ^ First Name ^^") == "last name^first name"
    assert placeholder_key("Anonymized42") == placeholder_key("anonymized 7") == "anonymized"
