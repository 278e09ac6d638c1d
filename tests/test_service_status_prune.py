"""Issue 20, the headless workstation: the listener's systemd unit (checked by systemd-analyze), `status` (a
listener fed by DCMTK storescu), `db prune` (oldest studies first, linked files never deleted) and the listener's
free-space floor (0xA700 to storescu)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core import service
from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode
from dicomtui.core.status import status
from dicomtui.core.synth import SeriesSpec, write_series

from .conftest import require_program
from .test_net_loopback import _wait

DAY = 86400.0


def _exec_start(text: str) -> list[str]:
    """The argument vector systemd reads from the unit's ExecStart= (its quoting is the shell's double quotes,
    with %% for % and $$ for $)."""
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(line.removeprefix("ExecStart="))]


# ---- service -----------------------------------------------------------------------------------------------

def test_service_install_writes_a_user_unit_systemd_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    analyze = require_program("systemd-analyze", "systemd")
    db = tmp_path / "my db 100% $HOME"
    assert main(["nodes", "local", "--ae", "RESEARCH", "--port", "11190", "--allow", "CT1", "MR 2"]) == 0
    assert main(["--db", str(db), "service", "install"]) == 0
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / service.UNIT_NAME
    text = unit.read_text()
    out = capsys.readouterr().out
    assert f"wrote {unit}" in out and f"systemctl --user enable --now {service.UNIT_NAME}" in out
    assert "loginctl enable-linger" in out
    assert "Restart=on-failure" in text and "Type=notify" in text and "WantedBy=default.target" in text
    argv = _exec_start(text)
    assert argv[argv.index("--db") + 1] == str(db.resolve())  # the space, % and $ survive systemd's parsing
    assert argv[argv.index("listen") + 1:] == ["--ae", "RESEARCH", "--port", "11190", "--bind", "0.0.0.0", "--sync",
                                               "file", "--allow", "CT1", "MR 2"]
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert main(["service", "uninstall"]) == 0 and not unit.exists()
    assert f"removed {unit}" in capsys.readouterr().out
    assert main(["service", "uninstall"]) == 0 and "no unit was installed" in capsys.readouterr().out


def test_service_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    assert main(["--db", str(tmp_path / "db"), "service", "install", "--system", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[Unit]") and "WantedBy=multi-user.target" in text and "\nUser=" in text
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "systemd").exists()


def test_a_broken_unit_is_reported_by_verify(tmp_path: Path) -> None:
    """The check is real: systemd-analyze finds fault with an unbalanced quote."""
    require_program("systemd-analyze", "systemd")
    bad = tmp_path / "bad.service"
    bad.write_text('[Service]\nExecStart=/bin/true "open\n')
    assert service.verify(bad)


# ---- prune ---------------------------------------------------------------------------------------------------

def _three_studies(tmp_path: Path) -> Path:
    """Studies A (patient P1, copied, received 40 days ago), B (P2, copied, 10 days ago), C (P3, linked, 50 days
    ago); returns the database folder."""
    root = tmp_path / "db"
    ages = {}
    for name, pid, mode, age in (("A", "P1", "--copy", 40), ("B", "P2", "--copy", 10), ("C", "P3", "--link", 50)):
        uid = f"1.2.826.0.1.3680043.10.9.{ord(name)}"
        folder = write_series(tmp_path / name, SeriesSpec(patient_id=pid, study_uid=uid, slices=3))[0].parent
        assert main(["--db", str(root), "import", mode, str(folder)]) == 0
        ages[uid] = age
    with DicomDatabase.open(root) as db, db.conn:
        for uid, age in ages.items():
            db.conn.execute("UPDATE instances SET imported_at = ? WHERE series_fk IN (SELECT s.id FROM series s "
                            "JOIN studies st ON st.id = s.study_fk WHERE st.StudyInstanceUID = ?)",
                            (time.time() - age * DAY, uid))
    return root


def _study_uids(root: Path) -> set[str]:
    with DicomDatabase.open(root) as db:
        return {r[0] for r in db.conn.execute("SELECT StudyInstanceUID FROM studies")}


A, B, C = (f"1.2.826.0.1.3680043.10.9.{ord(x)}" for x in "ABC")


def test_prune_dry_run_lists_and_keeps_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _three_studies(tmp_path)
    capsys.readouterr()
    assert main(["--db", str(root), "db", "prune", "--older-than", "30d", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["StudyInstanceUID"] for s in out["studies"]] == [C, A]  # oldest first
    assert out["studies"][0]["stored_bytes"] == 0 and out["studies"][0]["linked_bytes"] > 0
    assert out["studies"][1]["stored_bytes"] > 0 and out["report"] is None
    assert _study_uids(root) == {A, B, C}


def test_prune_older_than_deletes_rows_and_copies_but_never_linked_files(tmp_path: Path) -> None:
    root = _three_studies(tmp_path)
    linked = sorted((tmp_path / "C").rglob("*.dcm"))
    stored = sorted((root / "dicom").rglob("*.dcm"))
    assert main(["--db", str(root), "db", "prune", "--older-than", "30d", "--keep-patient", "P9"]) == 0
    assert _study_uids(root) == {B}
    assert all(p.exists() for p in linked) and len(linked) == 3  # C's rows went, its files stayed
    assert len(sorted((root / "dicom").rglob("*.dcm"))) == len(stored) - 3  # A's copies went


def test_prune_keep_patient_and_max_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _three_studies(tmp_path)
    with DicomDatabase.open(root) as db:
        one_study = db.stats()["stored_bytes"] // 2
    # under the size limit with B alone: A (the oldest with copied files) goes; C (linked: frees nothing) stays
    assert main(["--db", str(root), "db", "prune", "--max-size", f"{one_study + 10}B"]) == 0
    assert _study_uids(root) == {B, C}
    assert main(["--db", str(root), "db", "prune", "--older-than", "1d", "--keep-patient", "P2", "P3"]) == 0
    assert _study_uids(root) == {B, C}
    assert main(["--db", str(root), "db", "prune"]) == 2
    assert "needs a limit" in capsys.readouterr().err


# ---- status and the free-space floor, with DCMTK storescu as the sender -----------------------------------------

def _storescu(port: int, files: list[Path]) -> subprocess.CompletedProcess:
    program = require_program("storescu", "dcmtk")
    return subprocess.run([program, "-v", "-aet", "SCANNER", "-aec", "DICOMTUI", "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=60, check=False)


def test_status_names_the_running_listener_and_today_s_arrivals(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    files = write_series(tmp_path / "in", SeriesSpec(slices=4))
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    assert status(root)["listeners"] == []
    with Listener(root, LocalNode(port=0, bind="127.0.0.1", min_free_bytes=0)) as server:
        done = _storescu(server.port, files)
        assert done.returncode == 0, done.stderr
        assert _wait(lambda: server.indexed == 4)
        info = status(root)
        assert [(x["port"], x["ae_title"], x["pid"]) for x in info["listeners"]] == [(server.port, "DICOMTUI",
                                                                                      os.getpid())]
        assert info["listeners"][0]["since"]
        assert main(["--db", str(root), "status"]) == 0
        out = capsys.readouterr().out
        assert f"DICOMTUI on 127.0.0.1:{server.port}, pid {os.getpid()}" in out
    assert info["received_today"] == 4 and info["counts"]["instances"] == 4 and info["disk"]["free"] > 0
    assert status(root, since=time.time() + 60)["received_today"] == 0
    assert status(root)["listeners"] == []


def test_the_listener_refuses_with_a700_below_its_free_space_floor(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    files = write_series(tmp_path / "in", SeriesSpec(slices=2))
    root = tmp_path / "db"
    caplog.set_level(logging.WARNING, logger="dicomtui.listener")
    with Listener(root, LocalNode(port=0, bind="127.0.0.1", min_free_bytes=1 << 62)) as server:
        done = _storescu(server.port, files)
        assert _wait(lambda: server.associations and server.associations[0].ended)
    # DCMTK's words for 0xA7xx; storescu stops its send at a refusal
    assert "Received Store Response (Refused: OutOfResources)" in done.stdout + done.stderr, done.stdout
    assert server.associations[0].failures == 1 and server.associations[0].images == 0 and server.indexed == 0
    assert "below the floor" in caplog.text and "refusing new instances" in caplog.text
    assert not [p for p in (root / "dicom").rglob("*") if p.is_file()]
    assert not list((root / "incoming").glob("*"))


def test_a_unit_that_cannot_be_written_is_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A system unit written without root: the user is told how to write it with their own settings."""
    locked = tmp_path / "etc"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setattr(service, "SYSTEM_UNIT_DIR", locked / "systemd")
    try:
        if os.geteuid() == 0:  # root writes anywhere: point at a file in place of the folder instead
            locked.chmod(0o700)
            (locked / "systemd").write_text("")
        assert main(["--db", str(tmp_path / "db"), "service", "install", "--system"]) == 2
    finally:
        locked.chmod(0o700)
    message = capsys.readouterr().err
    assert "cannot write" in message and "--dry-run | sudo tee" in message, message


def test_prune_daily_adds_a_timer_whose_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The timer and its oneshot service pass systemd-analyze, and the prune command line it holds, run as is,
    prunes: the limits typed (30d, 1.5G) reach `db prune` exactly."""
    analyze = require_program("systemd-analyze", "systemd")
    root = _three_studies(tmp_path)
    assert main(["--db", str(root), "service", "install", "--prune-daily", "--older-than", "30d", "--max-size",
                 "1.5G", "--keep-patient", "P3"]) == 0
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"
    assert {p.name for p in folder.iterdir()} == {service.UNIT_NAME, service.PRUNE_SERVICE, service.PRUNE_TIMER}
    assert f"systemctl --user enable --now {service.PRUNE_TIMER}" in capsys.readouterr().out
    timer = (folder / service.PRUNE_TIMER).read_text()
    assert "OnCalendar=daily" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer
    for name in (service.PRUNE_SERVICE, service.PRUNE_TIMER):
        done = subprocess.run([analyze, "verify", str(folder / name)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    argv = _exec_start((folder / service.PRUNE_SERVICE).read_text())
    assert argv[argv.index("prune") + 1:] == ["--older-than", "2592000s", "--max-size", f"{int(1.5 * 2**30)}B",
                                              "--keep-patient", "P3"]
    assert main(argv[argv.index("--db"):]) == 0  # what the timer will run
    assert _study_uids(root) == {B, C}  # A (40 days) went; C (50 days, patient P3) kept
    assert main(["service", "uninstall"]) == 0 and not list(folder.iterdir())
    assert main(["service", "install", "--prune-daily"]) == 2


def test_the_floor_is_set_with_nodes_local_and_shown_by_status(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from dicomtui.core.net.nodes import load_nodes

    assert load_nodes().local.min_free_bytes == 1 << 30  # the default: 1 GiB
    assert main(["nodes", "local", "--min-free", "2G"]) == 0
    assert load_nodes().local.min_free_bytes == 2 << 30
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    assert status(root)["disk"]["min_free"] == 2 << 30 and not status(root)["disk"]["refusing"]
    assert main(["nodes", "local", "--min-free", "1000000T"]) == 0
    capsys.readouterr()
    assert status(root)["disk"]["refusing"]
    assert main(["--db", str(root), "status"]) == 0
    assert "new instances are refused (0xA700)" in capsys.readouterr().out


def test_listen_tells_systemd_ready_and_stopping(tmp_path: Path) -> None:
    """The sd_notify protocol as systemd's Type=notify expects it: READY=1 once the port is bound (the port is
    already taken when READY arrives), STOPPING=1 at SIGTERM, each a datagram on $NOTIFY_SOCKET."""
    import signal
    import socket
    import sys

    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(address))
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(address)}
        proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "listen", "--port",
                                 "0", "--bind", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            ready = sock.recv(4096).decode()
            assert ready.startswith("READY=1\nSTATUS=listening as DICOMTUI on port "), ready
            port = int(ready.rsplit(" ", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # bound and accepting when READY arrived
            proc.send_signal(signal.SIGTERM)
            assert sock.recv(4096) == b"STOPPING=1"
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]


def test_a_study_receiving_meanwhile_is_not_pruned(tmp_path: Path) -> None:
    """Planned as old, then an instance arrives (as from a running listener): the study is young again and kept."""
    from dicomtui.core.database.prune import plan, prune

    root = _three_studies(tmp_path)
    with DicomDatabase.open(root) as db:
        items = plan(db, older_than=30 * DAY)
        assert [i.StudyInstanceUID for i in items] == [C, A]
        with db.conn:
            db.conn.execute("UPDATE instances SET imported_at = ? WHERE id = (SELECT MIN(i.id) FROM instances i JOIN "
                            "series s ON s.id = i.series_fk JOIN studies st ON st.id = s.study_fk WHERE "
                            "st.StudyInstanceUID = ?)", (time.time(), A))
        report, skipped = prune(db, items)
    assert [i.StudyInstanceUID for i in skipped] == [A] and report.studies == 1
    assert _study_uids(root) == {A, B}
