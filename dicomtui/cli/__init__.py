"""The headless face: ``dicomtui COMMAND``; with no command, the TUI.

Exit codes: 0 success, 1 partial (some files rejected, some items failed), 2 usage or fatal error.
``--json`` output is a stable contract (see README): keys are never renamed, only added.

Each command module (``database_cmds``, ``image_cmds``, ``network_cmds``) has ``register(subparsers)``, which adds
its sub-parsers and sets two defaults on each: ``handler(args, db_path) -> exit code`` and, where an option's
default comes from the settings, ``from_settings(args, settings)``. ``main`` parses, reads the settings, dispatches,
and turns every user-facing error (``DicomtuiError``) into its sentence on stderr and exit 2; any other exception
is a bug and keeps its traceback.

The options every command shares (``--db``, ``--renderer``, ``-v/--verbose``, ``--log-level``) are accepted before
the command and after it (as git and DCMTK users type them): each sub-parser gets a copy whose default is
``argparse.SUPPRESS``, so a copy never overwrites what was given before the command. Python warnings (pydicom's)
and the log of the core go through :mod:`dicomtui.cli.reporting`: ``dicomtui: warning: …``, never a library's
source path.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import RENDERERS, load_settings
from ..core.errors import DicomtuiError
from . import (
    database_cmds,
    deidentify_cmds,
    edit_cmds,
    export_cmds,
    image_cmds,
    network_cmds,
    patch_cmds,
    reporting,
    route_cmds,
    seg_cmds,
    service_cmds,
    terminal_cmds,
    volume_cmds,
)
from .output import EXIT_FATAL, EXIT_OK, err

__all__ = ["build_parser", "main"]

# terminal_cmds wraps doctor; service_cmds comes after database_cmds: it adds `db prune`
COMMAND_MODULES = (database_cmds, image_cmds, network_cmds, terminal_cmds, export_cmds, volume_cmds, edit_cmds,
                   service_cmds, deidentify_cmds, seg_cmds, route_cmds, patch_cmds)
OWN_LOGGING = {"listen"}  # commands that configure the core's log themselves (timestamped lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomtui",
        description="A keyboard-driven DICOM workstation for the terminal. Without a command, starts the TUI.",
    )
    parser.add_argument("--version", action=reporting.VersionAction,
                        help="the versions of dicomtui and its DICOM libraries")
    _add_shared_options(parser, argparse.ArgumentParser.add_argument)
    parser.add_argument("--colors", choices=("auto", "truecolor", "256"), default="auto",
                        help="the TUI's colour system (default: truecolor when the terminal confirms it, else 256)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    for command in _all_subparsers(parser):
        _add_shared_options(command, _suppressed)
    return parser


def _add_shared_options(parser: argparse.ArgumentParser, add) -> None:
    """The options of every command, added with ``add`` (plain on the main parser, default-suppressed on the
    sub-parsers). An option string a command already has (``listen -v``) stays that command's."""
    taken = set(parser._option_string_actions)

    def option(*names: str, **kwargs) -> None:
        names = tuple(n for n in names if n not in taken)
        if names:
            add(parser, *names, **kwargs)

    option("--db", metavar="PATH", help="database folder (default: from settings, else the user data dir)")
    option("--renderer", choices=RENDERERS, help="how the TUI draws images (default: from settings, else detected)")
    option("-v", "--verbose", dest="verbosity", action="count", default=0,
           help="say more on stderr: -v what is done (INFO), -vv details (DEBUG)")
    option("--log-level", choices=reporting.LOG_LEVELS, type=str.upper, metavar="LEVEL",
           help=f"what reaches stderr: {', '.join(reporting.LOG_LEVELS)} (default WARNING; overrides -v)")


def _suppressed(parser: argparse.ArgumentParser, *names: str, **kwargs) -> argparse.Action:
    return parser.add_argument(*names, **{**kwargs, "default": argparse.SUPPRESS})


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every sub-parser under ``parser``, nested ones (``db check``) included."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out += [child, *_all_subparsers(child)]
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbosity and getattr(args, "verbose", None) is False:  # `dicomtui -v listen`: as `listen -v`
        args.verbose = True
    if args.command is None:  # the TUI owns the terminal: nothing may print on it
        return _dispatch(args)
    own_log = args.command in OWN_LOGGING
    loggers = tuple(n for n in reporting.ROUTED_LOGGERS if not (own_log and n == "dicomtui"))
    with reporting.routed(args.verbosity, args.log_level, loggers):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
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
