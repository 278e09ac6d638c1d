"""The headless workstation (issue 20): ``service install|uninstall`` (a systemd unit for ``listen``), ``status``,
and ``db prune`` (added to the ``db`` command of :mod:`.database_cmds`)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

from ..core.plural import counted
from ..core.text import printable
from .database_cmds import open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, human_bytes, json_text

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` (a bare number: seconds) in seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d, 12h, 90m or 2w")
    return float(match[1]) * _SECONDS[match[2].lower()]


def size(text: str) -> int:
    """``500G``, ``1.5T``, ``200M``, ``800MiB`` (binary units: G = GiB, as ``db info`` prints) in bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500G, 1.5T or 200M")
    return int(float(match[1]) * _BYTES[match[2].lower()])


def listen_log_options(p: argparse.ArgumentParser) -> None:
    """``--log-file``, ``--log-max-size``, ``--log-keep``, ``--log-format`` (listen, and service install)."""
    p.add_argument("--log-file", type=Path, metavar="PATH", help="log to this file (rotated by size) instead of "
                                                                 "stderr")
    p.add_argument("--log-max-size", type=size, default=10 << 20, metavar="SIZE",
                   help="rotate the log file when it would pass SIZE (default 10M; 0: never)")
    p.add_argument("--log-keep", type=int, default=5, metavar="N", help="old log files kept (PATH.1 … PATH.N; "
                                                                        "default 5)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="text lines (default) or JSON Lines: one object per association and per forward")


def _log_argv(args: argparse.Namespace) -> list[str]:
    """The log options of ``service install`` as ``listen`` options (the log file's path absolute; sizes exact)."""
    argv = ["--log-format", args.log_format] if args.log_format != "text" else []
    if args.log_file is not None:
        argv += ["--log-file", str(args.log_file.expanduser().absolute()), "--log-max-size",
                 f"{args.log_max_size}B", "--log-keep", str(args.log_keep)]
    return argv


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``service`` and ``status`` to ``sub``, and ``prune`` to its ``db`` command (registered before)."""
    p = sub.add_parser("service", help="run the listener as a systemd service (install or uninstall its unit)")
    ssub = p.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    q = ssub.add_parser("install", help="write a systemd unit running `dicomtui listen` with the settings of "
                                        "`nodes local` and this database; print how to start it")
    where = q.add_mutually_exclusive_group()
    where.add_argument("--user", dest="system", action="store_false", help="a user unit (default; "
                                                                          "~/.config/systemd/user)")
    where.add_argument("--system", dest="system", action="store_true", help="a system unit in /etc/systemd/system, "
                                                                           "run as you (needs root to write)")
    q.add_argument("--dry-run", action="store_true", help="print the unit only; write nothing")
    q.add_argument("--prune-daily", action="store_true", help="also a timer running `db prune` daily with the "
                                                              "limits given here")
    _prune_limits(q)
    listen_log_options(q)
    q.set_defaults(system=False)
    q = ssub.add_parser("uninstall", help="remove the unit file (stop it first: systemctl --user disable --now)")
    where = q.add_mutually_exclusive_group()
    where.add_argument("--user", dest="system", action="store_false")
    where.add_argument("--system", dest="system", action="store_true")
    q.set_defaults(system=False)
    p.set_defaults(handler=cmd_service)

    p = sub.add_parser("status", help="is a listener serving this database; what arrived today; counts, size, "
                                      "free disk")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    db = sub.choices["db"]
    dbsub = next(a for a in db._actions if isinstance(a, argparse._SubParsersAction))
    q = dbsub.add_parser("prune", help="delete the oldest studies (by received/imported date) until under the "
                                       "limits; linked files are never deleted, only their rows")
    _prune_limits(q)
    q.add_argument("--dry-run", action="store_true", help="list what would go, with sizes; delete nothing")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_prune)


def _prune_limits(q: argparse.ArgumentParser) -> None:
    q.add_argument("--older-than", type=duration, metavar="AGE", help="studies whose newest instance arrived more "
                                                                      "than AGE ago (30d, 12h, 2w)")
    q.add_argument("--max-size", type=size, metavar="SIZE", help="then the oldest studies until the copied files "
                                                                 "in storage take at most SIZE (500G, 1.5T)")
    q.add_argument("--keep-patient", nargs="+", default=[], metavar="ID", help="never delete these PatientIDs")


def _prune_argv(args: argparse.Namespace) -> list[str]:
    """The limits of ``args`` as ``db prune`` options (seconds and bytes: exact, whatever units were typed)."""
    argv = []
    if args.older_than is not None:
        argv += ["--older-than", f"{args.older_than:f}".rstrip("0").rstrip(".") + "s"]
    if args.max_size is not None:
        argv += ["--max-size", f"{args.max_size}B"]
    return argv + (["--keep-patient", *args.keep_patient] if args.keep_patient else [])


def cmd_service(args: argparse.Namespace, db_path: Path) -> int:
    """``service install`` (print the unit and where it went, then the commands that start it) or ``service
    uninstall``. Exit 1 when ``systemd-analyze verify`` finds fault with the unit written."""
    from ..core import service
    from ..core.net.nodes import load_nodes

    if args.service_command == "uninstall":
        removed = service.uninstall(args.system)
        for path in removed:
            print(f"removed {path}")
        if not removed:
            print("no unit was installed")
        else:
            print(f"then: {'sudo systemctl' if args.system else 'systemctl --user'} daemon-reload")
        return EXIT_OK
    if args.prune_daily and args.older_than is None and args.max_size is None:
        err("--prune-daily needs a limit: --older-than AGE and/or --max-size SIZE")
        return EXIT_FATAL
    local = load_nodes().local
    argv = service.listen_command(db_path, local.ae_title, local.port, local.bind, local.allow, local.sync,
                                  options=_log_argv(args))
    units = [service.plan(argv, args.system, f"dicomtui DICOM listener {local.ae_title} on port {local.port}")]
    if args.prune_daily:
        units += service.prune_plans(db_path, _prune_argv(args), args.system)
    if args.dry_run:
        for unit in units:
            print((f"# {unit.path}\n" if len(units) > 1 else "") + unit.text, end="")
        return EXIT_OK
    problems = False
    for unit in units:
        service.install(unit)
        print(f"wrote {unit.path}:\n\n{unit.text}")
        found = service.verify(unit.path)
        if found is None:
            print("(not checked: systemd-analyze is not installed, Debian package systemd)")
        elif found:
            err(f"systemd-analyze verify {unit.path}:\n{found}")
            problems = True
    commands = list(dict.fromkeys(line for unit in units for line in unit.commands))
    print("start it now and at every boot with:\n" + "\n".join(f"  {line}" for line in commands))
    return EXIT_PARTIAL if problems else EXIT_OK


def cmd_status(args: argparse.Namespace, db_path: Path) -> int:
    """What ``dicomtui status`` prints (exit 0 whether or not a listener runs; 2: no database there)."""
    from ..core.status import status

    info = status(db_path)
    if args.json:
        print(json_text(info))
        return EXIT_OK
    print(f"database        {printable(info['database'])}")
    if not info["listeners"]:
        print("listener        none serving this database")
    for x in info["listeners"]:
        print(f"listener        {printable(str(x.get('ae_title', '?')))} on {x.get('bind', '?')}:{x.get('port', '?')}, "
              f"pid {x.get('pid', '?')}, since {x.get('since') or '?'}")
        print(f"  associations  {len(x['associations'])} open"
              + "".join(f"; {printable(str(a.get('calling_ae')))} from {a.get('address')} since {a.get('since')}, "
                        f"{a.get('images', 0):,} images" for a in x["associations"]))
        print(f"  log           {printable(x['log_file']) if x['log_file'] else 'stderr (the journal under systemd)'}")
    for node, states in info["forwards"].items():
        print(f"forwards        to {printable(node)}: " + ", ".join(f"{n:,} {state}" for state, n in states.items())
              + ("  (dicomtui route queue; route retry)" if states.get("failed") else ""))
    counts = info["counts"]
    print(f"today           {counted(info['received_today'], 'instance')} received or copied, "
          f"{info['added_today']:,} added in all")
    print(f"contents        {counts['patients']:,} patients, {counts['studies']:,} studies, {counts['series']:,} "
          f"series, {counts['instances']:,} instances")
    print(f"size            {human_bytes(counts['stored_bytes'])} in storage, {human_bytes(counts['linked_bytes'])} "
          f"linked elsewhere, index {human_bytes(counts['index_bytes'])}")
    disk = info["disk"]
    print(f"disk            {human_bytes(disk['free'])} free of {human_bytes(disk['total'])}"
          + (f"; BELOW the listener's floor of {human_bytes(disk['min_free'])}: new instances are refused (0xA700)"
             if disk["refusing"] else ""))
    return EXIT_OK


def cmd_prune(args: argparse.Namespace, db_path: Path) -> int:
    """``db prune``: list (``--dry-run``) or delete the studies :func:`..core.database.prune.plan` chooses. Exit 2
    without a limit, 1 when a file could not be deleted."""
    from ..core.database.prune import plan, prune

    if args.older_than is None and args.max_size is None:
        err("db prune needs a limit: --older-than AGE and/or --max-size SIZE")
        return EXIT_FATAL
    skipped = []
    with open_database(db_path, create=False, read_only=args.dry_run) as db:
        items = plan(db, args.older_than, args.max_size, args.keep_patient)
        report = None
        if not args.dry_run:
            report, skipped = prune(db, items)
            items = [i for i in items if i not in skipped]
    if args.json:
        print(json_text({"dry_run": args.dry_run, "studies": [i.as_dict() for i in items],
                         "skipped": [i.as_dict() for i in skipped], "report": report.__dict__ if report else None}))
        return EXIT_PARTIAL if report and report.errors else EXIT_OK
    for i in items:
        when = dt.datetime.fromtimestamp(i.received).strftime("%Y-%m-%d %H:%M")
        print(f"{'would delete' if args.dry_run else 'deleted'} study {printable(i.StudyInstanceUID)} (patient "
              f"{printable(i.PatientID)}, "
              f"received {when}): {counted(i.instances, 'instance')}, {human_bytes(i.stored_bytes)} copied"
              + (f", {human_bytes(i.linked_bytes)} linked kept" if i.linked_bytes else "") + f"; {i.reason}")
    for i in skipped:
        print(f"kept study {printable(i.StudyInstanceUID)}: it received instances while the prune ran")
    freed = sum(i.stored_bytes for i in items)
    if args.dry_run:
        print(f"dry run: {counted(len(items), 'study')} would go, freeing {human_bytes(freed)}")
        return EXIT_OK
    assert report is not None
    print(report.summary())
    for e in report.errors:
        err(e)
    return EXIT_PARTIAL if report.errors else EXIT_OK
