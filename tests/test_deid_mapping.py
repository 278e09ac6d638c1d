"""The de-identification mapping in SQLite (``deidentification-map.sqlite`` in the database folder): entries made
on first use and appended by each job, the same answers in the next job, reverse lookups for re-identification,
a preview that adds nothing, the first version's JSON file migrated once, errors in words."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dicomtui.core.export.deid_mapping import (
    JSON_MAPPING_NAME,
    MAPPING_NAME,
    DeidMapping,
    MappingError,
    database_mapping,
)


def test_a_job_appends_and_the_next_job_gets_the_same_answers(tmp_path: Path) -> None:
    first = database_mapping(tmp_path)
    patient = first.patient("PID1", "Doe^Jane")
    uids = {f"1.2.3.{n}": first.uid(f"1.2.3.{n}") for n in range(50)}
    with sqlite3.connect(tmp_path / MAPPING_NAME) as conn:  # committed as made: another job sees them at once
        assert conn.execute("SELECT count(*) FROM uids").fetchone() == (50,)
    first.save()
    assert (tmp_path / MAPPING_NAME).stat().st_mode & 0o777 == 0o600

    second = database_mapping(tmp_path)
    assert second.patient("PID1") == patient and patient.name == "Doe^Jane"
    assert {k: second.uid(k) for k in uids} == uids
    assert second.uid("1.2.3.999") not in uids.values()
    second.save()
    with sqlite3.connect(tmp_path / MAPPING_NAME) as conn:
        assert conn.execute("SELECT count(*) FROM uids").fetchone() == (51,)
        assert conn.execute("SELECT count(*) FROM patients").fetchone() == (1,)

    third = database_mapping(tmp_path)  # re-identification's lookups
    assert third.original_patient(patient.pseudonym) == ("PID1", patient)
    assert third.original_uid(uids["1.2.3.7"]) == "1.2.3.7"
    assert third.original_patient("DEID-NOPE") is None and third.original_uid("2.25.1") is None


def test_a_scratch_mapping_sees_the_entries_and_saves_nothing(tmp_path: Path) -> None:
    mapping = database_mapping(tmp_path)
    known = mapping.uid("1.2.3")
    mapping.save()
    scratch = database_mapping(tmp_path).scratch()
    assert scratch.uid("1.2.3") == known
    scratch.uid("1.2.4")
    scratch.save()
    assert database_mapping(tmp_path).known_uid("1.2.4") is None


def test_the_json_mapping_of_the_first_version_is_migrated_once(tmp_path: Path) -> None:
    old = {"version": 1, "patients": {"PID9": {"pseudonym": "DEID-00C0FFEE", "offset_days": -400}},
           "uids": {"1.2.3.4": "2.25.42"}}
    (tmp_path / JSON_MAPPING_NAME).write_text(json.dumps(old))
    mapping = database_mapping(tmp_path)
    assert mapping.patient("PID9").pseudonym == "DEID-00C0FFEE" and mapping.patient("PID9").offset_days == -400
    assert mapping.uid("1.2.3.4") == "2.25.42"
    assert not (tmp_path / JSON_MAPPING_NAME).exists() and (tmp_path / (JSON_MAPPING_NAME + ".migrated")).exists()
    assert database_mapping(tmp_path).original_uid("2.25.42") == "1.2.3.4"  # kept, without the JSON file


def test_a_file_that_is_not_a_mapping_is_said_in_words(tmp_path: Path) -> None:
    (tmp_path / MAPPING_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(MappingError, match="cannot open the de-identification mapping .*deidentification-map"):
        database_mapping(tmp_path)


def test_without_a_path_the_mapping_stays_in_memory(tmp_path: Path) -> None:
    mapping = DeidMapping()
    new = mapping.uid("1.2.3")
    mapping.save()
    assert mapping.uid("1.2.3") == new and mapping.original_uid(new) == "1.2.3"
    assert list(tmp_path.iterdir()) == []


def test_two_jobs_at_once_get_the_same_values(tmp_path: Path) -> None:
    """Two jobs on one database at once both need the same originals: the first to ask makes the entry, the other
    gets it (it was committed before it was used), and neither save complains. (The first SQLite version
    appended at save and told the second job to run again.)"""
    first, second = database_mapping(tmp_path), database_mapping(tmp_path)
    mine = first.uid("1.2.3")
    patient = first.patient("PID1")
    assert second.uid("1.2.3") == mine and second.patient("PID1") == patient
    only_second = second.uid("1.2.4")
    assert first.uid("1.2.4") == only_second
    second.save()
    first.save()
    again = database_mapping(tmp_path)
    assert again.uid("1.2.3") == mine and again.known_uid("1.2.4") == only_second


def test_a_pseudonym_another_patient_holds_is_drawn_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``INSERT OR IGNORE`` also ignores a row whose pseudonym is taken (UNIQUE): the read-back finds nothing for
    this patient, and a new pseudonym is drawn."""
    mapping = database_mapping(tmp_path)
    taken = mapping.patient("PID1").pseudonym
    draws = iter([taken[5:].lower(), "0badf00d"])
    monkeypatch.setattr("dicomtui.core.export.deid_mapping.secrets.token_hex", lambda n: next(draws))
    assert database_mapping(tmp_path).patient("PID2").pseudonym == "DEID-0BADF00D"
