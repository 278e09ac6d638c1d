"""An overlay in a real terminal: dicomtui in xterm -ti vt340 under Xvfb (sixel, chosen from the terminal's
answers) shows a CT with a segmentation loaded on it; the screenshot (imagemagick) holds the segment's colour
around the grey disc, and after g (filled) its tint inside. Builds on tests/tui/test_real_terminals.py."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screenshots.xvfb_terminal import PROGRAMS, ROOT, Display
from tests.conftest import require_program
from tests.tui.conftest import make_db

from .test_real_terminals import settled

# run inside the terminal: ask it (as the CLI does), then the app with a CT and a SEG loaded as a load ends
SHOW = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from dicomtui.tui.widgets.terminal import prepare
prepare("auto", "auto")
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.widgets.slice_view import ViewerItem
from tests.tui.test_viewer_overlay import ct, seg

async def show(pilot):
    app = pilot.app
    await pilot.pause(1.0)  # the browser mounted (the pilot starts when the app is ready, before its screen)
    app._loaded([ViewerItem("CT", [ct()]), ViewerItem("SEG", [seg()])])
    await pilot.pause()
    view = app.screen.query_one("#slice-view")
    view.index = 5
    await pilot.pause()
    Path(sys.argv[2]).write_text(view.query_one("#slice-image").renderer)

DicomTuiApp(Path(sys.argv[1]), settings_path=Path(sys.argv[3])).run(auto_pilot=show)
"""


@pytest.fixture
def display():
    for name in ("Xvfb", "import", "xdotool", "xterm"):
        require_program(name, PROGRAMS[name])
    with Display() as screen:
        yield screen


def magenta(screen: np.ndarray) -> np.ndarray:
    """Pixels of the first segment's colour (255, 0, 255), as xterm draws sixel's percent registers."""
    return (screen[..., 0] > 230) & (screen[..., 1] < 25) & (screen[..., 2] > 230)


def tinted(screen: np.ndarray) -> np.ndarray:
    """The filled tint: magenta at 40 % over the disc's grey (40 HU in W 400 L 40: grey 128) → (179, 77, 179)."""
    return (np.abs(screen[..., 0] - 179) < 8) & (np.abs(screen[..., 1] - 77) < 8) & (np.abs(screen[..., 2] - 179) < 8)


def test_segment_colour_appears_in_xterm_sixel(display: Display, tmp_path: Path) -> None:
    (tmp_path / "show.py").write_text(SHOW.format(root=str(ROOT)))
    argv = ["sh", "-c", " ".join(["exec env -u COLUMNS -u LINES -u COLORTERM", shlex.quote(sys.executable),
                                  *map(shlex.quote, map(str, (tmp_path / "show.py", make_db(tmp_path),
                                                              tmp_path / "renderer.txt",
                                                              tmp_path / "config.toml")))])]
    display.terminal("xterm", argv)
    deadline = time.monotonic() + 30
    while not (tmp_path / "renderer.txt").exists():
        if time.monotonic() > deadline:
            pytest.fail("dicomtui did not show the viewer in xterm")
        time.sleep(0.2)
    assert (tmp_path / "renderer.txt").read_text() == "sixel"
    screen, outline = display.wait(settled(lambda s: int(magenta(s).sum()) if magenta(s).sum() > 100 else None))
    if outline is None:
        Image.fromarray(screen.astype(np.uint8)).save(tmp_path / "xterm-overlay.png")
        pytest.fail(f"no segment outline on the screen ({tmp_path / 'xterm-overlay.png'})")
    assert tinted(screen).sum() == 0  # outlines only
    display.key("g")  # filled: the inside tinted, under the outline
    screen, fill = display.wait(settled(lambda s: int(tinted(s).sum()) if tinted(s).sum() > 1000 else None))
    if fill is None:
        Image.fromarray(screen.astype(np.uint8)).save(tmp_path / "xterm-filled.png")
        pytest.fail(f"no filled segment on the screen ({tmp_path / 'xterm-filled.png'})")
    assert magenta(screen).sum() > 100
