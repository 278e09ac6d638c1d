"""``dicomtui patch SRC -o DST``: the DICOM patcher (the core's :func:`dicomtui.core.patcher.patch`): fixed copies
of every file of a folder in another folder, a report of what changed in each, then, with ``--import``, the copies
imported into the database."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

from ..core.text import printable
from .database_cmds import _ctrl_c_cancels, open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, with_progress

__all__ = ["RULE_NAMES", "cmd_patch", "register"]

# core.patcher.RULES's names in the order they run (imported lazily: the other commands start faster; a test
# checks they agree)
RULE_NAMES = ("uids", "dates", "ids", "spacing", "syntax", "meta", "split")
LISTED = 200  # changed files listed on the terminal; --json has them all


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``patch`` to the sub-parsers ``sub``."""
    p = sub.add_parser("patch", help="write fixed copies of a folder's DICOM files to another folder (missing "
                                     "UIDs, file meta, spacing, fake multi-frames, transfer syntax, bad UIDs/dates)")
    p.add_argument("source", metavar="SRC", help="the folder of files to fix (read only, never changed)")
    p.add_argument("-o", "--output", required=True, metavar="DST", help="a new or empty folder for the fixed copies")
    rules = p.add_mutually_exclusive_group()
    rules.add_argument("--rule", action="append", choices=RULE_NAMES, metavar="NAME", dest="rules",
                       help="a rule to apply (repeatable; they run in a fixed order): " + ", ".join(RULE_NAMES)
                            + " (default: all)")
    rules.add_argument("--all", action="store_true", help="apply every rule (the default)")
    p.add_argument("--import", action="store_true", dest="import_",
                   help="then import the fixed copies into the database (copy mode)")
    p.add_argument("--dry-run", action="store_true", help="read and fix, write nothing: what would change")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.set_defaults(handler=cmd_patch)


def cmd_patch(args: argparse.Namespace, db_path: Path) -> int:
    """Patch SRC into DST with a progress bar (Ctrl-C cancels after the current file), print the report, import
    with ``--import``. Exit 1 when files were skipped, the patch was cancelled or the import rejected files; 2 when
    nothing could be patched (a bad folder is a PatchError: exit 2 with its sentence)."""
    from ..core.patcher import import_patched, patch

    if args.import_ and args.dry_run:
        err("--dry-run writes nothing to import: leave out --import or --dry-run")
        return EXIT_FATAL
    cancel = threading.Event()
    with _ctrl_c_cancels(cancel):
        report = with_progress(lambda progress: patch(args.source, args.output, args.rules, dry_run=args.dry_run,
                                                      progress=progress, cancel=cancel), "Patching")
    imported = None
    if args.import_ and report.files and not report.cancelled:
        with open_database(db_path) as db:
            imported = import_patched(db, report)
    if args.json:
        out = report.to_dict()
        if imported is not None:
            out["import"] = imported.to_dict()
        print(json.dumps(out, indent=2))
    else:
        _print_report(report, imported)
    if not report.files and report.skipped:
        return EXIT_FATAL
    return EXIT_PARTIAL if report.skipped or report.cancelled or (imported and imported.rejected) else EXIT_OK


def _print_report(report, imported) -> None:
    """The summary, each changed file's changes (one per line), the skipped files with their reason."""
    print(printable(report.summary()))
    for f in report.changed[:LISTED]:
        outputs = "" if f.outputs == [f.source] else f" → {', '.join(f.outputs)}"
        print(f"{printable(f.source)}{printable(outputs)}")
        for rule, change in f.changes:
            print(f"  {rule}: {printable(change)}")
    if len(report.changed) > LISTED:
        print(f"… {len(report.changed) - LISTED} more changed files (--json lists them all)")
    if report.skipped:
        print(f"Skipped ({len(report.skipped)}):")
        for s in report.skipped:
            print(f"  {printable(s.path)}\t{printable(s.reason)}")
    if imported is not None:
        print(printable(imported.headline()))
