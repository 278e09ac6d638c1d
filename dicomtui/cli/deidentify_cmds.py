"""``dicomtui deidentify UID… -o DIR`` and ``dicomtui export … --deidentify``: an export through the core's
:class:`dicomtui.core.export.deidentify.Deidentifier` (PS3.15 Basic Profile with options), the pseudonym mapping
kept in the database folder, files with burned-in annotation refused unless ``--accept-burned-in``.
``dicomtui reidentify UID… -o DIR | --into-db``: the way back for the user's own data, through that mapping
(:class:`dicomtui.core.export.reidentify.Reidentifier`)."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from .database_cmds import open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, with_progress

__all__ = ["add_deidentify_options", "cmd_deidentify", "cmd_reidentify", "deidentifier_of", "register",
           "run_deidentified_export"]

OPTION_NAMES = ("modified-dates", "patient-characteristics", "device-identity", "safe-private", "clean-descriptors",
                "retain-uids")  # core.export.deidentify.PROFILE_OPTIONS's keys (imported lazily)


def add_deidentify_options(p: argparse.ArgumentParser) -> None:
    """The options of a de-identified export, shared by ``export --deidentify`` and ``deidentify``."""
    p.add_argument("--profile-option", action="append", choices=OPTION_NAMES, default=[], metavar="OPTION",
                   help="a PS3.15 Basic Profile option (repeatable): " + ", ".join(OPTION_NAMES))
    p.add_argument("--accept-burned-in", action="store_true",
                   help="export files that may show identity in their pixels (BurnedInAnnotation YES, or US, DX "
                        "and secondary capture without it); without it they are left out and listed")


def deidentifier_of(args: argparse.Namespace, db_path: Path):
    """The de-identifier of ``args`` (``--profile-option``, ``--accept-burned-in``) with the mapping of the
    database folder ``db_path``. Raises MappingError."""
    from ..core.export.deid_mapping import database_mapping
    from ..core.export.deidentify import Deidentifier, DeidOptions

    return Deidentifier(DeidOptions.from_names(args.profile_option, args.accept_burned_in),
                        database_mapping(db_path))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deidentify", help="export patients, studies, series or instances de-identified (PS3.15 "
                                          "Basic Profile) to a folder")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("-o", "--output", metavar="DIR", help="the folder to write into")
    p.add_argument("--preview", action="store_true",
                   help="write nothing: show what would change in the first file of the items")
    p.add_argument("--into-db", action="store_true",
                   help="also import the de-identified copies into the database (a new patient); with no "
                        "--output they are written to a temporary folder first")
    p.add_argument("--send", metavar="NODE", help="also send the de-identified copies to NODE (C-STORE); with no "
                                                  "--output they are written to a temporary folder first")
    p.add_argument("--overwrite", action="store_true", help="replace files that exist")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    add_deidentify_options(p)
    p.set_defaults(handler=cmd_deidentify, layout="tree", dicomdir=False, zip=False)

    p = sub.add_parser("reidentify", help="turn de-identified patients, studies, series or instances of the "
                                          "database back into the originals (the database's mapping), to a folder")
    p.add_argument("uids", nargs="+", metavar="UID", help="UIDs or pseudonyms (PatientID) of de-identified data")
    p.add_argument("-o", "--output", metavar="DIR", help="the folder to write into")
    p.add_argument("--into-db", action="store_true", help="import the re-identified copies into the database; "
                                                          "with no --output they are written to a temporary "
                                                          "folder first")
    p.add_argument("--overwrite", action="store_true", help="replace files that exist")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.set_defaults(handler=cmd_reidentify)


def cmd_deidentify(args: argparse.Namespace, db_path: Path) -> int:
    """De-identify the items into ``args.output`` (and/or the database), or preview one file; exit codes as
    ``export``'s."""
    if args.preview:
        return _preview(args, db_path)
    if not (args.output or args.into_db or args.send):
        err("say where the de-identified files go: -o DIR, --into-db, --send NODE (or --preview to see the "
            "changes)")
        return EXIT_FATAL
    return _into_output(args, db_path, _then, "dicomtui-deid-")


def _into_output(args: argparse.Namespace, db_path: Path, job: Callable[[argparse.Namespace, Path], int],
                 prefix: str) -> int:
    """``job`` writing into ``-o DIR``, or into a temporary folder (removed after) when only --into-db/--send
    was asked."""
    if args.output:
        return job(args, db_path)
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        args.output = str(Path(folder) / "out")
        return job(args, db_path)


def _then(args: argparse.Namespace, db_path: Path) -> int:
    """The export, then the import into the database and the send asked for (not after a fatal export)."""
    names: list[str] = []
    code = run_deidentified_export(args, db_path, names)
    if code != EXIT_FATAL and args.into_db:
        code = max(code, _import(Path(args.output), db_path, err if args.json else print))
    if code != EXIT_FATAL and args.send:
        code = max(code, _send(Path(args.output), names, args.send, err if args.json else print))
    return code


def _send(folder: Path, names: list[str], to: str, say: Callable[[str], None]) -> int:
    from ..core.export.deidentify import written_instances
    from ..core.net.nodes import load_nodes
    from ..core.net.send import send

    nodes = load_nodes()
    node = nodes.resolve(to)
    rows = written_instances(folder, names)
    report = with_progress(lambda progress: send(rows, node, nodes.local, progress),
                           f"Sending {len(rows)} de-identified instances to {node.address}")
    say(report.summary())
    for problem in report.problems():
        err(problem)
    if report.counts["failure"] == len(report.items):
        return EXIT_FATAL
    return EXIT_PARTIAL if report.counts["failure"] or report.error else EXIT_OK


def _import(folder: Path, db_path: Path, say: Callable[[str], None], what: str = "de-identified") -> int:
    from ..core.indexer import import_paths
    from ..core.levels import ImportMode
    from ..core.net.nodes import copy_floor

    with open_database(db_path, create=False) as db:  # the listener's free-space floor, as `import --copy` keeps
        report = import_paths(db, [folder], ImportMode.COPY, min_free=copy_floor("copy"))
    say(f"imported {report.instances_added} {what} files into the database"
        + (f"; {report.updated} replaced the instances of the same SOP Instance UID there" if report.updated else "")
        + (f"; {report.skipped_unchanged} were there already" if report.skipped_unchanged else "")
        + report._stopped())
    return EXIT_PARTIAL if report.rejected else EXIT_OK


def _preview(args: argparse.Namespace, db_path: Path) -> int:
    from ..core.export import plan_export
    from ..core.export.deid_mapping import database_mapping
    from ..core.export.deid_preview import preview_file
    from ..core.export.deidentify import DeidOptions
    from .export_cmds import resolved_items

    with open_database(db_path, create=False, read_only=True) as db:
        items = resolved_items(db, args.uids)
        if items is None:
            return EXIT_FATAL
        plan = plan_export(db, items[:1])
    if not plan:
        err("the items hold no instance to preview")
        return EXIT_FATAL
    changes, refused = preview_file(plan[0].source, DeidOptions.from_names(args.profile_option),
                                    database_mapping(db_path))
    print(f"{plan[0].sop_instance_uid} ({len(changes)} changes):")
    print("\n".join(change.line() for change in changes))
    if refused and not args.accept_burned_in:
        print("note: this file may show identity in its pixels (burned-in annotation); it would be left out "
              "without --accept-burned-in")
    return EXIT_OK


def run_deidentified_export(args: argparse.Namespace, db_path: Path, names: list[str] | None = None) -> int:
    """The export of ``args`` (``export``'s or ``deidentify``'s) through the de-identifier; the mapping is saved
    in the database folder after the export (also when cancelled: the files written use it). The names of the
    files written are added to ``names``."""
    from ..core.export import ExportOptions
    from ..core.export.deidentify import export_deidentified
    from .export_cmds import report_json, run_export

    if args.dicomdir and "modified-dates" not in args.profile_option:
        err("a DICOMDIR needs each study's StudyDate and StudyTime (PS3.3 F.5) and the Basic Profile empties them: "
            "add --profile-option modified-dates (dates moved, times kept), or export without --dicomdir")
        return EXIT_FATAL
    deid = deidentifier_of(args, db_path)
    options = ExportOptions(layout=args.layout, dicomdir=args.dicomdir, zip=args.zip, overwrite=args.overwrite,
                            transform=deid)
    report = run_export(db_path, args.uids, export_deidentified, args.output, options, "De-identifying")
    if report is None:
        return EXIT_FATAL
    if names is not None:
        names += report.names
    if deid.refused:
        report.notes.append(f"{len(deid.refused)} files may show identity in their pixels (burned-in annotation) "
                            f"and were left out; export them with --accept-burned-in after checking them: "
                            + ", ".join(deid.refused))
    if args.json:
        print(json.dumps(report_json(report) | {"refused_burned_in": deid.refused}, indent=2))
    else:
        print(report.summary())
    if report.total and not report.written:
        return EXIT_FATAL
    return EXIT_PARTIAL if report.problems or report.cancelled or deid.refused else EXIT_OK


def cmd_reidentify(args: argparse.Namespace, db_path: Path) -> int:
    """Re-identify the items into ``args.output`` and/or the database. Exit 2 when the database has no mapping or
    nothing was written, 1 when some files were refused (no entry for their pseudonym) or not written."""
    from ..core.export.deid_mapping import JSON_MAPPING_NAME, MAPPING_NAME

    if not (args.output or args.into_db):
        err("say where the re-identified files go: -o DIR or --into-db")
        return EXIT_FATAL
    if not any((Path(db_path) / name).exists() for name in (MAPPING_NAME, JSON_MAPPING_NAME)):
        err(f"{db_path} has no de-identification mapping ({MAPPING_NAME}): only data de-identified from this "
            f"database can be re-identified")
        return EXIT_FATAL
    return _into_output(args, db_path, _reidentify, "dicomtui-reid-")


def _reidentify(args: argparse.Namespace, db_path: Path) -> int:
    from ..core.export import ExportOptions, export_items
    from ..core.export.deid_mapping import database_mapping
    from ..core.export.reidentify import Reidentifier
    from .export_cmds import report_json, run_export

    reid = Reidentifier(database_mapping(db_path))
    options = ExportOptions(layout="tree", overwrite=args.overwrite, transform=reid)
    report = run_export(db_path, args.uids, export_items, args.output, options, "Re-identifying")
    if report is None:
        return EXIT_FATAL
    if reid.refused:
        report.notes.append(f"{len(reid.refused)} files were not re-identified: {reid.refused[0][1]}"
                            + (" (and others)" if len({r for _, r in reid.refused}) > 1 else "")
                            + "; they were de-identified elsewhere or with another database: "
                            + ", ".join(uid for uid, _ in reid.refused))
    if reid.kept_uids:
        report.notes.append(f"{reid.kept_uids} UIDs are not in the mapping and were kept (objects made after the "
                            f"de-identification have their own)")
    if args.json:
        print(json.dumps(report_json(report) | {"refused": [{"sop_instance_uid": u, "reason": r}
                                                            for u, r in reid.refused],
                                                "kept_uids": reid.kept_uids}, indent=2))
    else:
        print(report.summary())
    if report.total and not report.written:
        return EXIT_FATAL
    code = EXIT_PARTIAL if report.problems or report.cancelled or reid.refused else EXIT_OK
    if args.into_db:
        code = max(code, _import(Path(args.output), db_path, err if args.json else print, "re-identified"))
    return code
