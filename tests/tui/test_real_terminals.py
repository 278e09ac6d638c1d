"""Images in real terminals under Xvfb, read back from a screenshot (imagemagick ``import -window root``):
xterm ``-ti vt340`` (sixel) and kitty 0.26.5 (graphics protocol, direct placement), pixel by pixel against the
expected greys; then the TUI itself in xterm, which must choose sixel and draw the slice in true greys (the old
encoder painted uniform areas green and a grey band over the top rows)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screenshots.xvfb_terminal import PROGRAMS, Display, dicomtui_argv, largest_grey, screen_started
from tests.conftest import require_program
from tests.tui.conftest import make_db
from tests.tui.test_tmux import Tmux, tmux  # noqa: F401 - the tmux server fixture

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


@pytest.fixture
def display() -> Iterator[Display]:
    for name in ("Xvfb", "import", "xdotool"):
        require_program(name, PROGRAMS[name])
    with Display() as screen:
        yield screen


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
    require_program("xterm", "xterm")
    (tmp_path / "draw.py").write_text(DRAW)
    display.terminal("xterm", [sys.executable, str(tmp_path / "draw.py"), "sixel", str(tmp_path / "drawn.npy")])
    grey = _drawn(tmp_path)
    region = _at(display.shot(), grey)
    expected = (((grey.astype(np.int32) * 100 + 127) // 255) * 255) // 100
    assert (region[..., 0] == region[..., 1]).all() and (region[..., 1] == region[..., 2]).all(), "not grey"
    assert np.abs(region[..., 0] - expected).max() <= 1, np.argwhere(np.abs(region[..., 0] - expected) > 1)[:5]


def test_kitty_direct_placement_is_the_image(display: Display, tmp_path: Path) -> None:
    """kitty (Debian 12: 0.26.5, no unicode placeholders) shows the directly placed image pixel by pixel."""
    require_program("kitty", "kitty")
    (tmp_path / "draw.py").write_text(DRAW)
    display.terminal("kitty", [sys.executable, str(tmp_path / "draw.py"), "kitty", str(tmp_path / "drawn.npy")])
    grey = _drawn(tmp_path)
    region = _at(display.shot(), grey)
    assert np.abs(region - grey[..., None].astype(np.int32)).max() <= 1


def settled(test):
    """``test`` for Display.wait that answers only when two screenshots in a row give the same value: a loaded
    machine may be caught half-way through drawing."""
    last: list = [None]

    def check(screen):
        found = test(screen)
        agreed = found if found is not None and found == last[0] else None
        last[0] = found
        return agreed

    return check


@pytest.mark.parametrize("name", ["xterm", "kitty"])
def test_tui_draws_the_slice_in_a_real_terminal(display: Display, tmp_path: Path, name: str) -> None:
    """dicomtui in xterm -ti vt340 and in kitty 0.26.5 (no COLORTERM) asks the terminal, chooses sixel / kitty
    direct placement, and draws the loaded slice: the generated phantom's uniform disc, round, on black, no green
    pixel (the old sixel encoder's), no band over the top rows, no missing-glyph boxes (textual-image's
    placeholders in kitty < 0.28); back in the browser the image is gone."""
    require_program(name, PROGRAMS[name])
    display.terminal(name, dicomtui_argv(make_db(tmp_path)))
    screen, started = display.wait(screen_started)
    assert started, f"dicomtui did not start in {name}"
    time.sleep(1.0)
    display.key("3", "Return")  # to the series table, load the 8-slice axial series
    screen, disc = display.wait(settled(largest_grey))  # the same disc twice: drawn whole (sixel draws in bands)
    if disc is None:
        Image.fromarray(screen.astype(np.uint8)).save(tmp_path / f"{name}-tui.png")
        pytest.fail(f"no slice drawn ({tmp_path / f'{name}-tui.png'})")
    _value, (top, bottom, left, right) = disc
    assert abs((bottom - top) - (right - left)) <= 0.05 * (right - left), "the disc is not round"
    centre = (left + right) // 2
    above = screen[top - 40:top - 8, centre - 20:centre + 20]  # the slice's black background (below 20: the
    assert (above < 20).all(), "a band over the top rows"  # disc's edge is smoothed by the resampling)
    green = (screen[..., 1] > screen[..., 0] + 60) & (screen[..., 1] > screen[..., 2] + 60)
    assert not green.any(), f"{green.sum()} green pixels, e.g. at {np.argwhere(green)[:3].tolist()}"
    display.key("Escape")  # back to the browser: the image goes (a kitty placement floats over text otherwise)
    screen, gone = display.wait(lambda s: True if largest_grey(s) is None else None, timeout=5)
    assert gone, "the slice is still shown over the browser"


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
    command = dicomtui_argv(tmp_path / "db")[2].replace("-u COLORTERM", "-u COLORTERM TERM=xterm")
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "34", "-c", str(tmp_path), command)
    tmux.wait("Ramp")
    tmux.keys("3", "Enter")  # the series pane, load
    screen = tmux.wait("axial 2/3")
    assert "30 greys (256 colours; 64 with --colors truecolor or tmux Tc/RGB)" in screen, screen
    coloured = tmux("capture-pane", "-p", "-e", "-t", "app").stdout
    used = {int(n) for n in re.findall(r"[34]8;5;(\d+)", coloured)}
    greys = used & {index for _, index in PALETTE_GREYS}
    assert len(greys) >= 24, f"{len(greys)} palette greys on the screen: {sorted(greys)}"
    tmux.keys("q")


def test_doctor_terminal_in_tmux(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    """In tmux (TERM=xterm, no COLORTERM) the doctor shows tmux's answers, draws the half-block pattern and says
    half-blocks in 256 colours, and why."""
    command = dicomtui_argv(tmp_path / "db", "doctor", "terminal")[2].replace("-u COLORTERM", "-u COLORTERM TERM=xterm")
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(tmp_path),
         command.replace("exec ", "") + "; sleep 30")
    screen = tmux.wait("colours:")
    for expected in ("XTVERSION: tmux 3", "DA1: 1;2 (sixel: no)", "kitty graphics: no", "inside tmux 3",
                     "half-blocks, 256:", "renderer: halfblock", "answers for the terminal", "colours: 256"):
        assert expected in screen, f"{expected!r} not shown:\n{screen}"
    assert "▀" in screen
