"""CLI habits (issue 14 items 16 and 19): the shared options after the command too, ``--version``, ``-v`` and
``--log-level``, library warnings as our own lines (never a library path on stderr), ``db check`` ends with counts,
and ``make run`` says it is installing before pip runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.cli import build_parser, main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    write_series(tmp_path / "in", SeriesSpec(slices=2))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    return tmp_path / "db"


@pytest.mark.parametrize("argv", [["--db", "{db}", "ls", "patients"], ["ls", "patients", "--db", "{db}"],
                                  ["ls", "--db", "{db}", "patients"], ["db", "info", "--db", "{db}"],
                                  ["db", "check", "--db", "{db}"],
                                  ["--db", "/nowhere", "ls", "patients", "--db", "{db}"]])
def test_db_is_taken_before_and_after_the_command(small_db: Path, argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main([a.format(db=small_db) for a in argv]) == 0
    assert "Synthetic^Patient" in capsys.readouterr().out or argv[0] == "db" or argv[1] == "db"


def test_shared_options_parse_after_the_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["--renderer", "sixel", "ls", "series", "--renderer", "halfblock", "-vv"])
    assert args.renderer == "halfblock" and args.verbosity == 2 and args.log_level is None
    args = parser.parse_args(["-v", "db", "check", "--log-level", "debug"])
    assert args.verbosity == 1 and args.log_level == "DEBUG"
    args = parser.parse_args(["--db", "x", "examine", "1.2"])  # before the command: not overwritten by the copy
    assert args.db == "x" and args.verbosity == 0
    assert parser.parse_args(["listen", "-v"]).verbose is True  # listen's own -v (pynetdicom's log) stays


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("dicomtui ") and "pydicom 3." in out and "Python 3." in out


# A real pydicom warning raised where no file context captures it (as a library deep in a command may): the
# default hook prints ".../site-packages/pydicom/valuerep.py:440: UserWarning: ..." and the source line.
_WARNING_COMMAND = """
import sys
from dicomtui.cli import database_cmds, main
from pydicom.dataset import Dataset

def warn_then_list(args, db_path):
    Dataset().PatientAge = "45 years"
    return 0

database_cmds.cmd_ls = warn_then_list
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("extra, shown", [([], True), (["--log-level", "error"], False), (["-v"], True)])
def test_library_warnings_are_our_lines_without_paths(tmp_path: Path, extra: list[str], shown: bool) -> None:
    done = subprocess.run([sys.executable, "-c", _WARNING_COMMAND, "ls", "patients", "--db", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "site-packages" not in done.stderr and ".py:" not in done.stderr and "warn_and_log" not in done.stderr
    line = "dicomtui: warning: Invalid value for VR AS: '45 years'."
    assert (line in done.stderr) is shown, done.stderr


def test_db_check_ends_with_counts_and_its_exit_code(small_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(small_db), "db", "check"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("checked 2 instances") and "0 missing" in last and "exit 0" in last
    next(small_db.parent.joinpath("in").iterdir()).unlink()
    assert main(["--db", str(small_db), "db", "check"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("checked 2 instances") and "1 missing" in last and "exit 1" in last


def test_make_run_says_it_installs_before_pip_runs(tmp_path: Path) -> None:
    done = subprocess.run(["make", "-n", "-C", str(REPO), "run", f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    say = next(i for i, line in enumerate(lines) if "installing into" in line and "(first run" in line)
    pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert say < pip
