"""A real terminal (xterm -ti vt340, kitty) on a private Xvfb display, driven with xdotool and read back with
imagemagick's ``import -window root``. Used by tests/tui/test_real_terminals.py and capture_terminals.py.

Facts it relies on (PEERS.md, checked here): Xvfb picks a free display with ``-displayfd``; xterm without a
window manager sits at +0+0 inside a 1-pixel X border; kitty needs software GL under Xvfb
(``LIBGL_ALWAYS_SOFTWARE=1``) and centres its cell grid in the window; xdotool's XTEST keys reach the window
under the pointer (no window manager: focus follows the pointer).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = {"Xvfb": "xvfb", "import": "imagemagick", "xdotool": "xdotool", "xterm": "xterm", "kitty": "kitty"}


class Display:
    """An Xvfb server and the programs started on it; ``close`` stops them all (use it as a context manager)."""

    def __init__(self, size: tuple[int, int] = (1280, 800)) -> None:
        read, write = os.pipe()
        self.server = subprocess.Popen([_which("Xvfb"), "-displayfd", str(write), "-screen", "0",
                                        f"{size[0]}x{size[1]}x24", "-nolisten", "tcp"], pass_fds=(write,),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        self.processes: list[subprocess.Popen] = [self.server]
        with os.fdopen(read) as answer:
            line = answer.readline()
        if not line.strip():
            self.close()
            raise RuntimeError("Xvfb did not start")
        self.env = {**os.environ, "DISPLAY": f":{int(line)}", "PYTHONPATH": str(ROOT)}

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def start(self, argv: list[str], **env: str) -> subprocess.Popen:
        process = subprocess.Popen(argv, env={**self.env, **env}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        return process

    def terminal(self, name: str, argv: list[str], cols: int = 120, rows: int = 34) -> subprocess.Popen:
        """Run ``argv`` in terminal ``name`` (xterm: -ti vt340, sixel; kitty: graphics protocol) at the top-left."""
        if name == "xterm":
            return self.start([_which("xterm"), "-ti", "vt340", "-b", "0", "-geometry", f"{cols}x{rows}+0+0",
                               "-e", *argv])
        return self.start([_which("kitty"), "--config", "NONE", "-o", "window_padding_width=0",
                           "-o", "remember_window_size=no", "-o", f"initial_window_width={cols}c",
                           "-o", f"initial_window_height={rows}c", *argv], LIBGL_ALWAYS_SOFTWARE="1")

    def shot(self) -> np.ndarray:
        """The screen as RGB int32 (height, width, 3)."""
        png = subprocess.run([_which("import"), "-window", "root", "png:-"], env=self.env, capture_output=True,
                             check=True, timeout=10).stdout
        return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(np.int32)

    def key(self, *keys: str, pause: float = 0.3) -> None:
        """Type ``keys`` (X keysym names) into the window under the pointer, ``pause`` seconds apart."""
        subprocess.run([_which("xdotool"), "mousemove", "200", "150"], env=self.env, check=True, timeout=10)
        for key in keys:
            subprocess.run([_which("xdotool"), "key", key], env=self.env, check=True, timeout=10)
            time.sleep(pause)

    def wait(self, test, timeout: float = 15.0, every: float = 0.3):
        """The first screenshot for which ``test(screen)`` is not None, and that value; (last screen, None)."""
        deadline = time.monotonic() + timeout
        screen = self.shot()
        while (found := test(screen)) is None and time.monotonic() < deadline:
            time.sleep(every)
            screen = self.shot()
        return screen, found


def dicomtui_argv(db: Path, *args: str) -> list[str]:
    """``sh -c`` running dicomtui on ``db`` as a user's shell would (no COLORTERM, as over SSH; COLUMNS/LINES,
    which pytest's readline exports, removed so that Textual takes the terminal's size)."""
    keep = {k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME") if k in os.environ}
    command = " ".join(["exec", "env", "-u", "COLUMNS", "-u", "LINES", "-u", "COLORTERM",
                        *(f"{k}={shlex.quote(v)}" for k, v in keep.items()), shlex.quote(sys.executable),
                        "-m", "dicomtui", "--db", shlex.quote(str(db)), *map(shlex.quote, args)])
    return ["sh", "-c", command]


def screen_started(screen: np.ndarray) -> bool | None:
    """True once the TUI has drawn (more than a handful of colours on the screen)."""
    return True if len(np.unique(screen[::4, ::4].reshape(-1, 3), axis=0)) > 4 else None


def largest_grey(screen: np.ndarray) -> tuple[int, tuple[int, int, int, int]] | None:
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


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (Debian package {PROGRAMS[name]})")
    return path
