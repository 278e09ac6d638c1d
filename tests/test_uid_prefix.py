"""UIDs usable by hand (issue 14 item 17): a unique UID prefix, a ``LEVEL:`` qualifier or the row id that ``--json``
prints is accepted everywhere a UID is; an ambiguous one is exit 2 with the matches listed; ``ls --uids``; a UID is
never wrapped in a table. Item 18: search-box wildcards are substring patterns, ``=value`` is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomtui.cli import main, output
from dicomtui.core import selection
from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import SelectionError
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Level
from dicomtui.core.synth import SeriesSpec, write_series

STUDY = "1.2.826.0.1.3680043.8.498.7001"
SERIES_A = STUDY + ".1.11"
SERIES_B = STUDY + ".2.22"


@pytest.fixture
def two_series(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    for n, uid in enumerate((SERIES_A, SERIES_B), 1):
        write_series(tmp_path / "in" / str(n), SeriesSpec(
            study_uid=STUDY, series_uid=uid, series_number=n, slices=2, seed=n,
            patient_name="Patient01^A", patient_id="patient01"))
    with DicomDatabase.open(folder) as db:
        import_paths(db, [tmp_path / "in"])
    return folder


def _ids(folder: Path, text: str, levels=None) -> list[tuple[str, int]]:
    with DicomDatabase.open(folder, read_only=True) as db:
        return [(str(i.level), i.id) for i in selection.resolve(db, [text], levels=levels).items]


def _row_id(folder: Path, level: Level, uid: str) -> int:
    with DicomDatabase.open(folder, read_only=True) as db:
        return db.find(level, uid)["id"]


def test_a_unique_prefix_names_its_row_and_a_whole_uid_wins(two_series: Path) -> None:
    series_a = _row_id(two_series, Level.SERIES, SERIES_A)
    assert _ids(two_series, STUDY + ".1") == [("series", series_a)]
    assert _ids(two_series, SERIES_A) == [("series", series_a)]
    # the study's whole UID is also the beginning of both series' UIDs: the whole UID names the study
    assert _ids(two_series, STUDY) == [("study", _row_id(two_series, Level.STUDY, STUDY))]
    assert _ids(two_series, STUDY + ".9") == []


def test_an_ambiguous_prefix_lists_the_matches(two_series: Path) -> None:
    with pytest.raises(SelectionError) as caught:
        _ids(two_series, STUDY + ".")
    text = str(caught.value)
    assert "ambiguous" in text and f"series {SERIES_A}" in text and f"series {SERIES_B}" in text


def test_a_level_qualifier_narrows_a_prefix(two_series: Path) -> None:
    study = _row_id(two_series, Level.STUDY, STUDY)
    with pytest.raises(SelectionError):  # the study and both series begin so
        _ids(two_series, STUDY[:-1])
    assert _ids(two_series, "study:" + STUDY[:-1]) == [("study", study)]
    assert _ids(two_series, STUDY[:-1], levels=[Level.STUDY]) == [("study", study)]


def test_the_row_id_from_json_names_its_row(two_series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(two_series), "ls", "series", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["SeriesInstanceUID"] == SERIES_B)
    assert _ids(two_series, f"series:{row['id']}") == [("series", row["id"])]
    assert _ids(two_series, str(row["id"]), levels=[Level.SERIES]) == [("series", row["id"])]
    with pytest.raises(SelectionError) as caught:  # a bare number is a row of every level: say which to take
        _ids(two_series, str(row["id"]))
    assert f"series:{row['id']}" in str(caught.value)


def test_every_command_taking_a_uid_takes_a_prefix(two_series: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = str(two_series)
    prefix_b = STUDY + ".2"
    assert main(["--db", db, "examine", prefix_b, "--json"]) == 0
    examined = capsys.readouterr().out
    assert json.loads(examined)[0]["series_uid"] == SERIES_B
    assert main(["--db", db, "ls", "instances", "--series", prefix_b, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["--db", db, "ls", "series", "--study", "study:" + STUDY[:12], "--uids"]) == 0
    assert capsys.readouterr().out.split() == [SERIES_A, SERIES_B]
    assert main(["--db", db, "show", prefix_b, "--json"]) == 0
    assert main(["--db", db, "load", prefix_b, "-o", str(tmp_path / "b.nrrd")]) == 0
    capsys.readouterr()
    assert main(["--db", db, "rm", "--yes", prefix_b]) == 0
    capsys.readouterr()
    assert main(["--db", db, "ls", "series", "--uids"]) == 0
    assert capsys.readouterr().out.split() == [SERIES_A]


@pytest.mark.parametrize("argv", [["examine", STUDY + "."], ["load", STUDY + ".", "-o", "x.nrrd"],
                                  ["show", STUDY[:-1]], ["rm", "--yes", STUDY[:-1]],
                                  ["ls", "instances", "--series", STUDY + "."]])
def test_an_ambiguous_prefix_is_exit_2_with_the_matches(two_series: Path, argv: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(two_series), *argv]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and SERIES_A in err and SERIES_B in err
    with DicomDatabase.open(two_series, read_only=True) as db:
        assert db.totals()["series"] == 2  # rm deleted nothing


def test_ls_uids_and_a_table_never_wraps_a_uid(two_series: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(two_series), "ls", "studies", "--uids"]) == 0
    assert capsys.readouterr().out == STUDY + "\n"
    assert main(["--db", str(two_series), "ls", "patients", "--uids"]) == 0
    assert capsys.readouterr().out == "patient01\n"
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    for width in ("40", "80", "200"):
        monkeypatch.setenv("COLUMNS", width)
        assert main(["--db", str(two_series), "ls", "series"]) == 0
        out = capsys.readouterr().out
        assert SERIES_A in out and SERIES_B in out, width  # each UID whole, on one line
        assert "Axial" in out or "Axia" in out


def test_wildcards_are_substring_patterns_and_equals_is_exact(two_series: Path) -> None:
    with DicomDatabase.open(two_series, read_only=True) as db:
        names = lambda f: [p["PatientID"] for p in db.patients(f)]  # noqa: E731
        assert names("patient01") == names("patient01*") == names("atient0?") == ["patient01"]
        assert names("=patient01") == ["patient01"] and names("=patient0") == [] and names("=patient0*") == [
            "patient01"]
        series = lambda f: [s["SeriesInstanceUID"] for s in db.series(None, f)]  # noqa: E731
        assert series("=CT") == [SERIES_A, SERIES_B] and series("=C") == [] and series("C*") == [SERIES_A, SERIES_B]
