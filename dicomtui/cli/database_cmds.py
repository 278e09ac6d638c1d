"""Commands on the local database: ``import``, ``ls``, ``rm``, ``db info``/``db check``, ``show``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import DicomtuiError
from ..core.levels import LS_COLUMNS, ImportMode, Level, column
from ..core.text import printable
from .output import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    console,
    err,
    human_bytes,
    json_text,
    print_rows,
    print_tag_table,
    print_tsv,
    progress_bar,
    shorten,
    stdout_is_terminal,
)

SHOW_COLUMNS = ["depth", "tag", "keyword", "vr", "value", "creator"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``import``, ``ls``, ``rm``, ``show`` and ``db`` to the sub-parsers ``sub``."""
    p = sub.add_parser("import", help="import files and folders (recursive, DICOMDIR-aware)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--copy", dest="mode", action="store_const", const=ImportMode.COPY,
                      help="copy files into the database storage")
    mode.add_argument("--link", dest="mode", action="store_const", const=ImportMode.LINK,
                      help="record the files where they are (default)")
    p.add_argument("--workers", type=int, default=None, help="parser processes (default: one per core)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_import, from_settings=_import_mode_from_settings)

    p = sub.add_parser("ls", help="list patients, studies, series or instances")
    p.add_argument("level", choices=[level.plural for level in Level])
    p.add_argument("--patient", metavar="ID", help="only this PatientID (or patient row id)")
    p.add_argument("--study", metavar="UID", help="only this StudyInstanceUID (a unique prefix or row id will do)")
    p.add_argument("--series", metavar="UID", help="only this SeriesInstanceUID (a unique prefix or row id will do)")
    p.add_argument("--filter", metavar="TEXT", help="case-insensitive words over the shown columns, each matched "
                                                   "anywhere; * any text, ? one character; =value an exact value")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the rows as JSON (with their row ids)")
    out.add_argument("--uids", action="store_true", help="only the UIDs (PatientIDs for patients), one a line")
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
    q = dbsub.add_parser("check", help="check the index (SQLite quick_check), find missing/changed files and "
                                        "unreferenced files in storage")
    q.add_argument("--repair", action="store_true", help="drop rows of missing files, re-index changed ones, "
                                                        "index unreferenced stored files; rebuild a damaged or "
                                                        "missing index from storage (the old one is kept aside)")
    q.add_argument("--full", action="store_true", help="SQLite's integrity_check (every index against its table; "
                                                      "slower) instead of quick_check")
    q.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_db)


def open_database(db_path: Path, create: bool = True, read_only: bool = False):
    """The database at ``db_path`` (created when missing and ``create``; only read with ``read_only``, which
    commands that never write use, so that a read-only folder can be listed); its notices (a network file system)
    go to stderr. Raises DatabaseError."""
    from ..core.database import DicomDatabase

    db = DicomDatabase.open(db_path, create=create and not read_only, read_only=read_only)
    for notice in db.notices:
        err(notice)
    return db


# ---- import --------------------------------------------------------------------------------------------------

def _import_mode_from_settings(args: argparse.Namespace, settings) -> None:
    if args.mode is None:
        args.mode = ImportMode(settings.import_mode)


def cmd_import(args: argparse.Namespace, db_path: Path) -> int:
    """Import files and folders with a progress bar; the report as text or JSON. Exit 1 when files were rejected
    or the import was cancelled (Ctrl-C: what was read before is kept and indexed; a second Ctrl-C stops at once).
    """
    from ..core.indexer import ImportProgress, ImportReport, run_import
    from ..core.net.nodes import copy_floor

    report: ImportReport | None = None
    cancel = threading.Event()
    with open_database(db_path) as db, _ctrl_c_cancels(cancel):
        progress = progress_bar(rate_and_path=True, disable=args.json)
        with progress:
            task = progress.add_task("Scanning…", total=None, rate="", path="")
            for event in run_import(db, args.paths, args.mode, workers=args.workers, cancel=cancel,
                                    min_free=copy_floor(args.mode)):
                if isinstance(event, ImportReport):
                    report = event
                elif isinstance(event, ImportProgress):
                    _show_import_progress(progress, task, event, cancel.is_set())
    assert report is not None
    if args.json:
        print(json_text(report.to_dict()))
    else:
        _print_import_report(report, db_path)
    return EXIT_PARTIAL if report.rejected or report.cancelled else EXIT_OK


def _show_import_progress(progress, task, event, cancelling: bool) -> None:
    """While the scan runs, "Scanning… N files" and no bar (its total still grows: a bar would run backwards);
    once every file is found, the bar, done/total, rate and time left. After a cancel: "Cancelling…"."""
    if event.phase == "scan":
        progress.update(task, description="Scanning…" + (f" {event.scanned:,} files" if event.scanned else ""),
                        total=None,
                        path=shorten(event.path, 50))
        return
    elapsed = progress.tasks[0].elapsed or 0
    rate = f"{event.done / elapsed:,.0f} files/s" if elapsed > 0 and event.done else ""
    progress.update(task, description="Cancelling…" if cancelling else "Importing",
                    completed=event.done, total=event.total or None, rate=rate, path=shorten(event.path, 50))


@contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """Inside the block, the first Ctrl-C (SIGINT) sets ``cancel`` (the import ends cleanly, with its summary);
    a second one interrupts at once. The previous handler is put back afterwards. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err("cancelling: finishing the files being read (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_import_report(report, db_path: Path) -> None:
    """The report's summary, then the rejected files and the warnings: whole lines for a pipe, tables on a
    terminal (at most 200 rows each; --json has them all)."""
    summary = report.summary(db_path)
    groups = (("Rejected files", report.rejected, "red"), ("Warnings", report.warnings, "yellow"))
    if not stdout_is_terminal():  # for logs and pipes: whole lines, never wrapped
        print(printable(summary, multiline=True))
        for title, problems, _style in groups:
            if problems:
                print(f"{title} ({len(problems)}):")
            for p in problems:
                print(f"  {printable(p.path)}\t{printable(p.reason)}")
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    out.print(printable(summary, multiline=True), markup=False)
    for title, problems, style in groups:
        if not problems:
            continue
        table = Table(title=f"{title} ({len(problems)})", title_style=style, show_lines=False)
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for p in problems[:200]:
            table.add_row(Text(printable(p.path)), Text(printable(p.reason)))
        out.print(table)
        if len(problems) > 200:
            out.print(f"… and {len(problems) - 200} more (use --json for all)")


# ---- ls ------------------------------------------------------------------------------------------------------

def cmd_ls(args: argparse.Namespace, db_path: Path) -> int:
    """Rows of one level, narrowed by --patient/--study/--series and --filter. Exit 2 for an unknown UID."""
    level = Level.parse(args.level)
    with open_database(db_path, read_only=True) as db:
        rows = _ls_rows(db, level, args)
        if rows is None:
            return EXIT_FATAL
        if args.json:
            print(json_text(rows))
            return EXIT_OK
        if args.uids:
            for row in rows:
                print(printable(str(row.get(level.uid_column) or "")))
            return EXIT_OK
        print_rows([column(level, k) for k in LS_COLUMNS[level]], rows, f"{len(rows)} {level.plural}")
    return EXIT_OK


def _ls_rows(db, level: Level, args) -> list[dict[str, Any]] | None:
    patient_ids = _ls_ids(db, Level.PATIENT, args.patient)
    study_ids = _ls_ids(db, Level.STUDY, args.study)
    series_ids = _ls_ids(db, Level.SERIES, args.series)
    if [] in (patient_ids, study_ids, series_ids):
        return None
    if level is Level.PATIENT:
        rows = db.patients(args.filter)
        if patient_ids is not None:
            rows = [r for r in rows if r["id"] in patient_ids]
    elif level is Level.STUDY:
        rows = db.studies(patient_ids, args.filter)
        if study_ids is not None:
            rows = [r for r in rows if r["id"] in study_ids]
    elif level is Level.SERIES:
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


def _ls_ids(db, level: Level, text: str | None) -> list[int] | None:
    """The row ids ``--patient``/``--study``/``--series`` names (a PatientID may name several patients): None
    for no restriction, [] (after saying so) when it names nothing. An ambiguous prefix raises SelectionError."""
    from ..core import selection

    if text is None:
        return None
    ids = [item.id for item in selection.resolve(db, [text], levels=[level]).items]
    if not ids:
        err(f"no {level} {text} in the database")
    return ids


# ---- rm ------------------------------------------------------------------------------------------------------

def cmd_rm(args: argparse.Namespace, db_path: Path) -> int:
    """Delete items after a confirmation (or --yes). Exit 1 when some UIDs are unknown or a file could not be
    deleted; 2 when none is known, or when not at a terminal and --yes is missing."""
    from ..core import selection

    with open_database(db_path, create=False) as db:
        resolved = resolve_saying_missing(db, args.uids)
        if not resolved.items:
            return EXIT_FATAL
        if not args.yes:
            summary = selection.describe_resolved(db, resolved)
            if not sys.stdin.isatty():
                err(f"would delete {summary}; pass --yes to confirm when not at a terminal")
                return EXIT_FATAL
            answer = input(f"Delete {summary}? Copied files are deleted, linked files are kept. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return EXIT_OK
        report = db.delete(resolved.items)
    if args.json:
        print(json_text(report.__dict__))
    else:
        print(printable(report.summary(), multiline=True))
        for e in report.errors:
            err(e)
    return EXIT_PARTIAL if (resolved.missing or report.errors) else EXIT_OK


def resolve_saying_missing(db, uids: list[str]):
    """:func:`selection.resolve` of ``uids``, each that names nothing said on stderr (``rm``, ``edit``)."""
    from ..core import selection

    resolved = selection.resolve(db, uids)
    for uid in resolved.missing:
        err(selection.missing_sentence(uid))
    return resolved


# ---- show ----------------------------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace, db_path: Path) -> int:
    """The tags of file N of an item. Exit 1 for an unreadable file, 2 for an unknown UID, --file or --filter."""
    from ..core import selection
    from ..core.errors import MetadataError
    from ..core.metadata import filter_rows, tag_rows

    with open_database(db_path, read_only=True) as db:
        files = selection.instance_files(db, selection.resolve(db, [args.uid]).items)
    if not files:
        err(selection.missing_sentence(args.uid))
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
        print(json_text([row.to_dict() for row in rows], ensure_ascii=False))
    elif not stdout_is_terminal():  # for pipes: one tab-separated line per row, a header line first
        print(f"{printable(path)} (file {args.file} of {len(files)})", file=sys.stderr)
        print_tsv(SHOW_COLUMNS, ([str(getattr(row, col)) for col in SHOW_COLUMNS] for row in rows))
    else:
        print(f"{printable(path)} (file {args.file} of {len(files)})")
        print_tag_table(rows)
    return EXIT_OK


# ---- db ------------------------------------------------------------------------------------------------------

def cmd_db(args: argparse.Namespace, db_path: Path) -> int:
    """``db info`` (counts, disk use) or ``db check [--repair] [--full]``. Exit 1 when the check finds problems
    (without --repair) or the repair meets errors. A check ends with a line of counts and its exit code."""
    if args.db_command == "check" and args.repair:
        from ..core.database import DicomDatabase
        from ..core.errors import DatabaseError
        from ..core.net.identity import running

        if listeners := running(db_path):  # it writes the index and storage while a repair rebuilds them
            who = ", ".join(f"pid {x.get('pid', '?')} on port {x.get('port', '?')}" for x in listeners)
            raise DatabaseError(f"a listener is serving {db_path} ({who}): stop it before `db check --repair` "
                                f"(`db check` without --repair is safe while it runs)")
        report = DicomDatabase.repair(db_path, full=args.full)
    else:
        with open_database(db_path, read_only=True) as db:
            if args.db_command == "info":
                return _print_info(db.stats(), args.json)
            report = db.check(full=args.full)
    problems = report.errors if args.repair else not report.ok
    code = EXIT_PARTIAL if problems else EXIT_OK
    if args.json:
        print(json_text(report.__dict__))
        return code
    if summary := report.summary():
        print(printable(summary, multiline=True))
    for e in report.errors:
        err(e)
    print(_check_counts(db_path, report, code))
    return code


def _check_counts(db_path: Path, report, code: int) -> str:
    """The last line of ``db check``: what was compared, what was found, and the exit code it gives."""
    try:
        with open_database(db_path, read_only=True) as db:
            totals = db.totals()
        checked = f"checked {totals['instances']:,} instances in {totals['series']:,} series"
    except DicomtuiError:  # a damaged index that no repair rebuilt: its rows could not be counted
        checked = "checked the index (its rows could not be counted)"
    found = (f"{len(report.missing)} missing, {len(report.changed)} changed, {len(report.orphans)} unreferenced in "
             f"storage, {len(report.stale_temp)} stale temp files"
             + (f", {len(report.damage)} problems in the index file" if report.damage else "")
             + (f", {len(report.errors)} errors" if report.errors else ""))
    verdict = "OK" if code == EXIT_OK else "errors in the repair" if report.errors else "problems found"
    return f"{checked}: {found} — {verdict} (exit {code})"


def _print_info(info: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json_text(info))
        return EXIT_OK
    print(f"database        {printable(info['path'])}\nschema version  {info['schema_version']}")
    print(f"patients        {info['patients']:,}\nstudies         {info['studies']:,}")
    print(f"series          {info['series']:,}\ninstances       {info['instances']:,}")
    print(f"  copied        {info['stored_instances']:,} ({human_bytes(info['stored_bytes'])} in storage)")
    print(f"  linked        {info['linked_instances']:,} ({human_bytes(info['linked_bytes'])} elsewhere)")
    print(f"index           {human_bytes(info['index_bytes'])}")
    return EXIT_OK
