"""Images in real terminals under Xvfb, read back from a screenshot (imagemagick ``import -window root``):
xterm ``-ti vt340`` (sixel) and kitty 0.26.5 (graphics protocol, direct placement), pixel by pixel against the
expected greys; then the TUI itself in xterm, which must choose sixel and draw the slice in true greys (the old
encoder painted uniform areas green and a grey band over the top rows)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_program
from tests.tui.conftest import make_db
from tests.tui.test_tmux import Tmux, tmux  # noqa: F401 - the tmux server fixture

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 15.0

# a script the terminal runs: draw a grey ramp over a uniform area at the top-left with one renderer, save what
# was drawn, then wait to be stopped
DRAW = """
import sys, time, numpy as np
from dicomtui.tui.widgets import kitty, sixel, terminal
cell = terminal._ioctl_cell(1)
cols, rows = 24, 4
band = 6 if sys.argv[1] == "sixel" else 1  # sixel: whole bands of 6 rows; kitty: the cells exactly
h, w = rows * cell.height // band * band, cols * cell.width
grey = np.zeros((h, w), dtype=np.uint8)
grey[: h // 2] = np.arange(w) * 255 // (w - 1)
grey[h // 2:] = 117
data = sixel.encode(grey) if sys.argv[1] == "sixel" else kitty.transmit(grey, 5, (cols, rows))
sys.stdout.write("\\x1b[?25l\\x1b[2J\\x1b[H" + data)
sys.stdout.flush()
np.save(sys.argv[2], grey)
time.sleep(60)
"""


class Display:
    """An Xvfb server and the programs started on it (all stopped at the end)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.env = {**os.environ, "DISPLAY": f":{number}", "PYTHONPATH": str(ROOT)}
        self.processes: list[subprocess.Popen] = []

    def start(self, argv: list[str], **env: str) -> subprocess.Popen:
        process = subprocess.Popen(argv, env={**self.env, **env}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        return process

    def shot(self) -> np.ndarray:
        """The screen as RGB int (H, W, 3)."""
        png = subprocess.run([require_program("import", "imagemagick"), "-window", "root", "png:-"],
                             env=self.env, capture_output=True, check=True, timeout=10).stdout
        from io import BytesIO

        return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(np.int32)

    def key(self, *keys: str) -> None:
        for key in keys:
            subprocess.run([require_program("xdotool", "xdotool"), "key", key], env=self.env, check=True,
                           timeout=10)
            time.sleep(0.3)


@pytest.fixture
def display() -> Iterator[Display]:
    xvfb = require_program("Xvfb", "xvfb")
    require_program("import", "imagemagick")
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as answer:
            number = int(answer.readline())
        screen = Display(number)
        yield screen
    finally:
        for process in [*locals().get("screen", Display(0)).processes, server]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _drawn(tmp_path: Path) -> np.ndarray:
    deadline = time.monotonic() + TIMEOUT_S
    while not (tmp_path / "drawn.npy").exists():
        if time.monotonic() > deadline:
            pytest.fail("the terminal did not run the drawing script")
        time.sleep(0.1)
    time.sleep(1.0)  # the terminal paints on its next frame
    return np.load(tmp_path / "drawn.npy")


def _at(screen: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """The part of the screen where ``grey`` is drawn, found by its uniform lower half (grey 117, which both
    terminals show as 117: the window's border and kitty's centring of the cell grid move the image)."""
    mark = (screen == 117).all(axis=2)
    rows = np.flatnonzero(mark.sum(axis=1) >= grey.shape[1])
    assert len(rows), "the image is not on the screen"
    top, left = rows[0] - grey.shape[0] // 2, np.flatnonzero(mark[rows[0]])[0]
    region = screen[top:top + grey.shape[0], left:left + grey.shape[1]]
    assert region.shape[:2] == grey.shape, "the image is cut"
    return region


def test_sixel_in_xterm_is_the_image(display: Display, tmp_path: Path) -> None:
    """xterm 379 -ti vt340 shows our sixel image pixel by pixel as the input greys (within its percent steps:
    xterm truncates p·255/100), grey everywhere: no green, no band."""
    xterm = require_program("xterm", "xterm")
    (tmp_path / "draw.py").write_text(DRAW)
    display.start([xterm, "-ti", "vt340", "-b", "0", "-geometry", "100x30+0+0", "-e", sys.executable,
                   str(tmp_path / "draw.py"), "sixel", str(tmp_path / "drawn.npy")])
    grey = _drawn(tmp_path)
    region = _at(display.shot(), grey)
    expected = (((grey.astype(np.int32) * 100 + 127) // 255) * 255) // 100
    assert (region[..., 0] == region[..., 1]).all() and (region[..., 1] == region[..., 2]).all(), "not grey"
    assert np.abs(region[..., 0] - expected).max() <= 1, np.argwhere(np.abs(region[..., 0] - expected) > 1)[:5]


def test_kitty_direct_placement_is_the_image(display: Display, tmp_path: Path) -> None:
    """kitty (Debian 12: 0.26.5, no unicode placeholders) shows the directly placed image pixel by pixel."""
    kitty = require_program("kitty", "kitty")
    (tmp_path / "draw.py").write_text(DRAW)
    display.start([kitty, "--config", "NONE", "-o", "window_padding_width=0", "-o", "remember_window_size=no",
                   "-o", "initial_window_width=800", "-o", "initial_window_height=500", sys.executable,
                   str(tmp_path / "draw.py"), "kitty", str(tmp_path / "drawn.npy")], LIBGL_ALWAYS_SOFTWARE="1")
    grey = _drawn(tmp_path)
    region = _at(display.shot(), grey)
    assert np.abs(region - grey[..., None].astype(np.int32)).max() <= 1


def test_tui_in_xterm_draws_the_slice_as_sixel(display: Display, tmp_path: Path) -> None:
    """dicomtui in xterm -ti vt340 (TERM=xterm, no COLORTERM) asks the terminal, chooses sixel and draws the
    loaded slice in many true greys: no green pixel anywhere, no grey band over the top rows of the image."""
    xterm = require_program("xterm", "xterm")
    db = make_db(tmp_path)
    env = {k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    command = " ".join(["exec", "env", "-u", "COLUMNS", "-u", "LINES", "-u", "COLORTERM",
                        *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "dicomtui", "--db", shlex.quote(str(db))])
    display.start([xterm, "-ti", "vt340", "-b", "0", "-geometry", "120x34+0+0", "-e", "sh", "-c", command])
    blank = None
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:  # the browser is drawn: many colours on the screen
        screen = display.shot()
        if len(np.unique(screen.reshape(-1, 3), axis=0)) > 4:
            break
        blank = screen
        time.sleep(0.3)
    else:
        pytest.fail(f"dicomtui did not start in xterm (screen {blank is not None})")
    time.sleep(1.0)
    subprocess.run([require_program("xdotool", "xdotool"), "mousemove", "300", "200"], env=display.env, check=True)
    display.key("Tab", "Tab", "Tab", "Tab", "Return")  # to the series table, load the 8-slice axial series
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:  # the slice: a uniform grey disc (the generated phantom) on black
        screen = display.shot()
        disc = _largest_grey(screen)
        if disc is not None:
            break
        time.sleep(0.5)
    else:
        Image.fromarray(screen.astype(np.uint8)).save(tmp_path / "xterm-tui.png")
        pytest.fail(f"no sixel slice drawn ({tmp_path / 'xterm-tui.png'})")
    value, (top, bottom, left, right) = disc
    assert abs((bottom - top) - (right - left)) <= 0.05 * (right - left), "the disc is not round"
    centre = (left + right) // 2
    above = screen[top - 40:top - 8, centre - 20:centre + 20]  # the slice's black background (the disc's
    assert (above == 0).all(), "a band over the top rows"  # bilinear edge is 6 pixels wide)
    green = (screen[..., 1] > screen[..., 0] + 60) & (screen[..., 1] > screen[..., 2] + 60)
    assert not green.any(), f"{green.sum()} green pixels, e.g. at {np.argwhere(green)[:3].tolist()}"


def _largest_grey(screen: np.ndarray) -> tuple[int, tuple[int, int, int, int]] | None:
    """The commonest pure grey above 40 (darker greys are the TUI's panes) and the bounding box (top, bottom,
    left, right) of its rows and columns with more than 20 such pixels, when it covers more than 20,000."""
    grey = (screen[..., 0] == screen[..., 1]) & (screen[..., 1] == screen[..., 2]) & (screen[..., 0] > 40)
    if not grey.any():
        return None
    counts = np.bincount(screen[..., 0][grey], minlength=256)
    value = int(counts.argmax())
    if counts[value] < 20_000:
        return None
    mask = grey & (screen[..., 0] == value)
    rows, cols = np.flatnonzero(mask.sum(axis=1) > 20), np.flatnonzero(mask.sum(axis=0) > 20)  # not text
    return value, (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))


def _ramp(i: int, spec) -> np.ndarray:
    """CT values (stored, HU + 1024) rising from -160 to 240 HU across the columns: the whole of the default
    window (W 400 L 40), so every grey level is asked for."""
    hu = np.linspace(-160, 240, spec.cols)[None, :].repeat(spec.rows, axis=0)
    return (hu + 1024).astype(np.int16)


def test_half_blocks_in_tmux_with_term_xterm_show_30_greys(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    """What SSH gives (TERM=xterm, no COLORTERM) inside tmux: the half-blocks draw with the 256-colour palette's
    greys (≥ 24 distinct on the screen; Rich's 16 colours gave 4), and the header says what the user gets and how
    to get more."""
    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.indexer import import_paths
    from dicomtui.core.synth import SeriesSpec, write_series
    from dicomtui.tui.widgets.halfblocks import PALETTE_GREYS

    write_series(tmp_path / "in", SeriesSpec(patient_name="Ramp^Grey", patient_id="G1", slices=3, rows=64, cols=64,
                                             series_description="Ramp"), pixels=_ramp)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    env = {k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    command = " ".join(["exec", "env", "-u", "COLUMNS", "-u", "LINES", "-u", "COLORTERM", "TERM=xterm",
                        *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "dicomtui", "--db", shlex.quote(str(tmp_path / "db"))])
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "34", "-c", str(tmp_path), command)
    tmux.wait("Ramp")
    tmux.keys("Tab", "Tab", "Tab", "Tab", "Enter")
    screen = tmux.wait("axial 2/3")
    assert "30 greys (256 colours; 64 with --colors truecolor or tmux Tc/RGB)" in screen, screen
    coloured = tmux("capture-pane", "-p", "-e", "-t", "app").stdout
    used = {int(n) for n in re.findall(r"[34]8;5;(\d+)", coloured)}
    greys = used & {index for _, index in PALETTE_GREYS}
    assert len(greys) >= 24, f"{len(greys)} palette greys on the screen: {sorted(greys)}"
    tmux.keys("q")
