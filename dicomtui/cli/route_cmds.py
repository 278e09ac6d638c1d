"""Forwarding rules (issue 20): ``route add|ls|rm`` edit ``routes.toml``; ``route queue`` and ``route retry`` read
and renew the database's forward queue, which the running listener sends (:mod:`..core.net.forwarder`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from ..core.forward import WHEN, Route, load_routes, save_routes
from ..core.text import printable
from .deidentify_cmds import OPTION_NAMES
from .output import EXIT_FATAL, EXIT_OK, err, print_tsv
from .service_cmds import duration


def _words(text: str) -> list[str]:
    """``CT,MR`` (or ``CT MR``) → ["CT", "MR"]."""
    return [w for w in text.replace(",", " ").split() if w]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``route`` and its actions to ``sub``."""
    p = sub.add_parser("route", help="forwarding rules of the listener: what it passes on to which node, and its "
                                     "queue")
    rsub = p.add_subparsers(dest="route_command", metavar="ACTION", required=True)
    q = rsub.add_parser("add", help="add a rule: received instances matching every condition given (none: "
                                    "everything) are forwarded to NODE")
    q.add_argument("--to", required=True, metavar="NODE", help="a node of `dicomtui nodes ls` (DIMSE, or DICOMweb "
                                                               "STOW-RS when it has only a URL)")
    q.add_argument("--calling-ae", action="append", default=[], metavar="AE",
                   help="only instances sent by this calling AE title (repeat for several)")
    q.add_argument("--modality", type=_words, default=[], help="only these modalities, e.g. CT,MR")
    q.add_argument("--study-description", default="", metavar="GLOB", help="StudyDescription matches this "
                                                                           "pattern (* and ?, any case)")
    q.add_argument("--series-description", default="", metavar="GLOB", help="SeriesDescription matches this pattern")
    q.add_argument("--patient-id-prefix", default="", metavar="P", help="PatientID starts with P")
    q.add_argument("--when", choices=WHEN, default="instance", help="instance: each at once (default); study: "
                                                                    "the study once none of it arrived for --idle")
    q.add_argument("--idle", type=duration, default=30.0, help="with --when study: the quiet time that ends a "
                                                               "study (default 30s)")
    q.add_argument("--deidentify", action="store_true", help="send a de-identified copy (PS3.15 Basic Profile, the "
                                                             "database's mapping, as `dicomtui deidentify`)")
    q.add_argument("--profile-option", action="append", choices=OPTION_NAMES, default=[], metavar="OPTION",
                   help="with --deidentify, a PS3.15 Basic Profile option (repeatable): " + ", ".join(OPTION_NAMES))
    q = rsub.add_parser("ls", help="the rules, numbered")
    q.add_argument("--json", action="store_true")
    q = rsub.add_parser("rm", help="remove rule N (as `route ls` numbers it)")
    q.add_argument("number", type=int, metavar="N")
    q = rsub.add_parser("queue", help="forwards pending (with their next try) and failed (with the reason)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--clear-sent", action="store_true", help="forget the forwards already sent (the listener "
                                                             "forgets them itself after 7 days)")
    q.add_argument("--older-than", type=duration, default=0.0, metavar="TIME",
                   help="with --clear-sent, only those sent longer ago than TIME (e.g. 1d)")
    q = rsub.add_parser("retry", help="try failed forwards again now: all, or those to rule N's node")
    q.add_argument("number", type=int, metavar="N", nargs="?")
    q = rsub.add_parser("policy", help="how failed forwards are retried (shown when no option is given)")
    q.add_argument("--max-tries", type=int, metavar="K", help="tries before a forward is failed (default 8)")
    q.add_argument("--first", type=duration, metavar="TIME", help="wait before the first retry, doubled at each "
                                                                  "try (default 5s)")
    q.add_argument("--cap", type=duration, metavar="TIME", help="longest wait between tries (default 10m)")
    p.set_defaults(handler=cmd_route)


def cmd_route(args: argparse.Namespace, db_path: Path) -> int:
    """Dispatch ``route ACTION``. Exit 2 for an unknown node or rule number."""
    action = args.route_command
    if action in ("queue", "retry"):
        return _queue(args, db_path)
    routes = load_routes()
    if action == "ls":
        if args.json:
            print(json.dumps([vars(r) for r in routes.rules], indent=2))
        for n, rule in enumerate(routes.rules, 1):
            if not args.json:
                print(f"{n}\t{printable(rule.describe())}")
        if not routes.rules and not args.json:
            err("no rules: the listener forwards nothing (dicomtui route add --to NODE)")
        return EXIT_OK
    if action == "add":
        from ..core.net.nodes import load_nodes

        if args.to not in load_nodes().remotes:
            err(f"no node named {args.to} (dicomtui nodes add {args.to} AE@HOST:PORT)")
            return EXIT_FATAL
        if args.profile_option and not args.deidentify:
            err("--profile-option chooses options of de-identification: add --deidentify")
            return EXIT_FATAL
        rule = Route(args.to, args.calling_ae, args.modality, args.study_description, args.series_description,
                     args.patient_id_prefix, args.when, args.idle, args.deidentify,
                     list(dict.fromkeys(args.profile_option)))
        routes.rules.append(rule)
        print(f"rule {len(routes.rules)}: {printable(rule.describe())}")
    elif action == "rm":
        if not 1 <= args.number <= len(routes.rules):
            err(f"no rule {args.number} (dicomtui route ls numbers them 1 to {len(routes.rules)})")
            return EXIT_FATAL
        rule = routes.rules.pop(args.number - 1)
        print(f"removed rule {args.number}: {printable(rule.describe())}")
    elif action == "policy":
        policy = routes.retry
        for key, value in (("max_tries", args.max_tries), ("first_s", args.first), ("cap_s", args.cap)):
            if value is not None:
                setattr(policy, key, value)
        print(f"a failed forward is retried after {policy.first_s:g} s, doubled at each try up to {policy.cap_s:g} s;"
              f" failed after {policy.max_tries} tries")
        if args.max_tries is None and args.first is None and args.cap is None:
            return EXIT_OK
    print(f"saved {save_routes(routes)} (a running listener uses it from the next instance it receives)")
    return EXIT_OK


def _queue(args: argparse.Namespace, db_path: Path) -> int:
    from ..core.net.forward_queue import ForwardQueue, queue_path

    if not queue_path(db_path).exists():
        err(f"nothing was ever queued for forwarding in {db_path}")
        return EXIT_OK
    if args.route_command == "queue" and args.older_than and not args.clear_sent:
        err("--older-than goes with --clear-sent")
        return EXIT_FATAL
    with ForwardQueue(db_path) as queue:
        if args.route_command == "retry":
            names = None
            if args.number is not None:
                rules = load_routes().rules
                if not 1 <= args.number <= len(rules):
                    err(f"no rule {args.number} (dicomtui route ls numbers them 1 to {len(rules)})")
                    return EXIT_FATAL
                names = [rules[args.number - 1].to]
            n = queue.retry(names)
            print(f"{n} failed forwards pending again (the running listener sends them within a second)")
            return EXIT_OK
        if args.clear_sent:
            n = queue.forget_sent(time.time() - args.older_than)
            print(f"{n} sent forwards forgotten" + (f" (sent over {args.older_than:g} s ago)" if args.older_than
                                                    else ""))
            return EXIT_OK
        rows = queue.listing()
        counts = queue.counts()
    if args.json:
        print(json.dumps({"counts": counts, "forwards": [vars(r) for r in rows]}, indent=2))
        return EXIT_OK
    for node, states in counts.items():
        print(f"{node}: " + ", ".join(f"{n} {state}" for state, n in states.items()))
    print_tsv(["state", "node", "SOPInstanceUID", "tries", "next try / reason"],
              ([r.state, r.destination, r.SOPInstanceUID, str(r.tries),
                printable(r.last_error) if r.state == "failed" else _when(r.next_try) + (
                    f" (last: {printable(r.last_error)})" if r.last_error else "")] for r in rows))
    return EXIT_OK


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")
