"""Values from files made safe to print or draw: control characters shown, never obeyed by a terminal.

A DICOM file is input from anyone: a StudyInstanceUID of ``"\\x1b[31mred"`` would turn a terminal red, move its
cursor, rename its window or worse, wherever it is printed (``ls``, ``show``, the TUI, logs, error messages).
PS3.5 6.1.2-6.1.3 allow in values only the graphic characters of the character set plus, in text VRs (LT, ST, UT,
UC), the format effectors TAB, LF, FF and CR; ESC only inside ISO 2022 code extensions, which decoding removes.
So after decoding, anything else (the rest of C0, DEL, and C1 — 0x9B is a one-character CSI) is not text.
Nor are the Unicode bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a value may
carry them in UTF-8, and a terminal that obeys them draws the rest of the line reordered (a name, a UID or a path
that reads as something else: "Trojan Source", CVE-2021-42574). The plain marks LRM, RLM and ALM stay (text in
Hebrew or Arabic may need them, and they reorder nothing beyond their neighbours).
"""

from __future__ import annotations

import re

__all__ = ["has_control", "printable"]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The format effectors PS3.5 6.1.3 allows in text values, as control pictures (U+2409, U+240A, U+240C, U+240D):
# shown, and a value stays one line (one table cell, one TSV field, one log line).
_PICTURES = {"\t": "\u2409", "\n": "\u240a", "\x0c": "\u240c", "\r": "\u240d"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _PICTURES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character :func:`printable` would escape (a table checks all its cells
    joined once, then escapes cell by cell only if so)."""
    # str.isprintable() (C speed, 2 ms over 2.5 MB of cells) is True for text without any control character; only
    # when it says no (a control, or a rarer non-printable such as U+00AD) does the regex (twice as slow) decide
    return not text.isprintable() and _CONTROL.search(text) is not None


def printable(text: str, multiline: bool = False) -> str:
    """``text`` with every control character shown instead of obeyed: TAB, LF, FF, CR (allowed in text values,
    PS3.5 6.1.3) as the control pictures ␉ ␊ ␌ ␍, every other C0 character, DEL and C1 as ``\\xNN`` (ESC is
    ``\\x1b``), a bidirectional embedding, override or isolate as ``\\uNNNN``. ``multiline``: LF stays a line
    break (messages, reports, tracebacks of several lines). Text without
    control characters is returned as is (one regex search: the TUI's filter keystroke redraws thousands of
    cells)."""
    if not has_control(text):
        return text
    if multiline:
        return "\n".join(_CONTROL.sub(_escaped, line) for line in text.split("\n"))
    return _CONTROL.sub(_escaped, text)
