"""Commands on the local database: ``import``, ``ls``, ``rm``, ``db info``/``db check``, ``show``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .output import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    console,
    err,
    human_bytes,
    print_rows,
    print_tag_table,
    print_tsv,
    progress_bar,
    shorten,
    stdout_is_terminal,
)

LS_COLUMNS = {
    "patients": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"],
    "studies": ["PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
                "modalities", "num_series", "num_instances", "StudyInstanceUID"],
    "series": ["SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances", "image_size",
               "SeriesDate", "SeriesInstanceUID"],
    "instances": ["InstanceNumber", "SOPInstanceUID", "SOPClassUID", "stored", "file_size", "TransferSyntaxUID",
                  "path"],
}

SHOW_COLUMNS = ["depth", "tag", "keyword", "vr", "value", "creator"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``import``, ``ls``, ``rm``, ``show`` and ``db`` to the sub-parsers ``sub``."""
    p = sub.add_parser("import", help="import files and folders (recursive, DICOMDIR-aware)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--copy", dest="mode", action="store_const", const="copy",
                      help="copy files into the database storage")
    mode.add_argument("--link", dest="mode", action="store_const", const="link",
                      help="record the files where they are (default)")
    p.add_argument("--workers", type=int, default=None, help="parser processes (default: one per core)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_import, from_settings=_import_mode_from_settings)

    p = sub.add_parser("ls", help="list patients, studies, series or instances")
    p.add_argument("level", choices=["patients", "studies", "series", "instances"])
    p.add_argument("--patient", metavar="ID", help="only this PatientID")
    p.add_argument("--study", metavar="UID", help="only this StudyInstanceUID")
    p.add_argument("--series", metavar="UID", help="only this SeriesInstanceUID")
    p.add_argument("--filter", metavar="TEXT", help="case-insensitive filter over the shown columns; * and ? wildcards")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ls)

    p = sub.add_parser("rm", help="delete patients (by PatientID), studies, series or instances (by UID)")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_rm)

    p = sub.add_parser("show", help="the tags of one file of a study, series or instance (sequences, private tags)")
    p.add_argument("uid", metavar="UID", help="study, series or instance UID (or PatientID)")
    p.add_argument("--file", type=int, default=1, metavar="N", help="which file of the item (default 1: the first)")
    p.add_argument("--filter", metavar="TEXT", help="case-insensitive text in tag, keyword, VR or value "
                                                   "(re:REGEX for a regular expression); parent sequences stay")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("db", help="database information and integrity")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = dbsub.add_parser("info", help="path, schema version, counts, disk use")
    q.add_argument("--json", action="store_true")
    q = dbsub.add_parser("check", help="find missing/changed files and unreferenced files in storage")
    q.add_argument("--repair", action="store_true", help="drop rows of missing files, re-index changed ones, "
                                                        "index unreferenced stored files")
    q.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_db)


def open_database(db_path: Path, create: bool = True):
    """The database at ``db_path`` (created when missing and ``create``); raises DatabaseError."""
    from ..core.database import DicomDatabase

    return DicomDatabase.open(db_path, create=create)


# ---- import --------------------------------------------------------------------------------------------------

def _import_mode_from_settings(args: argparse.Namespace, settings) -> None:
    if args.mode is None:
        args.mode = settings.import_mode


def cmd_import(args: argparse.Namespace, db_path: Path) -> int:
    """Import files and folders with a progress bar; the report as text or JSON. Exit 1 when files were rejected."""
    from ..core.indexer import ImportProgress, ImportReport, run_import

    report: ImportReport | None = None
    with open_database(db_path) as db:
        progress = progress_bar(rate_and_path=True, disable=args.json)
        with progress:
            task = progress.add_task("Scanning", total=None, rate="", path="")
            for event in run_import(db, args.paths, args.mode, workers=args.workers):
                if isinstance(event, ImportReport):
                    report = event
                elif isinstance(event, ImportProgress):
                    elapsed = progress.tasks[0].elapsed or 0
                    rate = f"{event.done / elapsed:,.0f} files/s" if elapsed > 0 and event.done else ""
                    label = "Importing" if event.phase == "import" else f"Scanning ({event.scanned:,} files)"
                    progress.update(task, description=label,
                                    completed=event.done, total=event.total or None, rate=rate,
                                    path=shorten(event.path, 50))
    assert report is not None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_import_report(report, db_path)
    return EXIT_PARTIAL if report.rejected else EXIT_OK


def _print_import_report(report, db_path: Path) -> None:
    verb = "Copied" if report.mode == "copy" else "Linked"
    summary = (
        f"{verb} into {db_path}: {report.patients_added} patients, {report.studies_added} studies, "
        f"{report.series_added} series, {report.instances_added} instances added; {report.updated} updated, "
        f"{report.skipped_unchanged} unchanged (skipped), {len(report.rejected)} rejected — "
        f"{report.files_seen} files in {report.elapsed_s:.2f} s ({report.files_per_s:,.0f} files/s)"
        + (" (cancelled)" if report.cancelled else "")
    )
    groups = (("Rejected files", report.rejected, "red"), ("Warnings", report.warnings, "yellow"))
    if not stdout_is_terminal():  # for logs and pipes: whole lines, never wrapped
        print(summary)
        for title, problems, _style in groups:
            if problems:
                print(f"{title} ({len(problems)}):")
            for p in problems:
                print(f"  {p.path}\t{p.reason}")
        return
    from rich.table import Table

    out = console()
    out.print(summary, markup=False)
    for title, problems, style in groups:
        if not problems:
            continue
        table = Table(title=f"{title} ({len(problems)})", title_style=style, show_lines=False)
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for p in problems[:200]:
            table.add_row(p.path, p.reason)
        out.print(table)
        if len(problems) > 200:
            out.print(f"… and {len(problems) - 200} more (use --json for all)")


# ---- ls ------------------------------------------------------------------------------------------------------

def cmd_ls(args: argparse.Namespace, db_path: Path) -> int:
    """Rows of one level, narrowed by --patient/--study/--series and --filter. Exit 2 for an unknown UID."""
    with open_database(db_path, create=False) as db:
        rows = _ls_rows(db, args)
        if rows is None:
            return EXIT_FATAL
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return EXIT_OK
        print_rows(LS_COLUMNS[args.level], rows, f"{len(rows)} {args.level}")
    return EXIT_OK


def _ls_rows(db, args) -> list[dict[str, Any]] | None:
    patient_ids = study_ids = series_ids = None
    if args.patient is not None:
        patient_ids = [r["id"] for r in db.patients() if r["PatientID"] == args.patient]
        if not patient_ids:
            return _not_found("patient", args.patient)
    if args.study is not None:
        row = db.find("study", args.study)
        if row is None:
            return _not_found("study", args.study)
        study_ids = [row["id"]]
    if args.series is not None:
        row = db.find("series", args.series)
        if row is None:
            return _not_found("series", args.series)
        series_ids = [row["id"]]
    if args.level == "patients":
        rows = db.patients(args.filter)
        if patient_ids is not None:
            rows = [r for r in rows if r["id"] in patient_ids]
    elif args.level == "studies":
        rows = db.studies(patient_ids, args.filter)
        if study_ids is not None:
            rows = [r for r in rows if r["id"] in study_ids]
    elif args.level == "series":
        if study_ids is None and patient_ids is not None:
            study_ids = [s["id"] for s in db.studies(patient_ids)]
        rows = db.series(study_ids, args.filter)
        if series_ids is not None:
            rows = [r for r in rows if r["id"] in series_ids]
    else:
        if series_ids is None and (study_ids is not None or patient_ids is not None):
            if study_ids is None:
                study_ids = [s["id"] for s in db.studies(patient_ids)]
            series_ids = [s["id"] for s in db.series(study_ids)]
        rows = db.instances(series_ids, args.filter)
        for r in rows:
            r["path"] = str(db.abspath(r["path"], bool(r["stored"])))
    return rows


def _not_found(level: str, uid: str) -> None:
    err(f"no {level} {uid} in the database")
    return None


# ---- rm ------------------------------------------------------------------------------------------------------

def cmd_rm(args: argparse.Namespace, db_path: Path) -> int:
    """Delete items after a confirmation (or --yes). Exit 1 when some UIDs are unknown or a file could not be
    deleted; 2 when none is known, or when not at a terminal and --yes is missing."""
    with open_database(db_path, create=False) as db:
        items: list[tuple[str, int]] = []
        missing = []
        for uid in args.uids:
            found = db.resolve(uid)
            if not found:
                missing.append(uid)
            items += found
        for uid in missing:
            err(f"no patient, study, series or instance {uid} in the database")
        if not items:
            return EXIT_FATAL
        if not args.yes:
            summary = ", ".join(_describe(db, level, row_id, uid) for uid in args.uids if uid not in missing
                                for level, row_id in db.resolve(uid))
            if not sys.stdin.isatty():
                err(f"would delete {summary}; pass --yes to confirm when not at a terminal")
                return EXIT_FATAL
            answer = input(f"Delete {summary}? Copied files are deleted, linked files are kept. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return EXIT_OK
        report = db.delete(items)
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        print(f"Deleted {report.patients} patients, {report.studies} studies, {report.series} series, "
              f"{report.instances} instances; {report.files_deleted} copied files deleted, "
              f"{report.files_kept} linked files kept.")
        for e in report.errors:
            err(e)
    return EXIT_PARTIAL if (missing or report.errors) else EXIT_OK


def _describe(db, level: str, row_id: int, uid: str) -> str:
    """'patient SYN0001 (Doe^John)': a PatientID may name several patients, so say which."""
    if level == "patient":
        name = (db.get("patient", row_id) or {}).get("PatientName")
        return f"patient {uid} ({name or 'no name'})"
    return f"{level} {uid}"


# ---- show ----------------------------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace, db_path: Path) -> int:
    """The tags of file N of an item. Exit 1 for an unreadable file, 2 for an unknown UID, --file or --filter."""
    from ..core.metadata import MetadataError, filter_rows, tag_rows

    with open_database(db_path, create=False) as db:
        found = db.resolve(args.uid)
        files = db.instance_files(found) if found else []
    if not files:
        err(f"no patient, study, series or instance {args.uid} in the database")
        return EXIT_FATAL  # as rm, send and ls do for an unknown UID
    if not 1 <= args.file <= len(files):
        err(f"--file must be 1 to {len(files)} ({args.uid} has {len(files)} files)")
        return EXIT_FATAL
    path = files[args.file - 1]["path"]
    try:
        rows = tag_rows(path)
        rows = filter_rows(rows, args.filter) if args.filter else rows
    except MetadataError as exc:  # an unreadable file is a partial result (exit 1), not a usage error
        err(str(exc))
        return EXIT_PARTIAL
    except ValueError as exc:  # a bad --filter regular expression
        err(str(exc))
        return EXIT_FATAL
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False))
    elif not stdout_is_terminal():  # for pipes: one tab-separated line per row, a header line first
        print(f"{path} (file {args.file} of {len(files)})", file=sys.stderr)
        print_tsv(SHOW_COLUMNS, ([str(getattr(row, col)) for col in SHOW_COLUMNS] for row in rows))
    else:
        print(f"{path} (file {args.file} of {len(files)})")
        print_tag_table(rows)
    return EXIT_OK


# ---- db ------------------------------------------------------------------------------------------------------

def cmd_db(args: argparse.Namespace, db_path: Path) -> int:
    """``db info`` (counts, disk use) or ``db check [--repair]``. Exit 1 when the check finds problems (without
    --repair) or the repair meets errors."""
    with open_database(db_path, create=False) as db:
        if args.db_command == "info":
            info = db.stats()
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                print(f"database        {info['path']}\nschema version  {info['schema_version']}")
                print(f"patients        {info['patients']:,}\nstudies         {info['studies']:,}")
                print(f"series          {info['series']:,}\ninstances       {info['instances']:,}")
                print(f"  copied        {info['stored_instances']:,} ({human_bytes(info['stored_bytes'])} in storage)")
                print(f"  linked        {info['linked_instances']:,} ({human_bytes(info['linked_bytes'])} elsewhere)")
                print(f"index           {human_bytes(info['index_bytes'])}")
            return EXIT_OK
        report = db.check(repair=args.repair)
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        for label, items in (("missing file", report.missing), ("changed file", report.changed),
                             ("unreferenced file in storage", report.orphans),
                             ("stale temporary file", report.stale_temp)):
            for item in items:
                print(f"{label}: {item}")
        if report.ok and not report.stale_temp:
            print("OK: every row has its file, unchanged, and storage holds nothing unreferenced.")
        if args.repair:
            print(f"Repaired: {report.dropped} rows dropped, {report.reindexed} re-indexed, "
                  f"{report.indexed_orphans} stored files indexed.")
        for e in report.errors:
            err(e)
    if args.repair:
        return EXIT_PARTIAL if report.errors else EXIT_OK
    return EXIT_OK if report.ok else EXIT_PARTIAL
