"""``dicomtui doctor terminal``: what the terminal answered, a test pattern drawn with each renderer it can take,
and which renderer and colour system the TUI will use, and why.

``doctor`` is network_cmds' command (``doctor NODE``); its handler hands the node name ``terminal`` to
``cmd_doctor_terminal`` (a node really named "terminal" is then checked by its AE@host:port).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .output import EXIT_OK

PATTERN_CELLS = (48, 4)  # columns, rows of each drawn test pattern


def register(sub: argparse._SubParsersAction) -> None:
    """Say in ``doctor``'s help that ``doctor terminal`` checks the terminal (network_cmds registers ``doctor``;
    its handler hands the node name "terminal" to ``cmd_doctor_terminal``)."""
    doctor = sub.choices["doctor"]
    doctor.description = ("Check a node step by step (network, echo, query, a move back to us); "
                          "`doctor terminal` checks the terminal's images and colours instead.")


def test_pattern(width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3): a grey ramp (0 → 255, left to right) over the top two thirds, colour bars
    (red, yellow, green, cyan, blue, magenta) below."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width).round().astype(np.uint8)
    split = height * 2 // 3
    image[:split] = ramp[None, :, None]
    bars = np.array([[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255]],
                    dtype=np.uint8)
    image[split:] = bars[np.arange(width) * len(bars) // width][None, :, :]
    return image


def answers(term) -> list[str]:
    """The terminal's answers, one line each."""
    truecolor, why = term.truecolor
    lines = [f"TERM={term.term or '(unset)'}  COLORTERM={term.colorterm or '(unset)'}",
             f"asked the terminal: {'yes' if term.asked else 'no (not a terminal)'}",
             f"XTVERSION: {term.version or 'no answer'}",
             f"DA1: {';'.join(map(str, term.da1)) or 'no answer'} (sixel: {'yes' if term.sixel else 'no'})",
             "sixel colour registers: " + (str(term.sixel_registers) if term.sixel_registers else "no answer"),
             "sixel geometry: " + ("{}×{} pixels".format(*term.sixel_geometry) if all(term.sixel_geometry)
                                   else "no answer"),
             f"kitty graphics: {'yes' if term.kitty_graphics else 'no'}",
             f"24-bit colour: {'yes' if truecolor else 'no'} ({why})",
             "cell size: " + ("{}×{} pixels".format(*term.cell) if all(term.cell) else "unknown (10×20 assumed)")]
    if term.tmux:
        lines.append(f"inside {term.tmux}: allow-passthrough {term.tmux_passthrough}; tmux answers the queries")
    return lines


def cmd_doctor_terminal(args: argparse.Namespace, _db_path: Path) -> int:
    """Print the answers, draw the pattern with each renderer the terminal takes, say the choice. Exit 0."""
    from ..tui.widgets import terminal

    term = terminal.probe()
    choice = terminal.choose(term, getattr(args, "renderer", None) or "auto", getattr(args, "colors", "auto"))
    for line in answers(term):
        print(line)
    out = sys.stdout
    if term.asked:
        cw, ch = term.cell if all(term.cell) else (10, 20)
        cols, rows = PATTERN_CELLS
        drawers = [("half-blocks, " + choice.colors, _halfblocks(cols, rows, choice.colors))]
        if term.sixel:
            drawers.append(("sixel", _sixel(cols * cw, rows * ch // 6 * 6, term.sixel_registers or 256)))
        if term.kitty_graphics:
            drawers.append(("kitty graphics (direct placement)", _kitty(cols * cw, rows * ch, (cols, rows))))
        for name, data in drawers:
            out.write(f"\n{name}:\n" + "\n" * rows + f"\x1b[{rows}A\x1b7{data}\x1b8\x1b[{rows}B\n")
        out.flush()
    print(f"\nrenderer: {choice.renderer} — {choice.renderer_why}")
    print(f"colours: {choice.colors} — {choice.colors_why}")
    return EXIT_OK


def _halfblocks(cols: int, rows: int, system: str) -> str:
    from rich.color import ColorSystem

    from ..tui.widgets.halfblocks import strips

    colour_system = ColorSystem.TRUECOLOR if system == "truecolor" else ColorSystem.EIGHT_BIT
    lines = []
    for strip in strips(test_pattern(cols, rows * 2), system):
        lines.append("".join(seg.style.render(seg.text, color_system=colour_system) if seg.style else seg.text
                             for seg in strip))
    return "\r\n".join(lines)


def _sixel(width: int, height: int, registers: int) -> str:
    from ..tui.widgets.sixel import encode

    return encode(test_pattern(width, height), registers)


def _kitty(width: int, height: int, cells: tuple[int, int]) -> str:
    from ..tui.widgets.kitty import transmit

    return transmit(test_pattern(width, height), 7300, cells)
