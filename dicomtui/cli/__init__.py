"""The headless face: ``dicomtui COMMAND``; with no command, the TUI.

Exit codes: 0 success, 1 partial (some files rejected, some items failed), 2 usage or fatal error.
``--json`` output is a stable contract (see README): keys are never renamed, only added.

Each command module (``database_cmds``, ``image_cmds``, ``network_cmds``) has ``register(subparsers)``, which adds
its sub-parsers and sets two defaults on each: ``handler(args, db_path) -> exit code`` and, where an option's
default comes from the settings, ``from_settings(args, settings)``. ``main`` parses, reads the settings, dispatches,
and turns every user-facing error (``DicomtuiError``) into its sentence on stderr and exit 2; any other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import RENDERERS, load_settings
from ..core.errors import DicomtuiError
from . import database_cmds, image_cmds, network_cmds, terminal_cmds
from .output import EXIT_FATAL, EXIT_OK, err

__all__ = ["build_parser", "main"]

COMMAND_MODULES = (database_cmds, image_cmds, network_cmds, terminal_cmds)  # terminal_cmds wraps doctor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomtui",
        description="A keyboard-driven DICOM workstation for the terminal. Without a command, starts the TUI.",
    )
    parser.add_argument("--db", metavar="PATH", help="database folder (default: from settings, else the user data dir)")
    parser.add_argument("--renderer", choices=RENDERERS,
                        help="how the TUI draws images (default: from settings, else detected)")
    parser.add_argument("--colors", choices=("auto", "truecolor", "256"), default="auto",
                        help="the TUI's colour system (default: truecolor when the terminal confirms it, else 256)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        settings = load_settings()
        db_path = Path(args.db).expanduser() if args.db else settings.database
        if args.command is None:
            return _run_tui(db_path, settings, args.renderer, args.colors)
        if from_settings := getattr(args, "from_settings", None):
            from_settings(args, settings)
        return args.handler(args, db_path)
    except DicomtuiError as exc:  # a sentence for the user (bad settings, database, node, peer, file, output)
        err(str(exc))
        return EXIT_FATAL
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_FATAL
    except BrokenPipeError:  # `dicomtui show UID | head`: the reader has what it wanted; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush is quiet too
        return EXIT_OK


def _run_tui(db_path: Path, settings, renderer: str | None, colors: str = "auto") -> int:
    from ..tui.widgets.terminal import prepare  # asks the terminal before Textual takes it (no textual import)

    prepare(renderer or settings.renderer, colors)
    from ..tui.app import DicomTuiApp  # lazily: `dicomtui ls` must not pay for importing textual

    DicomTuiApp(db_path, settings, renderer).run()
    return EXIT_OK
