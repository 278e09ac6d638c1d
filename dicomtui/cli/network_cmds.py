"""Commands that talk DICOM over the network: ``nodes``, ``echo``, ``send``, ``query``, ``retrieve``, ``doctor``,
``listen``. pynetdicom is imported inside the commands, so the other commands never pay for it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.net.nodes import RETRIEVE_METHODS, SYNC_MODES
from .database_cmds import open_database
from .deidentify_cmds import add_deidentify_options, deidentifier_of
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, print_tsv, with_progress
from .service_cmds import listen_log_options, size

SYNC_HELP = ("how the listener makes each received instance durable before answering success: file (default: "
             "the file and its folder flushed), batch (one file-system flush shared by the instances arriving "
             "meanwhile), none (no flush, as DCMTK storescp: a crash can lose instances the sender was told are "
             "stored)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``nodes``, ``echo``, ``send``, ``query``, ``retrieve``, ``doctor`` and ``listen`` to ``sub``."""
    p = sub.add_parser("nodes", help="remote DICOM nodes (presets) and our own AE")
    nsub = p.add_subparsers(dest="nodes_command", metavar="ACTION", required=True)
    q = nsub.add_parser("ls", help="list the presets and our own AE")
    q.add_argument("--json", action="store_true")
    q = nsub.add_parser("add", help="add or replace a preset: NAME [AE@HOST:PORT] [--url DICOMWEB-URL]")
    q.add_argument("name")
    q.add_argument("address", metavar="AE@HOST:PORT", nargs="?", default="", help="DIMSE (leave out: DICOMweb only)")
    q.add_argument("--url", default="", help="DICOMweb base URL (QIDO-RS/WADO-RS/STOW-RS), e.g. "
                                            "http://host:8042/dicom-web")
    q.add_argument("--user", default="", help="DICOMweb HTTP basic user (with --password-file)")
    q.add_argument("--password-file", default="", help="file holding the password (its path is stored)")
    q.add_argument("--token-file", default="", help="file holding a bearer token (its path is stored)")
    q.add_argument("--token-env", default="", help="environment variable holding a bearer token (its name is "
                                                  "stored)")
    for service in ("qido", "wado", "stow"):
        q.add_argument(f"--{service}-prefix", default="", help=f"path between the URL and the {service.upper()}-RS "
                                                               f"resources, when the server's services differ")
    q.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                   help="extra HTTP header for every DICOMweb request (stored in clear: no secrets)")
    q.add_argument("--retrieve", choices=RETRIEVE_METHODS, default="move")
    q.add_argument("--charset", default="ISO_IR 192", help="SpecificCharacterSet for queries")
    q.add_argument("--timeout", type=float, default=30.0)
    q.add_argument("--tls", action="store_true", help="DICOM over TLS")
    q.add_argument("--tls-ca", default="", help="CA file that signed the peer's certificate (DIMSE TLS, HTTPS)")
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
    q.add_argument("--sync", choices=SYNC_MODES, help=SYNC_HELP)
    q.add_argument("--min-free", type=size, metavar="SIZE", help="the listener refuses new instances (0xA700) when "
                                                                 "less is free on the database's disk (default 1G; 0: "
                                                                 "never)")
    p.set_defaults(handler=cmd_nodes)

    p = sub.add_parser("echo", help="C-ECHO a node (preset name or AE@HOST:PORT); QIDO-RS one study (DICOMweb)")
    p.add_argument("node")
    _via(p)
    p.set_defaults(handler=cmd_echo)

    p = sub.add_parser("send", help="C-STORE (STOW-RS to a DICOMweb node) patients (PatientID), studies, "
                                    "series or instances")
    p.add_argument("uids", nargs="+", metavar="UID")
    p.add_argument("--to", required=True, metavar="NODE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--deidentify", action="store_true",
                   help="send de-identified copies (PS3.15 Basic Profile; the pseudonyms and UIDs of the mapping "
                        "in the database folder, as export --deidentify)")
    add_deidentify_options(p)
    _via(p)
    p.set_defaults(handler=cmd_send)

    p = sub.add_parser("query", help="C-FIND (Study Root) or QIDO-RS a node at study, series or image level")
    p.add_argument("node")
    # net.query.QueryLevel's values, spelled out: importing net.query here would load ssl for every command
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
    _via(p)
    p.set_defaults(handler=cmd_query)

    p = sub.add_parser("retrieve", help="C-MOVE (to our listener), C-GET or WADO-RS studies/series from a "
                                        "node into the database")
    p.add_argument("node")
    p.add_argument("uids", nargs="+", metavar="UID", help="study or series UIDs at the node")
    p.add_argument("--method", choices=RETRIEVE_METHODS, help="default: the node preset's (move)")
    p.add_argument("--json", action="store_true")
    _via(p)
    p.set_defaults(handler=cmd_retrieve)

    p = sub.add_parser("doctor", help="check a node step by step: network, echo, query, a move back to us "
                                      "(DICOMweb: network, TLS, QIDO-RS, WADO-RS, STOW-RS)")
    p.add_argument("node")
    _via(p)
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser("listen", help="receive C-STORE into the database until SIGTERM/SIGINT",
                       description="Receive C-STORE into the database until SIGTERM/SIGINT. By default it listens "
                                   "on ALL network interfaces (0.0.0.0) and accepts any calling AE title: restrict "
                                   "it with --bind 127.0.0.1 (or one interface's address) and --allow AE..., or "
                                   "for good with `nodes local --bind ... --allow ...`. Refused callers are logged "
                                   "with their address and AE title.")
    p.add_argument("--port", type=int, help="default: from `nodes local` (11112)")
    p.add_argument("--ae", help="our AE title (default: from `nodes local`, DICOMTUI)")
    p.add_argument("--bind", help="address to listen on (default: from `nodes local`, 0.0.0.0 = all interfaces)")
    p.add_argument("--allow", nargs="*", metavar="AE", help="accept only these calling AE titles (default: any)")
    p.add_argument("--sync", choices=SYNC_MODES, help=SYNC_HELP + "; default: from `nodes local`, file")
    p.add_argument("-v", "--verbose", action="store_true", help="also log pynetdicom's messages (quiet otherwise)")
    listen_log_options(p)
    p.set_defaults(handler=cmd_listen)



def _via(p: argparse.ArgumentParser) -> None:
    p.add_argument("--via", choices=["dimse", "web"], help="for a node that speaks both: DIMSE (default) or "
                                                          "DICOMweb; a DICOMweb-only node always uses DICOMweb")


def _uses_web(node, args: argparse.Namespace) -> bool:
    """Whether the command talks DICOMweb to ``node``: its only protocol, or ``--via web``. Raises NodeError when
    --via asks for a protocol the node does not speak."""
    from ..core.errors import NodeError

    via = getattr(args, "via", None)
    if via == "web" and not node.web:
        raise NodeError(f"node {node.name} has no DICOMweb URL (dicomtui nodes add {node.name} ... --url URL)")
    if via == "dimse" and not node.dimse:
        raise NodeError(f"node {node.name} has no DIMSE address AE@HOST:PORT, only a DICOMweb URL")
    return node.web and (via == "web" or not node.dimse)


def cmd_nodes(args: argparse.Namespace, db_path: Path) -> int:
    """List, add, remove presets or set our own AE in nodes.toml. Exit 2 for a badly written address or unknown node."""
    from dataclasses import asdict

    from ..core.net.nodes import RemoteNode, load_nodes, save_nodes, validate

    nodes = load_nodes()
    if args.nodes_command == "ls":
        if args.json:
            print(json.dumps({"local": asdict(nodes.local),
                              "nodes": [asdict(n) for n in nodes.remotes.values()]}, indent=2))
            return EXIT_OK
        local = nodes.local
        print(f"local  {local.ae_title} on {local.bind}:{local.port}"
              + (f", accepts only {', '.join(local.allow)}" if local.allow else "") + f", sync {local.sync}")
        for node in nodes.remotes.values():
            dimse = f"{node.address}\tretrieve={node.retrieve}\tcharset={node.charset}" if node.dimse else "-"
            print(f"{node.name}\t{dimse}" + (f"\tdicomweb={node.url}" if node.web else ""))
        return EXIT_OK
    if args.nodes_command == "add":
        parsed = nodes.resolve(args.address) if "@" in args.address else None
        if parsed is None and (args.address or not args.url):
            err("the address must be written AE@HOST:PORT (or give a DICOMweb --url)")
            return EXIT_FATAL
        dimse_tls = bool(parsed) and (args.tls or bool(args.tls_ca or args.tls_cert))
        node = RemoteNode(args.name, parsed.ae_title if parsed else "", parsed.host if parsed else "",
                          parsed.port if parsed else 0, retrieve=args.retrieve, charset=args.charset,
                          timeout=args.timeout, tls=dimse_tls, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                          tls_key=args.tls_key, tls_verify=not args.tls_no_verify, url=args.url.rstrip("/"),
                          user=args.user, password_file=_absolute(args.password_file),
                          token_file=_absolute(args.token_file), token_env=args.token_env,
                          qido_prefix=args.qido_prefix, wado_prefix=args.wado_prefix, stow_prefix=args.stow_prefix,
                          headers=dict(_header(h) for h in args.header))
        validate(node)
        nodes.remotes[args.name] = node
    elif args.nodes_command == "rm":
        if nodes.remotes.pop(args.name, None) is None:
            err(f"no node {args.name}")
            return EXIT_FATAL
    elif args.nodes_command == "local":
        for key, value in (("ae_title", args.ae), ("port", args.port), ("bind", args.bind), ("allow", args.allow),
                           ("tls_cert", args.tls_cert), ("tls_key", args.tls_key), ("tls_ca", args.tls_ca),
                           ("sync", args.sync), ("min_free_bytes", args.min_free)):
            if value is not None:
                setattr(nodes.local, key, value)
    print(f"saved {save_nodes(nodes)}")
    return EXIT_OK


def _header(text: str) -> tuple[str, str]:
    """``NAME:VALUE`` (or ``NAME=VALUE``) → (name, value). Raises NodeError for neither."""
    from ..core.errors import NodeError

    for sep in (":", "="):
        name, found, value = text.partition(sep)
        if found and name.strip():
            return name.strip(), value.strip()
    raise NodeError(f"--header {text!r}: write it NAME:VALUE")


def _absolute(path: str) -> str:
    """A secret file's path as stored in the preset: absolute, so that it holds from any working folder."""
    return str(Path(path).expanduser().absolute()) if path else ""


def cmd_echo(args: argparse.Namespace, db_path: Path) -> int:
    """C-ECHO: the result sentence on stdout (success) or stderr (exit 2)."""
    from ..core.net.echo import echo
    from ..core.net.nodes import load_nodes

    nodes = load_nodes()
    node = nodes.resolve(args.node)
    if _uses_web(node, args):
        from ..core.net.web import web_echo

        result = web_echo(node)
    else:
        result = echo(node, nodes.local)
    if not result.ok:
        err(result.summary())
        return EXIT_FATAL
    print(result.summary())
    return EXIT_OK


def cmd_send(args: argparse.Namespace, db_path: Path) -> int:
    """C-STORE (STOW-RS) the items' files, de-identified with ``--deidentify`` (the mapping saved afterwards, also
    after an error: what was sent uses it). Exit 1 when some failed or were left out, 2 when all failed."""
    from ..core.net.nodes import load_nodes
    from ..core.net.send import send

    nodes = load_nodes()
    node = nodes.resolve(args.to)
    with open_database(db_path, create=False, read_only=True) as db:
        rows = _instances_of(db, args.uids)
        if rows is None:
            return EXIT_FATAL
    deid = deidentifier_of(args, db_path) if args.deidentify else None
    what = f"{len(rows)} {'de-identified ' if deid else ''}instances"
    try:
        if _uses_web(node, args):
            from ..core.net.web_stow import stow

            report = with_progress(lambda progress: stow(node, rows, progress, transform=deid),
                                   f"Sending {what} to {node.url} (STOW-RS)")
        else:
            report = with_progress(lambda progress: send(rows, node, nodes.local, progress, transform=deid),
                                   f"Sending {what} to {node.address}")
    finally:
        if deid is not None:
            deid.mapping.save()
    if report.left_out:
        report.notes.append(f"{len(report.left_out)} files may show identity in their pixels (burned-in "
                            f"annotation) and were not sent; send them with --accept-burned-in after checking them: "
                            + ", ".join(report.left_out))
    counts = report.counts
    if args.json:
        print(json.dumps({"node": report.node, "counts": counts, "error": report.error, "notes": report.notes,
                          "items": [{"sop_instance_uid": i.sop_instance_uid, "status": i.status,
                                     "meaning": i.meaning, "decompressed": i.decompressed}
                                    for i in report.items], "left_out": report.left_out}, indent=2))
    else:
        print(report.summary())
    for problem in report.problems():
        err(problem)
    if counts["failure"] == len(report.items):
        return EXIT_FATAL
    return EXIT_PARTIAL if counts["failure"] or report.error or report.left_out else EXIT_OK


def cmd_query(args: argparse.Namespace, db_path: Path) -> int:
    """C-FIND at one level: TSV (or JSON) rows, the count on stderr."""
    from ..core.net.nodes import load_nodes
    from ..core.net.query import RETURN_KEYS, QueryFilters, query

    nodes = load_nodes()
    filters = QueryFilters(name=args.name, patient_id=args.patient_id, date=args.date, modality=args.modality,
                           accession=args.accession, description=args.description, study_uid=args.study,
                           series_uid=args.series)
    node = nodes.resolve(args.node)
    if _uses_web(node, args):
        from ..core.net.web import qido

        results = qido(node, args.level, filters)
    else:
        results = query(node, args.level, filters, nodes.local)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return EXIT_OK
    columns = RETURN_KEYS[args.level]
    print_tsv(columns, ([row.get(c, "") for c in columns] for row in results))  # TSV on a terminal too
    print(f"{len(results)} {args.level} matches", file=sys.stderr)
    return EXIT_OK


def cmd_retrieve(args: argparse.Namespace, db_path: Path) -> int:
    """C-MOVE or C-GET into the database. Exit 1 when some failed, 2 when nothing was retrieved."""
    from ..core.net.nodes import load_nodes
    from ..core.net.retrieve import retrieve

    nodes = load_nodes()
    node = nodes.resolve(args.node)
    web = _uses_web(node, args)
    with open_database(db_path) as db:
        if web:
            from ..core.net.web_wado import web_retrieve

            report = with_progress(lambda progress: web_retrieve(db, node, args.uids, progress,
                                                                 sync=nodes.local.sync,
                                                                 min_free=nodes.local.min_free_bytes),
                                   f"Retrieving from {node.url} (WADO-RS)")
        else:
            report = with_progress(lambda progress: retrieve(db, node, args.uids, args.method, nodes.local,
                                                             progress), f"Retrieving from {node.address}")
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        print(report.summary())
    for problem in report.problems():
        err(problem)
    if report.errors and not report.completed:
        return EXIT_FATAL
    return EXIT_PARTIAL if report.errors or report.failed else EXIT_OK


def cmd_doctor(args: argparse.Namespace, db_path: Path) -> int:
    """Each check of the node as ok/FAIL/--. Exit 2 when a check failed. ``doctor terminal``: the terminal's."""
    if args.node == "terminal":
        from .terminal_cmds import cmd_doctor_terminal

        return cmd_doctor_terminal(args, db_path)
    from ..core.net.doctor import doctor
    from ..core.net.nodes import load_nodes

    nodes = load_nodes()
    node = nodes.resolve(args.node)
    if _uses_web(node, args):
        from ..core.net.web_doctor import web_doctor

        web_report = web_doctor(node)
        print(web_report.summary())
        return EXIT_OK if web_report.ok else EXIT_FATAL
    with open_database(db_path) as db:
        report = doctor(db, node, nodes.local)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FATAL


def _instances_of(db, uids: list[str]) -> list[dict[str, Any]] | None:
    """Instance files (absolute paths) of patients (by PatientID), studies, series or instances; None, after
    naming the first UID that names nothing, when one does."""
    from ..core import selection

    resolved = selection.resolve(db, uids)
    if resolved.missing:
        err(selection.missing_sentence(resolved.missing[0]))
        return None
    return selection.instance_files(db, resolved.items)


def cmd_listen(args: argparse.Namespace, db_path: Path) -> int:
    """Receive C-STORE into the database until SIGTERM/SIGINT. Exit 2 when the port cannot be opened."""
    import logging
    import signal
    import threading

    from ..core.forward import load_routes, routes_file
    from ..core.logfile import log_handler
    from ..core.net.forwarder import Forwarding
    from ..core.net.listener import Listener
    from ..core.net.nodes import load_nodes
    from ..core.service import notify

    local = load_nodes().local
    local.port = args.port if args.port is not None else local.port
    local.ae_title = args.ae or local.ae_title
    local.bind = args.bind or local.bind
    local.allow = args.allow if args.allow is not None else local.allow
    local.sync = args.sync or local.sync
    try:
        handler = log_handler(args.log_file, args.log_format, args.log_max_size, args.log_keep)
    except OSError as exc:
        err(f"cannot open the log file {args.log_file}: {exc.strerror or exc}")
        return EXIT_FATAL
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("pynetdicom").setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    open_database(db_path).close()  # create the database here, before the listener's threads open it
    listener = Listener(db_path, local, forward=Forwarding(load_routes(), local, routes_path=routes_file()),
                        log_file=args.log_file.expanduser().absolute() if args.log_file else None)
    try:
        listener.start()
    except OSError as exc:
        err(f"cannot listen on {local.bind}:{local.port}: {exc.strerror or exc}")
        return EXIT_FATAL
    print(f"{listener.start_line()}. Ctrl-C or SIGTERM to stop", flush=True)
    notify(f"READY=1\nSTATUS=listening as {local.ae_title} on port {listener.port}")  # systemd's Type=notify
    # Woken twice a second: a SIGTERM the kernel delivers to one of the listener's threads sets CPython's flag but
    # does not interrupt the main thread's lock wait, so a plain stop.wait() could sleep through it (seen: after a
    # connection, one SIGTERM in three was lost).
    while not stop.wait(0.5):
        pass
    notify("STOPPING=1")
    listener.stop()
    print(f"stopped: {listener.indexed} instances received and indexed", flush=True)
    return EXIT_OK
