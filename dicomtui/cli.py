"""The headless face: ``dicomtui COMMAND``; with no command, the TUI.

Exit codes: 0 success, 1 partial (some files rejected, some items failed), 2 usage or fatal error.
``--json`` output is a stable contract (see README): keys are never renamed, only added.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from .config import RENDERERS

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomtui",
        description="A keyboard-driven DICOM workstation for the terminal. Without a command, starts the TUI.",
    )
    parser.add_argument("--db", metavar="PATH", help="database folder (default: from settings, else the user data dir)")
    parser.add_argument("--renderer", choices=RENDERERS,
                        help="how the TUI draws images (default: from settings, else detected)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("import", help="import files and folders (recursive, DICOMDIR-aware)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--copy", dest="mode", action="store_const", const="copy",
                      help="copy files into the database storage")
    mode.add_argument("--link", dest="mode", action="store_const", const="link",
                      help="record the files where they are (default)")
    p.add_argument("--workers", type=int, default=None, help="parser processes (default: one per core)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("ls", help="list patients, studies, series or instances")
    p.add_argument("level", choices=["patients", "studies", "series", "instances"])
    p.add_argument("--patient", metavar="ID", help="only this PatientID")
    p.add_argument("--study", metavar="UID", help="only this StudyInstanceUID")
    p.add_argument("--series", metavar="UID", help="only this SeriesInstanceUID")
    p.add_argument("--filter", metavar="TEXT", help="case-insensitive filter over the shown columns; * and ? wildcards")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("rm", help="delete patients (by PatientID), studies, series or instances (by UID)")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("examine", help="list the ways each series can be loaded, with warnings")
    p.add_argument("uids", nargs="+", metavar="SERIES_UID")
    p.add_argument("--split-by-time", action="store_true", help="also split sub-series by ContentTime/TriggerTime")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("load", help="load a series as a volume and write it as NIfTI or NRRD")
    p.add_argument("uid", metavar="SERIES_UID")
    p.add_argument("--loadable", type=int, metavar="N",
                   help="which loadable (number from `examine`; default: the selected one)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.nii, OUT.nii.gz or OUT.nrrd")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) when the loadable has warnings")
    p.add_argument("--regularize", action="store_true",
                   help="resample an unevenly spaced, gapped or tilted series onto a regular grid")
    p.add_argument("--split-by-time", action="store_true", help="also split sub-series by ContentTime/TriggerTime")

    p = sub.add_parser("show", help="the tags of one file of a study, series or instance (sequences, private tags)")
    p.add_argument("uid", metavar="UID", help="study, series or instance UID (or PatientID)")
    p.add_argument("--file", type=int, default=1, metavar="N", help="which file of the item (default 1: the first)")
    p.add_argument("--filter", metavar="TEXT", help="case-insensitive text in tag, keyword, VR or value "
                                                   "(re:REGEX for a regular expression); parent sequences stay")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")

    p = sub.add_parser("nodes", help="remote DICOM nodes (presets) and our own AE")
    nsub = p.add_subparsers(dest="nodes_command", metavar="ACTION", required=True)
    q = nsub.add_parser("ls", help="list the presets and our own AE")
    q.add_argument("--json", action="store_true")
    q = nsub.add_parser("add", help="add or replace a preset: NAME AE@HOST:PORT")
    q.add_argument("name")
    q.add_argument("address", metavar="AE@HOST:PORT")
    q.add_argument("--retrieve", choices=["move", "get"], default="move")
    q.add_argument("--charset", default="ISO_IR 192", help="SpecificCharacterSet for queries")
    q.add_argument("--timeout", type=float, default=30.0)
    q.add_argument("--tls", action="store_true", help="DICOM over TLS")
    q.add_argument("--tls-ca", default="", help="CA file that signed the peer's certificate")
    q.add_argument("--tls-cert", default="", help="our client certificate (PEM)")
    q.add_argument("--tls-key", default="", help="the key of our client certificate (PEM)")
    q.add_argument("--tls-no-verify", action="store_true", help="encrypt without checking the peer (testing)")
    q = nsub.add_parser("rm", help="remove a preset")
    q.add_argument("name")
    q = nsub.add_parser("local", help="set our own AE title, port, bind address, allowed callers")
    q.add_argument("--ae")
    q.add_argument("--port", type=int)
    q.add_argument("--bind")
    q.add_argument("--allow", nargs="*", metavar="AE", help="calling AE titles accepted (none: any)")
    q.add_argument("--tls-cert", help="listener certificate (PEM): the listener then speaks TLS only ('' to stop)")
    q.add_argument("--tls-key", help="its private key (PEM)")
    q.add_argument("--tls-ca", help="require callers' certificates signed by this CA ('' for none)")

    p = sub.add_parser("echo", help="C-ECHO a node (preset name or AE@HOST:PORT)")
    p.add_argument("node")

    p = sub.add_parser("send", help="C-STORE patients (PatientID), studies, series or instances to a node")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("--to", required=True, metavar="NODE")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("query", help="C-FIND a node (Study Root) at study, series or image level")
    p.add_argument("node")
    p.add_argument("--level", choices=["study", "series", "image"], default="study")
    p.add_argument("--name", default="", help="patient name (matched anywhere: *NAME*)")
    p.add_argument("--id", default="", dest="patient_id", help="PatientID")
    p.add_argument("--date", default="", help="study date or range: 20240131, 2024-01-01..2024-01-31, 20240101-")
    p.add_argument("--modality", default="", help="CT or CT,MR")
    p.add_argument("--accession", default="")
    p.add_argument("--description", default="")
    p.add_argument("--study", default="", help="StudyInstanceUID (series and image levels)")
    p.add_argument("--series", default="", help="SeriesInstanceUID (image level)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("retrieve", help="C-MOVE (to our listener) or C-GET studies/series from a node")
    p.add_argument("node")
    p.add_argument("uids", nargs="+", metavar="UID", help="study or series UIDs at the node")
    p.add_argument("--method", choices=["move", "get"], help="default: the node preset's (move)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", help="check a node step by step: network, echo, query, a move back to us")
    p.add_argument("node")

    p = sub.add_parser("listen", help="receive C-STORE into the database until SIGTERM/SIGINT")
    p.add_argument("--port", type=int, help="default: from `nodes local` (11112)")
    p.add_argument("--ae", help="our AE title (default: from `nodes local`, DICOMTUI)")
    p.add_argument("--bind", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--allow", nargs="*", metavar="AE", help="accept only these calling AE titles")

    p = sub.add_parser("db", help="database information and integrity")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = dbsub.add_parser("info", help="path, schema version, counts, disk use")
    q.add_argument("--json", action="store_true")
    q = dbsub.add_parser("check", help="find missing/changed files and unreferenced files in storage")
    q.add_argument("--repair", action="store_true", help="drop rows of missing files, re-index changed ones, "
                                                        "index unreferenced stored files")
    q.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .config import SettingsError, load_settings
    from .core.database import DatabaseError
    from .core.net.dimse import DimseError  # light: pynetdicom is imported only when a command talks DICOM
    from .core.net.nodes import NodeError

    try:
        settings = load_settings()
        db_path = Path(args.db).expanduser() if args.db else settings.database
        if args.command is None:
            return _run_tui(db_path, settings, args.renderer)
        handler = {"import": cmd_import, "ls": cmd_ls, "rm": cmd_rm, "db": cmd_db, "examine": cmd_examine,
                   "load": cmd_load, "nodes": cmd_nodes, "echo": cmd_echo, "send": cmd_send,
                   "listen": cmd_listen, "query": cmd_query, "retrieve": cmd_retrieve,
                   "doctor": cmd_doctor, "show": cmd_show}[args.command]
        if args.command == "import" and args.mode is None:
            args.mode = settings.import_mode
        if args.command in ("examine", "load"):
            args.split_by_time = args.split_by_time or settings.split_by_time
        if args.command == "load":
            args.regularize = args.regularize or settings.regularize
        return handler(args, db_path)
    except (DatabaseError, SettingsError) as exc:
        _err(str(exc))
        return EXIT_FATAL
    except (DimseError, NodeError) as exc:
        _err(str(exc))
        return EXIT_FATAL
    except sqlite3.OperationalError as exc:
        hint = " (another process has held the write lock for over a minute)" if "locked" in str(exc) else ""
        _err(f"database error: {exc}{hint}")
        return EXIT_FATAL
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_FATAL
    except BrokenPipeError:  # `dicomtui show UID | head`: the reader has what it wanted; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush is quiet too
        return EXIT_OK


def _open(db_path: Path, create: bool = True):
    from .core.database import DicomDatabase

    return DicomDatabase.open(db_path, create=create)


def _run_tui(db_path: Path, settings, renderer: str | None) -> int:
    from .tui.app import DicomTuiApp

    DicomTuiApp(db_path, settings, renderer).run()
    return EXIT_OK


# ---- import --------------------------------------------------------------------------------------------------

def cmd_import(args: argparse.Namespace, db_path: Path) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .core.indexer import ImportProgress, ImportReport, run_import

    console = _console(stderr=True)
    report: ImportReport | None = None
    with _open(db_path) as db:
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("[dim]{task.fields[path]}"),
            console=console, transient=True, disable=args.json or not console.is_terminal,
        )
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
                                    path=_shorten(event.path, 50))
    assert report is not None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, db_path)
    return EXIT_PARTIAL if report.rejected else EXIT_OK


def _print_report(report, db_path: Path) -> None:
    from rich.table import Table

    verb = "Copied" if report.mode == "copy" else "Linked"
    summary = (
        f"{verb} into {db_path}: {report.patients_added} patients, {report.studies_added} studies, "
        f"{report.series_added} series, {report.instances_added} instances added; {report.updated} updated, "
        f"{report.skipped_unchanged} unchanged (skipped), {len(report.rejected)} rejected — "
        f"{report.files_seen} files in {report.elapsed_s:.2f} s ({report.files_per_s:,.0f} files/s)"
        + (" (cancelled)" if report.cancelled else "")
    )
    groups = (("Rejected files", report.rejected, "red"), ("Warnings", report.warnings, "yellow"))
    if not sys.stdout.isatty():  # for logs and pipes: whole lines, never wrapped
        print(summary)
        for title, problems, _style in groups:
            if problems:
                print(f"{title} ({len(problems)}):")
            for p in problems:
                print(f"  {p.path}\t{p.reason}")
        return
    out = _console()
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

LS_COLUMNS = {
    "patients": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "num_studies", "last_study_date"],
    "studies": ["PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
                "modalities", "num_series", "num_instances", "StudyInstanceUID"],
    "series": ["SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined", "num_instances", "image_size",
               "SeriesDate", "SeriesInstanceUID"],
    "instances": ["InstanceNumber", "SOPInstanceUID", "SOPClassUID", "stored", "file_size", "TransferSyntaxUID",
                  "path"],
}


def cmd_ls(args: argparse.Namespace, db_path: Path) -> int:
    with _open(db_path, create=False) as db:
        rows = _ls_rows(db, args)
        if rows is None:
            return EXIT_FATAL
        columns = LS_COLUMNS[args.level]
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return EXIT_OK
        if not sys.stdout.isatty():  # for pipes: one tab-separated line per row, a header line first
            print("\t".join(columns))
            for row in rows:
                print("\t".join(_cell(col, row.get(col)) for col in columns))
            return EXIT_OK
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in columns:
            table.add_column(_heading(col), overflow="fold", min_width=min(len(_heading(col)), 12))
        for row in rows:
            table.add_row(*[_cell(col, row.get(col)) for col in columns])
        out = _console()
        out.print(table)
        out.print(f"[dim]{len(rows)} {args.level}[/]")
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
    _err(f"no {level} {uid} in the database")
    return None


def _heading(col: str) -> str:
    return {"num_studies": "studies", "num_series": "series", "num_instances": "instances",
            "last_study_date": "last study", "image_size": "size", "stored": "copied"}.get(col, col)


def _cell(col: str, value: Any) -> str:
    if value is None:
        return ""
    if col == "stored":
        return "copy" if value else "link"
    return str(value)


# ---- rm ------------------------------------------------------------------------------------------------------

def cmd_rm(args: argparse.Namespace, db_path: Path) -> int:
    with _open(db_path, create=False) as db:
        items: list[tuple[str, int]] = []
        missing = []
        for uid in args.uids:
            found = db.resolve(uid)
            if not found:
                missing.append(uid)
            items += found
        for uid in missing:
            _err(f"no patient, study, series or instance {uid} in the database")
        if not items:
            return EXIT_FATAL
        if not args.yes:
            summary = ", ".join(_describe(db, level, row_id, uid) for uid in args.uids if uid not in missing
                                for level, row_id in db.resolve(uid))
            if not sys.stdin.isatty():
                _err(f"would delete {summary}; pass --yes to confirm when not at a terminal")
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
            _err(e)
    return EXIT_PARTIAL if (missing or report.errors) else EXIT_OK


# ---- examine / load ------------------------------------------------------------------------------------------

def _examine(db, uids: list[str], split_by_time: bool = False):
    from .core.examine import examine_series

    ids = []
    for uid in uids:
        row = db.find("series", uid)
        if row is None:
            _err(f"no series {uid} in the database")
            return None
        ids.append(row["id"])
    return examine_series(db, ids, split_by_time=split_by_time)


def cmd_examine(args: argparse.Namespace, db_path: Path) -> int:
    with _open(db_path, create=False) as db:
        loadables = _examine(db, args.uids, args.split_by_time)
        if loadables is None:
            return EXIT_FATAL
    if args.json:
        print(json.dumps([dict(index=n, **item.to_dict()) for n, item in enumerate(loadables, 1)], indent=2))
        return EXIT_OK
    for n, item in enumerate(loadables, 1):
        mark = "*" if item.selected else " "
        print(f"{mark} {n:2d}  {item.name}  [{item.plugin}, confidence {item.confidence:.2f}, "
              f"{len(item.instances)} images]")
        for warning in item.warnings:
            print(f"        warning: {warning}")
    print("(* = loaded by default)")
    return EXIT_OK


def cmd_load(args: argparse.Namespace, db_path: Path) -> int:
    from .core import convert
    from .core.examine import load
    from .core.examine.scalar import LoadError
    from .core.pixels import PixelError

    try:
        convert.output_format(args.output)
    except convert.ConvertError as exc:
        _err(str(exc))
        return EXIT_FATAL
    with _open(db_path, create=False) as db:
        loadables = _examine(db, [args.uid], args.split_by_time)
        if loadables is None:
            return EXIT_FATAL
        if args.loadable is not None:
            if not 1 <= args.loadable <= len(loadables):
                _err(f"--loadable must be 1 to {len(loadables)} (see `dicomtui examine {args.uid}`)")
                return EXIT_FATAL
            chosen = loadables[args.loadable - 1]
        else:
            chosen = next(item for item in loadables if item.selected)
        for warning in chosen.warnings:
            _err(f"warning: {warning}")
        if chosen.warnings and args.strict:
            _err("not written (--strict and the loadable has warnings)")
            return EXIT_PARTIAL
        try:
            volume = _with_progress(lambda progress: load(db, chosen, progress, regularize=args.regularize),
                                    f"Loading {chosen.name}")
        except (LoadError, PixelError) as exc:
            _err(str(exc))
            return EXIT_FATAL
    try:
        written = convert.write(volume, args.output)
    except convert.ConvertError as exc:
        _err(str(exc))
        return EXIT_FATAL
    first = volume[0] if isinstance(volume, list) else volume
    k, j, i = first.array.shape
    count = f" × {len(volume)} volumes" if isinstance(volume, list) else ""
    print(f"wrote {', '.join(map(str, written))}: {i}x{j}x{k} voxels{count} of {first.array.dtype}, spacing "
          f"{' x '.join(f'{v:.4g}' for v in first.spacing)} mm ({chosen.name})")
    return EXIT_OK


def _with_progress(work, description: str):
    """Run ``work(progress)`` with a progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return work(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total: bar.update(task, completed=done, total=total))


# ---- show ----------------------------------------------------------------------------------------------------

SHOW_COLUMNS = ["depth", "tag", "keyword", "vr", "value", "creator"]


def cmd_show(args: argparse.Namespace, db_path: Path) -> int:
    from .core.metadata import MetadataError, filter_rows, tag_rows

    with _open(db_path, create=False) as db:
        found = db.resolve(args.uid)
        files = db.instance_files(found) if found else []
    if not files:
        _err(f"no patient, study, series or instance {args.uid} in the database")
        return EXIT_FATAL  # as rm, send and ls do for an unknown UID
    if not 1 <= args.file <= len(files):
        _err(f"--file must be 1 to {len(files)} ({args.uid} has {len(files)} files)")
        return EXIT_FATAL
    path = files[args.file - 1]["path"]
    try:
        rows = tag_rows(path)
        rows = filter_rows(rows, args.filter) if args.filter else rows
    except MetadataError as exc:
        _err(str(exc))
        return EXIT_PARTIAL
    except ValueError as exc:  # a bad --filter regular expression
        _err(str(exc))
        return EXIT_FATAL
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False))
    elif not sys.stdout.isatty():  # for pipes: one tab-separated line per row, a header line first
        print(f"{path} (file {args.file} of {len(files)})", file=sys.stderr)
        print("\t".join(SHOW_COLUMNS))
        for row in rows:
            print("\t".join(str(getattr(row, col)) for col in SHOW_COLUMNS))
    else:
        print(f"{path} (file {args.file} of {len(files)})")
        _print_tag_table(rows)
    return EXIT_OK


def _print_tag_table(rows) -> None:
    """Aligned columns for a terminal: the tag indented by depth (an item shows its name there), VR, name, value."""
    firsts = ["  " * r.depth + (r.keyword if r.is_item else r.tag) for r in rows]
    names = ["" if r.is_item else (f"{r.keyword} [{r.creator}]" if r.creator else r.keyword) for r in rows]
    w1 = max(map(len, firsts), default=0)
    w2 = max(map(len, names), default=0)
    for first, name, row in zip(firsts, names, rows):
        value = f"({row.value})" if row.is_item else row.value
        print(f"{first:<{w1}}  {row.vr:<2}  {name:<{w2}}  {value}".rstrip())


# ---- networking ----------------------------------------------------------------------------------------------

def cmd_nodes(args: argparse.Namespace, db_path: Path) -> int:
    from dataclasses import asdict

    from .core.net.nodes import RemoteNode, load_nodes, save_nodes, validate

    nodes = load_nodes()
    if args.nodes_command == "ls":
        if args.json:
            print(json.dumps({"local": asdict(nodes.local),
                              "nodes": [asdict(n) for n in nodes.remotes.values()]}, indent=2))
            return EXIT_OK
        local = nodes.local
        print(f"local  {local.ae_title} on {local.bind}:{local.port}"
              + (f", accepts only {', '.join(local.allow)}" if local.allow else ""))
        for node in nodes.remotes.values():
            print(f"{node.name}\t{node.address}\tretrieve={node.retrieve}\tcharset={node.charset}")
        return EXIT_OK
    if args.nodes_command == "add":
        parsed = nodes.resolve(args.address) if "@" in args.address else None
        if parsed is None:
            _err("the address must be written AE@HOST:PORT")
            return EXIT_FATAL
        node = RemoteNode(args.name, parsed.ae_title, parsed.host, parsed.port, retrieve=args.retrieve,
                          charset=args.charset, timeout=args.timeout,
                          tls=args.tls or bool(args.tls_ca or args.tls_cert), tls_ca=args.tls_ca,
                          tls_cert=args.tls_cert, tls_key=args.tls_key, tls_verify=not args.tls_no_verify)
        validate(node)
        nodes.remotes[args.name] = node
    elif args.nodes_command == "rm":
        if nodes.remotes.pop(args.name, None) is None:
            _err(f"no node {args.name}")
            return EXIT_FATAL
    elif args.nodes_command == "local":
        for key, value in (("ae_title", args.ae), ("port", args.port), ("bind", args.bind), ("allow", args.allow),
                           ("tls_cert", args.tls_cert), ("tls_key", args.tls_key), ("tls_ca", args.tls_ca)):
            if value is not None:
                setattr(nodes.local, key, value)
    print(f"saved {save_nodes(nodes)}")
    return EXIT_OK


def cmd_echo(args: argparse.Namespace, db_path: Path) -> int:
    from .core.net.dimse import echo
    from .core.net.nodes import load_nodes

    nodes = load_nodes()
    result = echo(nodes.resolve(args.node), nodes.local)
    print(result.message) if result.ok else _err(result.message)
    return EXIT_OK if result.ok else EXIT_FATAL


def cmd_send(args: argparse.Namespace, db_path: Path) -> int:
    from .core.net.dimse import send
    from .core.net.nodes import load_nodes

    nodes = load_nodes()
    node = nodes.resolve(args.to)
    with _open(db_path, create=False) as db:
        rows = _instances_of(db, args.uids)
        if rows is None:
            return EXIT_FATAL
    report = _with_progress(lambda progress: send(rows, node, nodes.local, progress),
                            f"Sending {len(rows)} instances to {node.address}")
    counts = report.counts
    if args.json:
        print(json.dumps({"node": report.node, "counts": counts, "error": report.error, "notes": report.notes,
                          "items": [{"sop_instance_uid": i.sop_instance_uid, "status": i.status,
                                     "meaning": i.meaning, "decompressed": i.decompressed}
                                    for i in report.items]}, indent=2))
    else:
        print(f"sent to {report.node}: {counts['success']} succeeded, {counts['warning']} with warnings, "
              f"{counts['failure']} failed")
        for item in report.items:
            if item.category != "success":
                print(f"  {item.category}\t{item.sop_instance_uid}\t{item.meaning}")
    for note in report.notes:
        _err(f"note: {note}")
    if report.error:
        _err(report.error)
    if counts["failure"] == len(report.items):
        return EXIT_FATAL
    return EXIT_PARTIAL if counts["failure"] or report.error else EXIT_OK


def cmd_query(args: argparse.Namespace, db_path: Path) -> int:
    from .core.net.dimse import RETURN_KEYS, QueryFilters, query
    from .core.net.nodes import load_nodes

    nodes = load_nodes()
    filters = QueryFilters(name=args.name, patient_id=args.patient_id, date=args.date, modality=args.modality,
                           accession=args.accession, description=args.description, study_uid=args.study,
                           series_uid=args.series)
    results = query(nodes.resolve(args.node), args.level, filters, nodes.local)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return EXIT_OK
    columns = RETURN_KEYS[args.level]
    print("\t".join(columns))
    for row in results:
        print("\t".join(row.get(c, "") for c in columns))
    print(f"{len(results)} {args.level} matches", file=sys.stderr)
    return EXIT_OK


def cmd_retrieve(args: argparse.Namespace, db_path: Path) -> int:
    from .core.net.dimse import retrieve
    from .core.net.nodes import load_nodes

    nodes = load_nodes()
    node = nodes.resolve(args.node)
    with _open(db_path) as db:
        report = _with_progress(lambda progress: retrieve(db, node, args.uids, args.method, nodes.local, progress),
                                f"Retrieving from {node.address}")
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        print(f"{report.method} from {report.node}: {report.completed} retrieved, {report.already_here} already "
              f"here, {report.failed} failed, {report.warning} with warnings (of {report.requested})")
    for error in report.errors:
        _err(error)
    if report.errors and not report.completed:
        return EXIT_FATAL
    return EXIT_PARTIAL if report.errors or report.failed else EXIT_OK


def cmd_doctor(args: argparse.Namespace, db_path: Path) -> int:
    from .core.net.dimse import doctor
    from .core.net.nodes import load_nodes

    nodes = load_nodes()
    node = nodes.resolve(args.node)
    with _open(db_path) as db:
        checks = doctor(db, node, nodes.local)
    print(f"{node.name} ({node.address}), from {nodes.local.ae_title} (listening on port {nodes.local.port}):")
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[check.ok]
        print(f"  {mark} {check.name:<11} {check.detail}")
    return EXIT_FATAL if any(c.ok is False for c in checks) else EXIT_OK


def _instances_of(db, uids: list[str]) -> list[dict[str, Any]] | None:
    """Instance files (absolute paths) of patients (by PatientID), studies, series or instances."""
    items: list[tuple[str, int]] = []
    for uid in uids:
        found = db.resolve(uid)
        if not found:
            _err(f"no patient, study, series or instance {uid} in the database")
            return None
        items += found
    return db.instance_files(items)


def cmd_listen(args: argparse.Namespace, db_path: Path) -> int:
    import logging
    import signal
    import threading

    from .core.net.listener import Listener
    from .core.net.nodes import load_nodes

    local = load_nodes().local
    local.port = args.port if args.port is not None else local.port
    local.ae_title = args.ae or local.ae_title
    local.bind = args.bind or local.bind
    local.allow = args.allow if args.allow is not None else local.allow
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _open(db_path).close()  # create the database here, before the listener's threads open it
    listener = Listener(db_path, local)
    try:
        listener.start()
    except OSError as exc:
        _err(f"cannot listen on {local.bind}:{local.port}: {exc.strerror or exc}")
        return EXIT_FATAL
    print(f"listening as {local.ae_title} on {local.bind}:{listener.port}; Ctrl-C or SIGTERM to stop", flush=True)
    stop.wait()
    listener.stop()
    print(f"stopped: {listener.indexed} instances received and indexed", flush=True)
    return EXIT_OK


def _describe(db, level: str, row_id: int, uid: str) -> str:
    """'patient SYN0001 (Doe^John)': a PatientID may name several patients, so say which."""
    if level == "patient":
        name = (db.get("patient", row_id) or {}).get("PatientName")
        return f"patient {uid} ({name or 'no name'})"
    return f"{level} {uid}"


# ---- db ------------------------------------------------------------------------------------------------------

def cmd_db(args: argparse.Namespace, db_path: Path) -> int:
    with _open(db_path, create=False) as db:
        if args.db_command == "info":
            info = db.stats()
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                print(f"database        {info['path']}\nschema version  {info['schema_version']}")
                print(f"patients        {info['patients']:,}\nstudies         {info['studies']:,}")
                print(f"series          {info['series']:,}\ninstances       {info['instances']:,}")
                print(f"  copied        {info['stored_instances']:,} ({_bytes(info['stored_bytes'])} in storage)")
                print(f"  linked        {info['linked_instances']:,} ({_bytes(info['linked_bytes'])} elsewhere)")
                print(f"index           {_bytes(info['index_bytes'])}")
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
            _err(e)
    if args.repair:
        return EXIT_PARTIAL if report.errors else EXIT_OK
    return EXIT_OK if report.ok else EXIT_PARTIAL


# ---- helpers -------------------------------------------------------------------------------------------------

def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _err(message: str) -> None:
    print(f"dicomtui: {message}", file=sys.stderr)


def _shorten(path: str, width: int) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


if __name__ == "__main__":
    sys.exit(main())
