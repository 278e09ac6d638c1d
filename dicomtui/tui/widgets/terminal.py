"""What the terminal can draw, asked once before Textual takes it; the renderer and colour system chosen from that.

The queries (all sent at once, DA1 last: every terminal answers DA1, so its answer ends the wait):
  XTVERSION ``CSI > 0 q`` → ``DCS > | name(version) ST`` (xterm, kitty, tmux, foot, WezTerm…);
  kitty graphics ``APC G a=q …`` → ``APC G i=31;OK ST`` (kitty graphics protocol, "Querying support");
  XTSMGRAPHICS ``CSI ? 1;1;0 S`` / ``CSI ? 2;1;0 S`` → colour registers / sixel geometry (xterm ctlseqs);
  DECRQSS for SGR after ``CSI 38;2;1;2;3 m`` → the direct colour back when it is kept (truecolor);
  XTGETTCAP ``RGB`` / ``Tc`` (xterm ctlseqs; kitty answers from its terminfo);
  cell size from TIOCGWINSZ, else ``CSI 16 t``; DA1 ``CSI c`` → ``CSI ? …;4;… c`` when sixel is there (VT340).
Checked here: xterm 379 ``-ti vt340`` (sixel, 1024 registers, no DECRQSS direct colour), kitty 0.26.5 (graphics
protocol without unicode placeholders, which came in 0.28), tmux 3.3a (answers itself: no sixel, no graphics).
No textual / rich import here: the CLI's ``doctor terminal`` uses it without starting the TUI.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

RENDERERS_DRAWN = ("kitty", "sixel", "halfblock")
COLOR_SYSTEMS = ("auto", "truecolor", "256")
KITTY_PLACEHOLDERS = (0, 28)  # unicode placeholders arrived in kitty 0.28.0

_QUERIES = ("\x1b[>0q"  # XTVERSION
            "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"  # kitty graphics: a 1×1 RGB image, query only
            "\x1b[?1;1;0S\x1b[?2;1;0S"  # XTSMGRAPHICS: colour registers, sixel geometry
            "\x1b[38;2;1;2;3m\x1bP$qm\x1b\\\x1b[m"  # DECRQSS SGR after a direct colour
            "\x1bP+q524742;5463\x1b\\"  # XTGETTCAP RGB;Tc
            "\x1b[16t"  # cell size in pixels
            "\x1b[c")  # DA1, answered by every terminal: the end of the answers


class CellSize(NamedTuple):
    """Pixels per terminal cell."""

    width: int
    height: int


@dataclass
class Terminal:
    """What the terminal answered (empty when it was not asked: not a terminal, or tests)."""

    asked: bool = False
    term: str = ""
    colorterm: str = ""
    version: str = ""  # XTVERSION, e.g. "xterm(379)", "kitty(0.26.5)", "tmux 3.3a"
    da1: tuple[int, ...] = ()
    kitty_graphics: bool = False
    sixel_registers: int = 0  # XTSMGRAPHICS; 0 when not answered
    sixel_geometry: tuple[int, int] = (0, 0)
    direct_colour: bool = False  # DECRQSS gave the 24-bit colour back
    tcap: dict[str, bool] = field(default_factory=dict)  # XTGETTCAP RGB / Tc
    cell: CellSize = CellSize(0, 0)
    tmux: str = ""  # tmux's version when inside tmux
    tmux_passthrough: str = ""  # tmux's allow-passthrough option
    raw: str = ""  # the answers as read

    @property
    def sixel(self) -> bool:
        return 4 in self.da1[1:]

    @property
    def truecolor(self) -> tuple[bool, str]:
        """Whether 24-bit colour reaches the screen, and what said so."""
        if self.colorterm.lower() in ("truecolor", "24bit"):
            return True, f"COLORTERM={self.colorterm}"
        if self.direct_colour:
            return True, "DECRQSS answered the 24-bit colour"
        for cap in ("RGB", "Tc"):
            if self.tcap.get(cap):
                return True, f"XTGETTCAP answered {cap}"
        return False, "no COLORTERM, DECRQSS and XTGETTCAP did not confirm 24-bit colour"

    def kitty_version(self) -> tuple[int, ...] | None:
        m = re.match(r"kitty\(([\d.]+)\)", self.version)
        return tuple(int(p) for p in m.group(1).split(".")) if m else None


def parse(answers: str, term: Terminal) -> Terminal:
    """Fill ``term`` from the raw ``answers`` to ``_QUERIES``."""
    term.raw = answers
    if m := re.search(r"\x1bP>\|([^\x1b]*)\x1b\\", answers):
        term.version = m.group(1)
    if m := re.search(r"\x1b\[\?([\d;]*)c", answers):
        term.da1 = tuple(int(p) for p in m.group(1).split(";") if p)
    term.kitty_graphics = bool(re.search(r"\x1b_Gi=31;OK\x1b\\", answers))
    if m := re.search(r"\x1b\[\?1;0;(\d+)S", answers):
        term.sixel_registers = int(m.group(1))
    if m := re.search(r"\x1b\[\?2;0;(\d+);(\d+)S", answers):
        term.sixel_geometry = (int(m.group(1)), int(m.group(2)))
    if m := re.search(r"\x1bP1\$r([^\x1b]*)\x1b\\", answers):
        term.direct_colour = bool(re.search(r"38[:;]2[:;]+1[:;]2[:;]3", m.group(1)))
    for name, hexname in (("RGB", "524742"), ("Tc", "5463")):
        term.tcap[name] = bool(re.search(rf"\x1bP1\+r{hexname}", answers, re.IGNORECASE))
    if (m := re.search(r"\x1b\[6;(\d+);(\d+)t", answers)) and not all(term.cell):
        term.cell = CellSize(int(m.group(2)), int(m.group(1)))
    return term


def probe(timeout: float = 1.0) -> Terminal:
    """Ask the controlling terminal (stdin/stdout must be a tty), reading until its DA1 answer or ``timeout``."""
    term = Terminal(term=os.environ.get("TERM", ""), colorterm=os.environ.get("COLORTERM", ""))
    _tmux(term)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return term
    try:
        import termios
        import tty
    except ImportError:  # not a POSIX terminal (Windows): nothing asked, half-blocks in 256 colours
        return term

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    term.cell = _ioctl_cell(fd_out)
    saved = termios.tcgetattr(fd_in)
    answers = b""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, _QUERIES.encode())
        deadline = time.monotonic() + timeout
        while not re.search(rb"\x1b\[\?[\d;]*c", answers) and (left := deadline - time.monotonic()) > 0:
            if select.select([fd_in], [], [], left)[0]:
                answers += os.read(fd_in, 4096)
        # what came after DA1 within a moment (none expected), so that no answer reaches the app as keys
        while select.select([fd_in], [], [], 0.05)[0]:
            answers += os.read(fd_in, 4096)
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    term.asked = True
    return parse(answers.decode("latin-1"), term)


def _ioctl_cell(fd: int) -> CellSize:
    import fcntl
    import struct
    import termios

    try:
        rows, cols, width, height = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return CellSize(0, 0)
    return CellSize(width // cols, height // rows) if rows and cols and width and height else CellSize(0, 0)


def _tmux(term: Terminal) -> None:
    """Inside tmux the queries reach tmux, not the terminal around it: note tmux's version and passthrough."""
    if not os.environ.get("TMUX") or not (tmux := shutil.which("tmux")):
        return
    try:
        term.tmux = subprocess.run([tmux, "-V"], capture_output=True, text=True, timeout=2).stdout.strip()
        term.tmux_passthrough = subprocess.run([tmux, "show", "-gv", "allow-passthrough"], capture_output=True,
                                               text=True, timeout=2).stdout.strip() or "unknown (tmux < 3.3)"
    except (OSError, subprocess.SubprocessError):
        term.tmux = term.tmux or "tmux"


# ---- the choices -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """The renderer and colour system used, each with the reason."""

    renderer: str  # kitty, kitty-placeholders, sixel, halfblock (or what the user asked for)
    renderer_why: str
    colors: str  # truecolor or 256 (half-block cells and the rest of the TUI)
    colors_why: str


def choose(term: Terminal, renderer: str = "auto", colors: str = "auto") -> Choice:
    """The renderer ("auto": kitty graphics, else sixel, else half-blocks) and colour system ("auto": truecolor
    when the terminal confirms it, else the 256-colour palette, never 16 colours)."""
    if colors == "auto":
        truecolor, colors_why = term.truecolor
        colors = "truecolor" if truecolor else "256"
        if not truecolor:
            colors_why += "; 256 colours (TERM or tmux's Tc/RGB, or --colors truecolor, give 24-bit)"
    else:
        colors_why = f"--colors {colors}"
    if renderer != "auto":
        return Choice(renderer, f"asked for ({renderer})", colors, colors_why)
    version = term.kitty_version()
    if term.kitty_graphics:
        if version is not None and version >= KITTY_PLACEHOLDERS:
            return Choice("kitty-placeholders", f"kitty {_v(version)} has the graphics protocol with unicode "
                          "placeholders", colors, colors_why)
        return Choice("kitty", f"the terminal ({term.version or 'unnamed'}) answered the kitty graphics query; "
                      "direct placement (unicode placeholders need kitty ≥ 0.28)", colors, colors_why)
    if term.sixel:
        return Choice("sixel", f"the terminal ({term.version or 'unnamed'}) lists sixel in its DA1 answer",
                      colors, colors_why)
    why = "no kitty graphics, no sixel in the DA1 answer" if term.asked else "the terminal was not asked"
    if term.tmux:
        why += f" ({term.tmux} answers for the terminal, and has no images)"
    return Choice("halfblock", why, colors, colors_why)


def _v(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# ---- the state of this process: asked once, in the CLI, before Textual starts -------------------------------------

_TERMINAL = Terminal()
_CHOICE: Choice | None = None


def prepare(renderer: str = "auto", colors: str = "auto") -> Choice:
    """Ask the terminal (once), choose, and tell Textual the colour system (TEXTUAL_COLOR_SYSTEM, read when
    textual is first imported: call this before). Returns the choice the image widgets then follow."""
    global _TERMINAL, _CHOICE
    _TERMINAL = probe()
    _CHOICE = choose(_TERMINAL, renderer, colors)
    os.environ["TEXTUAL_COLOR_SYSTEM"] = _CHOICE.colors
    if _CHOICE.renderer in ("kitty-placeholders", "unicode"):
        # textual-image asks the terminal at import, which it cannot once Textual reads the keyboard; on failure
        # (e.g. ZeroDivisionError on a 0×0 pty) graphics.image_class falls back to our widgets
        with contextlib.suppress(Exception):
            import textual_image.widget  # noqa: F401
    return _CHOICE


def current() -> tuple[Terminal, Choice | None]:
    """What ``prepare`` found (an unasked Terminal and None when it was not called: tests, screenshots)."""
    return _TERMINAL, _CHOICE


def colour_system() -> str:
    """truecolor or 256: how half-block cells give their greys (truecolor when nobody chose: headless tests)."""
    return _CHOICE.colors if _CHOICE else "truecolor"


def get_cell_size() -> CellSize:
    """Pixels per cell as the terminal said (10×20, VT340's, when it did not)."""
    return _TERMINAL.cell if all(_TERMINAL.cell) else CellSize(10, 20)
