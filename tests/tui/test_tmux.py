"""The TUI in a real terminal: dicomtui runs in a tmux pane (its own server socket), driven with ``send-keys`` and
read with ``capture-pane``. tmux has no sixel, so the slice is drawn with half-block cells."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_program
from tests.tui.conftest import make_db

TIMEOUT_S = 20.0


class Tmux:
    """One tmux server on a private socket, holding the app's session."""

    def __init__(self, tmux: str, socket: str) -> None:
        self.tmux = tmux
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, check=check,
                              timeout=10)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app").stdout

    def keys(self, *keys: str, literal: bool = False, pause: float = 0.25) -> None:
        """Send keys one at a time, ``pause`` seconds apart, as a person types: keys sent together reach the app
        in one read (Escape then Tab would be read as alt+tab; "/roe" would reach the table before "/" has
        moved the focus to the filter box, and "o" would open the databases dialog)."""
        for key in keys:
            for one in (key if literal else [key]):
                self("send-keys", "-t", "app", *(["-l"] if literal else []), one)
                time.sleep(pause)

    def wait(self, what: str | Callable[[str], bool], timeout: float = TIMEOUT_S) -> str:
        """The screen once it shows ``what`` (text, or a test of the whole screen); fails with the last screen."""
        test = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            if not self.alive():
                pytest.fail(f"dicomtui exited while waiting for {what!r}; last screen:\n{screen}")
            screen = self.screen()
            if test(screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what!r}; the screen:\n{screen}")

    def alive(self) -> bool:
        return self("has-session", "-t", "app", check=False).returncode == 0


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(require_program("tmux", "tmux"), f"dicomtui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        server("kill-server", check=False)


def test_browse_filter_load_and_step_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    db = make_db(tmp_path)
    env = {key: os.environ[key] for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}  # the autouse fixture's temp dirs
    # -u COLUMNS -u LINES: under pytest, GNU readline (imported on the way) has exported COLUMNS=80 LINES=24 (its
    # size without a tty) into the C environment that children inherit, though not into os.environ; Textual takes
    # its size from them and would draw 80x24 in the 120x34 pane
    command = " ".join(["exec", "env", "-u", "COLUMNS", "-u", "LINES",
                        *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "dicomtui", "--db", shlex.quote(str(db)), "--renderer", "halfblock"])
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "34", "-c", str(tmp_path),
         *[arg for k, v in env.items() for arg in ("-e", f"{k}={v}")], command)

    # the three panes with the generated data
    screen = tmux.wait("Patients (2)")
    screen = tmux.wait(lambda s: "Series (2)" in s and "Gapped" in s)
    for expected in ("Doe^Jane", "Roe^Rick", "Studies (1)", "Synthetic study", "Axial", "Gapped",
                     "2 patients, 2 studies, 3 series"):  # the status line, after the db path (cut at 120 columns)
        assert expected in screen, f"{expected!r} not shown:\n{screen}"

    # filter as you type: only Roe^Rick, his MR study and its series
    tmux.keys("/")
    tmux.keys("roe", literal=True)
    screen = tmux.wait(lambda s: "Patients (1)" in s and "MR brain" in s and "T1" in s)
    assert "Roe^Rick" in screen and "Doe^Jane" not in screen, screen
    assert "Synthetic study" not in screen and "Gapped" not in screen, screen

    # empty the box: both patients, the cursor still on Roe^Rick (his study and series stay shown)
    tmux.keys("BSpace", "BSpace", "BSpace")
    screen = tmux.wait(lambda s: "Patients (2)" in s and "Doe^Jane" in s)
    assert "MR brain" in screen and "T1" in screen, screen
    # back to the table, up to Doe^Jane, Tab to the series table, Enter loads the 8-slice axial series
    tmux.keys("Escape", "Up")
    tmux.wait(lambda s: "Synthetic study" in s and "Gapped" in s)
    for _ in range(2):  # patients table → studies table → series table (the filter boxes are not in the Tab chain)
        tmux.keys("Tab")
    tmux.keys("Enter")
    screen = tmux.wait("axial 5/8")
    assert "Loaded data" in screen and "Axial" in screen, screen
    assert "▀" in screen or "▄" in screen, f"no half-block cells drawn:\n{screen}"

    tmux.keys("Up")
    screen = tmux.wait("axial 6/8")
    assert "S 10.0 mm" in screen and "├" in screen, screen  # the side letter, no sign; the scale bar

    tmux.keys("q")
    deadline = time.monotonic() + TIMEOUT_S
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), f"q did not quit; the screen:\n{tmux.screen()}"
