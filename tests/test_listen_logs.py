"""The listener's log (issue 20): `listen --log-file` rotated by size, `--log-format json` with one object per
association and per forward, values from peers escaped and truncated; `service install` passes the options on."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.logfile import log_handler
from dicomtui.core.net.listener import AssociationStats
from dicomtui.core.synth import SeriesSpec, write_series

from .conftest import require_program
from .interop.test_dimse import free_port, wait_port
from .test_net_loopback import _wait
from .test_service_status_prune import _exec_start

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}



def _lines(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths if path.exists() for line in path.read_text().splitlines()]


def test_listen_writes_json_lines_to_a_rotated_file(tmp_path: Path) -> None:
    require_program("storescu", "dcmtk")
    port, dead = free_port(), free_port()
    assert main(["nodes", "add", "down", f"DOWN@127.0.0.1:{dead}"]) == 0  # nothing listens: the forward fails
    assert main(["route", "add", "--to", "down"]) == 0
    log = tmp_path / "logs" / "listen.log"
    series = tmp_path / "series"
    write_series(series, SeriesSpec(slices=3, rows=16, cols=16))
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "listen", "--port",
                             str(port), "--bind", "127.0.0.1", "--log-file", str(log), "--log-format", "json",
                             "--log-max-size", "1K", "--log-keep", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, 30)
        for _ in range(6):
            done = subprocess.run(["storescu", "-aec", "DICOMTUI", "127.0.0.1", str(port), "+sd", str(series)],
                                  capture_output=True, env=DCMTK_ENV, timeout=60)
            assert done.returncode == 0
        assert _wait(lambda: any(e.get("event") == "forward" for e in _lines([log, log.with_name("listen.log.1")])))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0 and stderr == ""  # everything went to the file
    files = [log, log.with_name("listen.log.1"), log.with_name("listen.log.2")]
    assert all(f.exists() for f in files) and not log.with_name("listen.log.3").exists()
    assert all(f.stat().st_size <= 1024 for f in files)
    entries = _lines(files)  # every line is one JSON object
    associations = [e for e in entries if e.get("event") == "association"]
    assert associations, entries
    last = associations[-1]
    assert (last["calling_ae"], last["images"], last["status"], last["refused"]) == ("STORESCU", 3, "released", 0)
    assert last["address"].startswith("127.0.0.1:") and last["seconds"] > 0 and last["bytes"] > 0
    forward = next(e for e in entries if e.get("event") == "forward")
    assert forward["node"] == "down" and forward["sent"] == 0 and f":{dead}" in forward["error"]


def test_peer_values_are_escaped_and_cut_in_both_formats(tmp_path: Path) -> None:
    """An A-ASSOCIATE-RQ whose Calling AE Title holds a control character is refused at decoding (pynetdicom), so
    the value is checked here on the association's record itself: both formats escape it and cut a long one."""
    text_log, json_log = tmp_path / "t.log", tmp_path / "j.log"
    handlers = [log_handler(text_log), log_handler(json_log, "json")]
    stats = AssociationStats("\x1b[31mEVIL\u202e" + "A" * 100, "127.0.0.1:4000", images=2, ended="released")
    record = logging.LogRecord("dicomtui.listener", logging.INFO, "", 0, stats.summary(), None, None)
    record.event = stats.event()
    for handler in handlers:
        handler.emit(record)
        handler.close()
    text = text_log.read_text()
    assert "\x1b" not in text and "\u202e" not in text and "association from \\x1b[31mEVIL\\u202e" in text
    event = _lines([json_log])[0]
    assert event["calling_ae"].startswith("\\x1b[31mEVIL\\u202e") and event["calling_ae"].endswith("…[110 chars]")
    assert (event["event"], event["images"], event["status"], event["level"]) == ("association", 2, "released",
                                                                                  "info")
    assert "\x1b" not in json_log.read_text()


def test_service_install_passes_the_log_options_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "local", "--allow", "CT1"]) == 0
    capsys.readouterr()
    assert main(["--db", str(tmp_path / "db"), "service", "install", "--dry-run", "--log-file", "logs/l.log",
                 "--log-max-size", "5M", "--log-keep", "3", "--log-format", "json"]) == 0
    argv = _exec_start(capsys.readouterr().out)
    options = argv[argv.index("listen") + 1:]
    assert options[options.index("--log-file") + 1] == str(Path("logs/l.log").absolute())
    assert options[options.index("--log-max-size") + 1] == f"{5 << 20}B"
    assert options[options.index("--log-keep") + 1] == "3" and options[options.index("--log-format") + 1] == "json"
    assert options[-2:] == ["--allow", "CT1"]  # --allow takes every word after it: it stays last


def test_a_log_file_that_cannot_be_opened_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--db", str(tmp_path / "db"), "listen", "--port", "0", "--log-file", str(blocker / "l.log")]) == 2
    assert f"cannot open the log file {blocker / 'l.log'}" in capsys.readouterr().err


def test_the_listener_keeps_only_its_latest_associations(tmp_path) -> None:
    """A listener that runs for months as a service does not keep every association it ever had."""
    from dicomtui.core.net.listener import KEPT_ASSOCIATIONS, AssociationStats, Listener
    from dicomtui.core.net.nodes import LocalNode

    listener = Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1"))
    for n in range(KEPT_ASSOCIATIONS + 5):
        listener.associations.append(AssociationStats(calling_ae=f"AE{n}", address="127.0.0.1"))
    assert len(listener.associations) == KEPT_ASSOCIATIONS
    assert listener.associations[-1].calling_ae == f"AE{KEPT_ASSOCIATIONS + 4}"
