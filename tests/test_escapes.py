"""Terminal escape injection (issue 13, item 16): values from files never reach a terminal as control characters.

Given a file whose StudyDescription is ``"\\x1b[31mred"`` and whose PatientName sets the terminal's title, when
``ls``, ``show``, an error message or the TUI shows them, then they read ``\\x1b[31mred`` and nothing turns red.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series

from .test_cli_main import _on_a_terminal

RED = "\x1b[31mred"
TITLE = "\x1b]0;pwned\x07Evil^Eve"  # OSC 0: sets the terminal window's title
ESC = "\x1b"


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    write_series(tmp_path / "in", SeriesSpec(patient_name=TITLE, patient_id="EVIL1", study_description=RED,
                                             series_description="T1\x9b2J", slices=2))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        assert [s["StudyDescription"] for s in db.studies()] == [RED]  # stored as read: escaping is for output
    return tmp_path / "db"


def test_printable_shows_control_characters_and_keeps_text() -> None:
    from dicomtui.core.text import has_control, printable

    assert printable(RED) == "\\x1b[31mred"
    assert printable(TITLE) == "\\x1b]0;pwned\\x07Evil^Eve"
    assert printable("a\x9b2J\x7f\x00") == "a\\x9b2J\\x7f\\x00"  # C1 CSI, DEL, NUL
    assert printable("line one\r\nline\ttwo\x0c") == "line one␍␊line␉two␌"  # PS3.5 6.1.3 format effectors
    assert printable("one\ntwo\x1b", multiline=True) == "one\ntwo\\x1b"
    text = "Müller^Jürgen 山田 ﾔﾏﾀﾞ \\ backslash"
    assert printable(text) is text and not has_control(text)
    assert has_control(RED)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomtui", *args], capture_output=True, text=True, timeout=120)


def test_ls_in_a_pipe_shows_escapes(hostile_db: Path) -> None:
    result = _run("--db", str(hostile_db), "ls", "studies")
    assert result.returncode == 0
    assert ESC not in result.stdout and "\x9b" not in result.stdout
    assert "\\x1b]0;pwned\\x07Evil^Eve\tEVIL1" in result.stdout
    assert "\\x1b[31mred" in result.stdout
    series = _run("--db", str(hostile_db), "ls", "series")
    assert "T1\\x9b2J" in series.stdout and "\x9b" not in series.stdout


def test_ls_json_escapes_every_control_character(hostile_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(hostile_db), "ls", "series", "--json"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\x9b" not in out
    assert '"SeriesDescription": "T1\\u009b2J"' in out
    assert main(["--db", str(hostile_db), "ls", "studies", "--json"]) == 0
    assert '"StudyDescription": "\\u001b[31mred"' in capsys.readouterr().out


def test_ls_on_a_terminal_shows_escapes(hostile_db: Path) -> None:
    out = _on_a_terminal("--db", str(hostile_db), "ls", "studies", columns=400)  # colours stripped: rich's own
    assert ESC not in out and "\x07" not in out  # the file's OSC title sequence is not a colour: not stripped
    assert "\\x1b[31mred" in out and "\\x1b]0;pwned\\x07Evil^Eve" in out


def test_show_and_error_messages_show_escapes(hostile_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(hostile_db), "show", "EVIL1"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\x07" not in out
    assert "\\x1b[31mred" in out
    assert main(["--db", str(hostile_db), "show", "EVIL1", "--json"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\x9b" not in out
    assert '"keyword": "StudyDescription",\n    "vr": "LO",\n    "value": "\\\\x1b[31mred"' in out  # the shown text
    assert main(["--db", str(hostile_db), "ls", "series", "--study", "1.2\x1b[31m"]) == 2
    assert capsys.readouterr().err == "dicomtui: no study 1.2\\x1b[31m in the database\n"


async def test_a_tui_table_cell_shows_escapes(hostile_db: Path, tmp_path: Path) -> None:
    from dicomtui.tui.app import DicomTuiApp
    from dicomtui.tui.widgets.tables import MarkTable

    app = DicomTuiApp(hostile_db, renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(160, 34)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        patients = app.screen.query_one("#patient-table", MarkTable)
        assert patients.get_row_at(0)[1] == "\\x1b]0;pwned\\x07Evil^Eve"
        studies = app.screen.query_one("#study-table", MarkTable)
        assert "\\x1b[31mred" in studies.get_row_at(0)
        drawn = "".join(segment.text for y in range(3) for segment in patients.render_line(y))
        assert ESC not in drawn and "\x07" not in drawn and "Evil^Eve" in drawn


def test_bidirectional_overrides_are_shown_not_obeyed(tmp_path: Path) -> None:
    """A RIGHT-TO-LEFT OVERRIDE in a value would make the terminal draw the rest of the line backwards ("Trojan
    Source"): it is shown as \\u202e, as are the other embeddings and isolates; the plain RLM mark of Hebrew text
    stays."""
    from dicomtui.core.text import has_control, printable

    assert printable("scan\u202egpj.exe") == "scan\\u202egpj.exe"
    assert printable("a\u2066b\u2069c\u202ad\u202ce") == "a\\u2066b\\u2069c\\u202ad\\u202ce"
    hebrew = "שלום\u200f^כהן"
    assert printable(hebrew) is hebrew and not has_control(hebrew)
    write_series(tmp_path / "in", SeriesSpec(series_description="T1\u202eLAIXA", slices=2))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    result = _run("--db", str(tmp_path / "db"), "ls", "series")
    assert "\u202e" not in result.stdout and "T1\\u202eLAIXA" in result.stdout
