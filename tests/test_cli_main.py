"""The CLI's frame: each command registers its handler; a user error is a sentence and exit 2; a bug stays a bug;
a table on a terminal, TSV in a pipe; `ls` starts without textual, rich or pynetdicom."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.cli import (
    build_parser,
    database_cmds,
    deidentify_cmds,
    edit_cmds,
    export_cmds,
    image_cmds,
    main,
    network_cmds,
    output,
    patch_cmds,
    route_cmds,
    seg_cmds,
    service_cmds,
    volume_cmds,
)
from dicomtui.core.errors import LoadError, NodeError, PixelError
from dicomtui.core.levels import LS_COLUMNS, Column, Level, column

from .test_cli import run

HANDLERS = {
    ("import", "x"): database_cmds.cmd_import, ("ls", "patients"): database_cmds.cmd_ls,
    ("rm", "1.2"): database_cmds.cmd_rm, ("show", "1.2"): database_cmds.cmd_show,
    ("db", "info"): database_cmds.cmd_db, ("db", "check"): database_cmds.cmd_db,
    ("examine", "1.2"): image_cmds.cmd_examine, ("load", "1.2", "-o", "v.nrrd"): image_cmds.cmd_load,
    ("nodes", "ls"): network_cmds.cmd_nodes, ("echo", "n"): network_cmds.cmd_echo,
    ("send", "1.2", "--to", "n"): network_cmds.cmd_send, ("query", "n"): network_cmds.cmd_query,
    ("retrieve", "n", "1.2"): network_cmds.cmd_retrieve, ("doctor", "n"): network_cmds.cmd_doctor,
    ("listen",): network_cmds.cmd_listen,
    ("export", "1.2", "-o", "d"): export_cmds.cmd_export,
    ("edit", "1.2", "--set", "PatientName=x"): edit_cmds.cmd_edit,
}
HANDLERS[("volume-to-dicom", "v.nii")] = volume_cmds.cmd_volume_to_dicom
HANDLERS[("labels-to-seg", "l.nii", "--like", "1.2")] = seg_cmds.cmd_labels_to_seg
HANDLERS.update({("service", "install"): service_cmds.cmd_service, ("status",): service_cmds.cmd_status,
                 ("db", "prune", "--older-than", "30d"): service_cmds.cmd_prune})
HANDLERS[("deidentify", "1.2", "-o", "d")] = deidentify_cmds.cmd_deidentify
HANDLERS[("reidentify", "1.2", "-o", "d")] = deidentify_cmds.cmd_reidentify
HANDLERS[("route", "ls")] = route_cmds.cmd_route
HANDLERS[("patch", "src", "-o", "d")] = patch_cmds.cmd_patch


def test_every_command_registers_its_handler() -> None:
    parser = build_parser()
    for argv, handler in HANDLERS.items():
        assert parser.parse_args(list(argv)).handler is handler, argv
    assert {argv[0] for argv in HANDLERS} == set(parser._subparsers._group_actions[0].choices)


def test_option_defaults_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "dicomtui"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('import_mode = "copy"\nsplit_by_time = true\nregularize = true\n')
    seen = {}
    monkeypatch.setattr(image_cmds, "cmd_load", lambda args, db_path: seen.update(vars(args)) or 0)
    monkeypatch.setattr(database_cmds, "cmd_import", lambda args, db_path: seen.update(vars(args)) or 0)
    assert main(["--db", str(tmp_path / "db"), "load", "1.2", "-o", "v.nrrd"]) == 0
    assert seen["split_by_time"] is True and seen["regularize"] is True
    assert main(["--db", str(tmp_path / "db"), "import", "x"]) == 0 and seen["mode"] == "copy"
    assert main(["--db", str(tmp_path / "db"), "import", "x", "--link"]) == 0 and seen["mode"] == "link"


@pytest.mark.parametrize("error", [NodeError("unknown node 'x': give a preset name or AE@host:port"),
                                   PixelError("IM1.dcm: cannot decode JPEG 2000 (install pylibjpeg)"),
                                   LoadError("the slices differ in size")])
def test_a_user_error_is_its_sentence_and_exit_2(error: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def fail(args, db_path):
        raise error

    monkeypatch.setattr(network_cmds, "cmd_echo", fail)
    assert main(["--db", str(tmp_path / "db"), "echo", "x"]) == 2
    out = capsys.readouterr()
    assert out.err == f"dicomtui: {error}\n" and out.out == ""


def test_a_really_locked_database_is_the_databases_sentence(tmp_path: Path, series_folder: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: another process holds the write lock; the database's DatabaseError reaches the user as its
    sentence (naming the file, saying what to do) and exit 2. The wait is cut from 60 s to 1 s."""
    from dicomtui.core.database import schema

    db = tmp_path / "db"
    assert main(["--db", str(db), "import", str(series_folder)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_S", 1.0)
    other = sqlite3.connect(db / schema.DB_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert main(["--db", str(db), "rm", "SYN0001", "--yes"]) == 2
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert capsys.readouterr().err == (f"dicomtui: the database {db / schema.DB_FILE} is busy: another process has "
                                       "been writing to it for over 1 s (database is locked); try again when it "
                                       "has finished\n")


def test_a_bug_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args, db_path):
        raise KeyError("PatientID")

    monkeypatch.setattr(database_cmds, "cmd_ls", bug)
    with pytest.raises(KeyError, match="PatientID"):
        main(["--db", str(tmp_path / "db"), "ls", "patients"])


def test_user_errors_end_to_end_have_no_traceback(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    for argv, sentence in ((["echo", "nosuchnode"], "unknown node 'nosuchnode'"),
                           (["load", "1.2.3", "-o", str(tmp_path / "v.png")], "v.png"),
                           (["ls", "patients"], "no dicomtui database")):
        out = run("--db", db, *argv)
        assert out.returncode == 2 and out.stderr.startswith("dicomtui: ") and sentence in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def _columns() -> list[Column]:
    """Columns of the series level and, to see copy/link, the instances' ``stored``."""
    return [column(Level.INSTANCE if k == "stored" else Level.SERIES, k)
            for k in ("SeriesNumber", "Modality", "num_instances", "stored", "image_size", "SeriesInstanceUID")]


def _rows() -> list[dict]:
    return [{"SeriesNumber": 1, "Modality": "MR", "num_instances": 12, "stored": 1, "image_size": None,
             "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1147.117543464542409801750770000451"}]


def test_rows_in_a_pipe_are_tab_separated(capsys: pytest.CaptureFixture[str]) -> None:
    output.print_rows(_columns(), _rows(), "1 series")
    assert capsys.readouterr().out.splitlines() == [
        "SeriesNumber\tModality\tnum_instances\tstored\timage_size\tSeriesInstanceUID",
        "1\tMR\t12\tcopy\t\t1.2.826.0.1.3680043.10.1147.117543464542409801750770000451"]


def test_rows_on_a_terminal_are_a_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for every value: nothing folds
    output.print_rows(_columns(), _rows(), "1 series")
    lines = capsys.readouterr().out.splitlines()
    assert "\t" not in "".join(lines)
    assert lines[0].split() == ["SeriesNumber", "Modality", "instances", "copied", "size", "SeriesInstanceUID"]
    assert lines[1].split() == ["1", "MR", "12", "copy", "1.2.826.0.1.3680043.10.1147.117543464542409801750770000451"]
    assert lines[-1] == "1 series"


def _on_a_terminal(*args: str, columns: int = 200) -> str:
    """stdout of ``dicomtui ARGS`` run with stdout on a pseudo-terminal of ``columns`` columns."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    data = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return re.sub(r"\x1b\[[0-9;]*m", "", data.decode()).replace("\r\n", "\n")  # without bold and dim


def test_ls_draws_a_table_on_a_terminal_and_tsv_in_a_pipe(tmp_path: Path, series_folder: Path) -> None:
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(series_folder)).returncode == 0
    uids = [s["SeriesInstanceUID"] for s in json.loads(run("--db", db, "ls", "series", "--json").stdout)]

    piped = run("--db", db, "ls", "series").stdout.splitlines()
    assert piped[0] == "\t".join(LS_COLUMNS[Level.SERIES])
    assert [line.split("\t")[-1] for line in piped[1:]] == uids

    shown = _on_a_terminal("--db", db, "ls", "series").splitlines()
    assert "\t" not in "\n".join(shown)
    assert shown[0].split()[:4] == ["SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined"]
    assert [line.split()[-1] for line in shown[1:3]] == uids  # whole, on one line each
    assert shown[-1] == "2 series"


def test_ls_imports_neither_textual_rich_nor_pynetdicom(tmp_path: Path, series_folder: Path) -> None:
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(series_folder)).returncode == 0
    code = ("import sys; from dicomtui.cli import main; main(['--db', sys.argv[1], 'ls', 'patients']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich', 'pynetdicom'}), "
            "file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, db], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "[]", out.stderr
