"""Check a remote node step by step, each result a sentence: reachable (TCP), echo (us → them), query (C-FIND),
and a C-MOVE of one instance back to us (them → us: does the peer know and reach our AE title, host and port?).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import NetworkError, ServiceNotOffered
from .associate import PROBE_S, connect_seconds
from .echo import echo
from .nodes import LocalNode, RemoteNode
from .query import QueryFilters, query
from .retrieve import RetrieveReport, RetrieveTarget, move

STEPS = ("network", "echo", "query", "move to us")
_MARKS = {True: "ok  ", False: "FAIL", None: "--  "}


@dataclass
class Check:
    name: str  # one of STEPS
    ok: bool | None  # None: not run (an earlier check failed, or nothing to test with)
    detail: str

    def line(self) -> str:
        """One line of the CLI's report: mark, name, detail."""
        return f"  {_MARKS[self.ok]} {self.name:<11} {self.detail}"


@dataclass
class DoctorReport:
    """The checks in order (it iterates and indexes over them, as the list ``doctor`` used to return)."""

    node_name: str
    node_address: str  # AE@host:port
    calling_ae: str  # ours
    port: int  # where we listen (the way back)
    checks: list[Check] = field(default_factory=list)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __getitem__(self, index: int) -> Check:
        return self.checks[index]

    def __len__(self) -> int:
        return len(self.checks)

    @property
    def ok(self) -> bool:
        """No check failed (checks not run do not count)."""
        return not any(c.ok is False for c in self.checks)

    def summary(self) -> str:
        """The report as the CLI prints it: who checks whom, then one line per check."""
        head = f"{self.node_name} ({self.node_address}), from {self.calling_ae} (listening on port {self.port}):"
        return "\n".join([head, *(check.line() for check in self.checks)])


def doctor(db, node: RemoteNode, local: LocalNode | None = None) -> DoctorReport:
    """Run the checks of STEPS in order; after a failure the later ones are "not tried" (ok None). Raises
    NetworkError only when the peer stops answering the image-level C-FIND of the last step."""
    local = local or LocalNode()
    report = DoctorReport(node.name, node.address, local.ae_title, local.port)
    checks = report.checks
    checks.append(_network(node))
    if checks[-1].ok:
        checks.append(_echo(node, local))
    studies: list[dict[str, str]] = []
    if checks[-1].ok:
        studies, check = _query(node, local)
        checks.append(check)
    if checks[-1].ok:
        checks.append(_move_back(db, node, local, studies))
    checks += [Check(name, None, "not tried") for name in STEPS[len(checks):]]
    return report


def _network(node: RemoteNode) -> Check:
    try:
        socket.getaddrinfo(node.host, node.port)
        seconds = connect_seconds(node.host, node.port, min(node.timeout, PROBE_S))
    except OSError as exc:
        return Check("network", False, f"cannot connect to {node.host}:{node.port}: {exc.strerror or exc} — "
                                       f"is the peer running, is this the right port, is a firewall between?")
    return Check("network", True, f"{node.host}:{node.port} accepts TCP connections ({seconds * 1000:.0f} ms)")


def _echo(node: RemoteNode, local: LocalNode) -> Check:
    result = echo(node, local)
    return Check("echo", result.ok, result.message)


def _query(node: RemoteNode, local: LocalNode) -> tuple[list[dict[str, str]], Check]:
    try:
        studies = query(node, "study", QueryFilters(), local)
    except ServiceNotOffered as exc:  # already says what it is: echo worked, the peer has no query service
        return [], Check("query", False, str(exc))
    except NetworkError as exc:
        return [], Check("query", False, f"{exc} — the peer may accept C-FIND only from AE titles it knows "
                                         f"(ours: {local.ae_title})")
    return studies, Check("query", True, f"C-FIND answered: {len(studies)} studies")


def _move_back(db, node: RemoteNode, local: LocalNode, studies: list[dict[str, str]]) -> Check:
    """C-MOVE one instance of the first studies that list any back to us."""
    sample = None
    for study in studies[:5]:
        images = query(node, "image", QueryFilters(study_uid=study.get("StudyInstanceUID", "")), local)
        if images:
            sample = images[0]
            break
    if sample is None:
        return Check("move to us", None, "the peer listed no instance to move: cannot test the way back")
    already = db.find("instance", sample["SOPInstanceUID"]) is not None
    moved = RetrieveReport(node.address, "move")
    target = RetrieveTarget("IMAGE", sample["StudyInstanceUID"], sample["SeriesInstanceUID"],
                            [sample["SOPInstanceUID"]], [sample["SOPInstanceUID"]])
    try:
        move(db, node, local, target, moved, lambda _done: None, local.ae_title)
    except NetworkError as exc:  # our port is held by another database's listener, or the peer refused the C-MOVE
        return Check("move to us", False, str(exc))
    if moved.errors or moved.completed != 1:
        detail = "; ".join(moved.errors) or f"the peer moved {moved.completed} of 1 instance"
        return Check("move to us", False, detail)
    return Check("move to us", True, f"the peer reached us as {local.ae_title} on port {local.port} "
                                     f"(one instance moved{', already in the database' if already else ''})")
