"""``dicomtui export``: patients (PatientID), studies, series or instances to a folder, a ZIP or a DICOMDIR
file-set (the core's :func:`dicomtui.core.export.export_items`)."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from . import deidentify_cmds
from .database_cmds import _ctrl_c_cancels, open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, with_progress

__all__ = ["cmd_export", "register"]

LAYOUTS = ("tree", "flat")  # core.export.Layout's values (imported lazily: the other commands start faster)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy patients (PatientID), studies, series or instances to a folder, "
                                      "a ZIP or a DICOMDIR file-set")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the folder to write into (made when missing); with --zip, the ZIP file (DIR.zip)")
    p.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0],
                   help="tree: Patient/Study/Series/NNNN.dcm (default); flat: PatientID_Series_NNNN.dcm in one "
                        "folder. Names come from the data, made safe; NNNN follows InstanceNumber")
    p.add_argument("--dicomdir", action="store_true",
                   help="write a DICOMDIR; the files then get PS3.10 names (PT000000/ST000000/SE000000/IM000000)")
    p.add_argument("--zip", action="store_true", help="write one ZIP file instead of a folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files that exist (without it, an export that would replace one writes nothing)")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.add_argument("--deidentify", action="store_true", help="de-identify the files (PS3.15 Basic Profile; see "
                                                             "`dicomtui deidentify`); names become numbers")
    deidentify_cmds.add_deidentify_options(p)
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace, db_path: Path) -> int:
    """Export the items with a progress bar (Ctrl-C cancels after the current file). Exit 1 when some files
    could not be exported or the export was cancelled, 2 when none could be."""
    from ..core.export import ExportOptions, export_items

    if args.deidentify:
        return deidentify_cmds.run_deidentified_export(args, db_path)
    options = ExportOptions(layout=args.layout, dicomdir=args.dicomdir, zip=args.zip, overwrite=args.overwrite)
    report = run_export(db_path, args.uids, export_items, args.output, options, "Exporting")
    if report is None:
        return EXIT_FATAL
    print(json.dumps(report_json(report), indent=2) if args.json else report.summary())
    if report.total and not report.written and not report.left_out:
        return EXIT_FATAL
    return EXIT_PARTIAL if report.problems or report.cancelled else EXIT_OK


def run_export(db_path: Path, uids: list[str], export: Any, output: str, options: Any, label: str) -> Any:
    """``export(db, items, output, options, progress, cancel)`` (``export_items`` or ``export_deidentified``) of
    the items ``uids`` name, with a progress bar labelled ``label``; Ctrl-C cancels after the current file. The
    report, or None when a UID names nothing (said on stderr)."""
    cancel = threading.Event()
    with open_database(db_path, create=False, read_only=True) as db:
        items = resolved_items(db, uids)
        if items is None:
            return None
        with _ctrl_c_cancels(cancel):
            return with_progress(lambda progress: export(db, items, output, options, progress, cancel), label)


def resolved_items(db: Any, uids: list[str]) -> list[tuple[str, int]] | None:
    """The (level, row id) items the UIDs name, or None after telling the user the first one that names none."""
    from ..core import selection

    resolved = selection.resolve(db, uids)
    if resolved.missing:
        err(selection.missing_sentence(resolved.missing[0]))
        return None
    return list(resolved.items)


def report_json(report: Any) -> dict[str, Any]:
    """The ``--json`` form of a ``core.export.ExportReport``: keys are a stable contract (never renamed, only
    added)."""
    return {"destination": str(report.destination), "total": report.total, "written": report.written,
            "bytes": report.bytes, "seconds": round(report.seconds, 3), "layout": report.layout,
            "dicomdir": str(report.dicomdir) if report.dicomdir else None, "zip": report.zip,
            "left_out": report.left_out, "cancelled": report.cancelled, "not_written": report.not_written,
            "files": report.names, "notes": report.notes,
            "problems": [{"sop_instance_uid": p.sop_instance_uid, "path": p.path, "reason": p.reason}
                         for p in report.problems]}
