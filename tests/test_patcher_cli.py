"""``dicomtui patch SRC -o DST``: the report on stdout (text and --json), --rule, --dry-run, --import, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomtui.cli import main, patch_cmds
from dicomtui.core.database import DicomDatabase
from dicomtui.core.patcher import RULES

from . import patcher_fixtures as fx

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the fixtures write invalid values on purpose


def test_the_cli_knows_the_rules_of_the_core_in_their_order() -> None:
    assert list(patch_cmds.RULE_NAMES) == list(RULES)


def test_patch_prints_each_change_and_the_skipped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx.bad_uids_and_dates(tmp_path / "src")
    (tmp_path / "src" / "readme.txt").write_text("not DICOM\n" * 10)
    code = main(["--db", str(tmp_path / "db"), "patch", str(tmp_path / "src"), "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1  # a file was skipped
    assert out.startswith("Wrote 2 files into")
    assert "  dates: StudyDate '2020.01.02' → 20200102\n" in out
    assert "Skipped (1):\n  readme.txt\tnot a DICOM file" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.dcm", "two.dcm"]


def test_patch_json_with_chosen_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx.bad_uids_and_dates(tmp_path / "src")
    code = main(["--db", str(tmp_path / "db"), "patch", str(tmp_path / "src"), "-o", str(tmp_path / "out"),
                 "--rule", "dates", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["rules"] == ["dates"] and report["rule_counts"] == {"dates": 2}
    assert {c["rule"] for f in report["files"] for c in f["changes"]} == {"dates"}


def test_patch_then_import_in_copy_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx.missing_ids(tmp_path / "src")
    code = main(["--db", str(tmp_path / "db"), "patch", str(tmp_path / "src"), "-o", str(tmp_path / "out"),
                 "--import"])
    out = capsys.readouterr().out
    assert code == 0 and "Import finished (copy" in out
    with DicomDatabase.open(tmp_path / "db") as db:
        assert len(db.instances()) == 5 and len(db.series()) == 2


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx.missing_ids(tmp_path / "src")
    code = main(["--db", str(tmp_path / "db"), "patch", str(tmp_path / "src"), "-o", str(tmp_path / "out"),
                 "--dry-run"])
    assert code == 0 and capsys.readouterr().out.startswith("Would write 5 files")
    assert not (tmp_path / "out").exists()


def test_a_destination_inside_the_source_is_a_sentence_and_exit_2(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fx.missing_ids(tmp_path / "src")
    code = main(["--db", str(tmp_path / "db"), "patch", str(tmp_path / "src"), "-o", str(tmp_path / "src" / "x")])
    assert code == 2 and "never in place" in capsys.readouterr().err
