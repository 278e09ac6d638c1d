"""What reaches stderr besides a command's own messages: the log of the core and the libraries' Python warnings,
both as ``dicomtui: warning: …`` lines at the level ``-v`` / ``--log-level`` asks for; and the ``--version`` line.

A library warning printed by Python's default hook starts with the library's source path and line
(``/…/site-packages/pydicom/valuerep.py:440: UserWarning: …``): noise to a user, and it names no file of theirs.
Here it is one line in our voice; the core already captures the warnings of each file it reads into that file's
report row (:func:`dicomtui.core.dicomfile.captured_warnings`), so what arrives here is what escaped a file context.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ..core.text import printable

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Loggers whose records are ours to show: the core's, pydicom's (it logs some problems instead of warning), and
# Python warnings once captured (logging.captureWarnings sends them to "py.warnings").
ROUTED_LOGGERS = ("dicomtui", "pydicom", "py.warnings")


class StderrLine(logging.Handler):
    """One ``dicomtui: LEVEL: message`` line per record (``warning``, ``info``…), escaped like every message."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record must not end the command
            text = str(record.msg)
        with suppress(OSError, ValueError):  # stderr closed: nothing to tell
            print(f"dicomtui: {record.levelname.lower()}: {printable(text, multiline=True)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: the warning's text (and kind when it is not a plain UserWarning)
    logged at WARNING on "py.warnings", without the library's path and line."""
    kind = "" if category in (UserWarning, Warning) else f" ({category.__name__})"
    logging.getLogger("py.warnings").warning("%s%s", message, kind)


@contextmanager
def routed(verbosity: int = 0, log_level: str | None = None,
           loggers: tuple[str, ...] = ROUTED_LOGGERS) -> Iterator[int]:
    """Inside the block, the loggers of :data:`ROUTED_LOGGERS` and Python warnings go to stderr lines at the level
    asked: ``log_level`` (one of :data:`LOG_LEVELS`) if given, else WARNING, INFO for ``-v``, DEBUG for ``-vv``.
    ``loggers``: fewer for a command that logs its own way (``listen`` prints its log with times). Yields the
    level; everything is put back afterwards (tests call ``main`` many times in one process)."""
    level = getattr(logging, log_level) if log_level else (
        logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        handler = StderrLine()
        saved.append((logger, handler, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield level
    finally:
        if warnings.showwarning is _show_warning:
            warnings.showwarning = show
        for logger, handler, old_level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = propagate


def version_line() -> str:
    """``dicomtui 0.1.0 (pydicom 3.0.1, pynetdicom 3.0.4, Python 3.11.2)``: what a bug report needs."""
    from importlib import metadata  # here, not at import: ~20 ms every command would pay

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    libs = ", ".join(f"{name} {version(name)}" for name in ("pydicom", "pynetdicom"))
    return f"dicomtui {version('dicomtui')} ({libs}, Python {sys.version.split()[0]})"


class VersionAction(argparse.Action):
    """``--version``: prints :func:`version_line` and exits; the line is made only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version_line())
        parser.exit()
