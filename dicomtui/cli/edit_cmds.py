"""``dicomtui edit``: set attributes of stored patients, studies, series or instances (issue 16), through the
core function the TUI's tag editor calls (:mod:`dicomtui.core.export.edit`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.text import printable
from .database_cmds import open_database, resolve_saying_missing
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, json_text, with_progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edit`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "edit", help="set attributes of stored items: a diff per level first (--dry-run: only the diff)",
        description="Set attributes of patients (by PatientID), studies, series or instances (by UID). Copied "
                    "files are rewritten atomically; linked files are never rewritten: the edited file is stored "
                    "as a copy in the database. A PatientID edit moves the studies to another patient (merged or "
                    "split, counted in the diff). UIDs change only with --as-new-series or --as-new-study; "
                    "--as-new-study with --set PatientID=... moves part of a study (a series filed under the "
                    "wrong patient) to another patient as a new study, the originals kept.")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="PATH=VALUE",
                   help="a keyword (PatientName=Doe^Jane), a tag ((0011,1010)=x) or a path into a sequence "
                        "((0010,1002)[0].PatientID=X); a private attribute no file holds yet takes its VR and its "
                        "creator: --set '(0011,0010)=CREATOR' --set '(0011,1001)LO=x' (the block is reserved in "
                        "each file as PS3.5 7.8.1 says); \\ separates multiple values; repeat for more")
    p.add_argument("--delete", action="append", default=[], metavar="PATH",
                   help="remove an attribute (keyword, tag or path as --set) from every file that holds it; "
                        "repeat for more")
    p.add_argument("--as-new-series", action="store_true",
                   help="write the edited files as a new series (new Series and SOP Instance UIDs); the "
                        "originals stay")
    p.add_argument("--as-new-study", action="store_true",
                   help="write the edited files as a new study (new Study, Series and SOP Instance UIDs, Orthanc's "
                        "study split), under the patient --set PatientID/PatientName names; the originals stay")
    p.add_argument("--uid-root", metavar="ROOT", help="the root of the new UIDs (default: pydicom's)")
    p.add_argument("--utf8", action="store_true",
                   help="change the Specific Character Set to ISO_IR 192 (UTF-8) where a new value needs it")
    p.add_argument("--dry-run", action="store_true", help="print the diff and write nothing")
    p.add_argument("--json", action="store_true", help="the plan (and the report) as JSON")
    p.set_defaults(handler=cmd_edit)


def cmd_edit(args: argparse.Namespace, db_path: Path) -> int:
    """Plan, print the diff, apply. Exit 2 for an unknown UID (none known), a bad --set or a value that fails
    its check (nothing written); 1 when some files could not be written or some UIDs are unknown."""
    from ..core.export.edit import apply_edit, plan_edit
    from ..core.export.tagpath import parse_assignment, parse_path
    from ..core.net.nodes import copy_floor

    settings = {}
    for text in args.settings:  # each checked here, so that a typing error is named before the database opens
        path, value = parse_assignment(text)
        settings[path.text] = value
    for text in args.delete:
        parse_path(text)  # checked before the database opens, as --set
    with open_database(db_path, create=False) as db:
        resolved = resolve_saying_missing(db, args.uids)
        if not resolved.items:
            return EXIT_FATAL
        plan = plan_edit(db, resolved.items, settings, as_new_series=args.as_new_series,
                         as_new_study=args.as_new_study, set_utf8=args.utf8, delete=args.delete)
        if args.json and (args.dry_run or plan.problems):
            print(json_text({"plan": plan.to_json()}))
        elif not args.json:
            for line in plan.diff():
                print(printable(line))
        if plan.problems:
            err("nothing written: " + " ".join(plan.problems))
            return EXIT_FATAL
        if args.dry_run:
            return EXIT_PARTIAL if resolved.missing else EXIT_OK
        floor = copy_floor("copy")  # the listener's free-space floor, as `import --copy` keeps
        report = with_progress(lambda progress: apply_edit(db, plan, uid_root=args.uid_root, progress=progress,
                                                           min_free=floor), "editing")
    if args.json:
        print(json_text({"plan": plan.to_json(), "report": report.__dict__}))
    else:
        print(printable(report.summary()))
        for line in report.errors:
            err(line)
    return EXIT_PARTIAL if (resolved.missing or report.errors) else EXIT_OK
