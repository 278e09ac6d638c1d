"""Retrieve studies or series from a remote node into the database: first the plan ("what is missing here"),
then its execution by C-GET into the database or C-MOVE to our listener (PS3.4 C.4.2, C.4.3).

The plan is protocol-neutral (study/series → SOP Instance UIDs at the peer and missing here), so WADO-RS can
execute the same plan later; only :func:`plan_retrieve` (C-FIND listings) and the execution are DIMSE.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import NetworkError
from . import identity
from .associate import application_entity, associate, port_open
from .nodes import LocalNode, RemoteNode
from .query import QueryFilters, query
from .status import PENDING_CODES, Service, Status, qr_meaning, stopped_answering
from .wire import STUDY_ROOT_GET as GET
from .wire import STUDY_ROOT_MOVE as MOVE

MOVE_LISTENER_PROBE_S = 0.5  # is our listener up? (else one runs for the duration of the C-MOVE)
ARRIVAL_WAIT_S = 5.0  # how long a running listener of this database may take to index what a C-MOVE sent


@dataclass
class RetrieveTarget:
    """One study or series to fetch. ``at_peer``: its SOP Instance UIDs at the peer (empty: the peer would not
    list them, the whole study/series is asked for); ``missing``: those not in the database, asked one by one."""

    level: str  # Query/Retrieve Level of the request: "STUDY", "SERIES" (whole) or "IMAGE" (the missing ones)
    study_uid: str
    series_uid: str = ""
    at_peer: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        """Asked for as a whole study/series (the peer did not list its instances)."""
        return not self.at_peer

    @property
    def needed(self) -> bool:
        return self.whole or bool(self.missing)


@dataclass
class RetrievePlan:
    """What to fetch, per study/series, in the order the user asked."""

    targets: list[RetrieveTarget] = field(default_factory=list)

    @property
    def requested(self) -> int:
        """Instances the peer has for the request (as far as it listed them)."""
        return sum(len(t.at_peer) for t in self.targets)

    @property
    def already_here(self) -> int:
        return sum(len(t.at_peer) - len(t.missing) for t in self.targets)

    def add(self, level: str, uid: str, instances: list[dict[str, str]], have: Callable[[str], bool]) -> None:
        """Add the study or series ``uid`` (``level``: "STUDY" or "SERIES") given the peer's listing of its
        instances (dicts with StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) and ``have(sop_uid)``: is
        it in the database."""
        if not instances:  # the peer did not list images: ask for the whole study/series
            self.targets.append(RetrieveTarget(level, uid if level == "STUDY" else "",
                                               uid if level == "SERIES" else ""))
            return
        by_series: dict[str, RetrieveTarget] = {}
        for image in instances:
            series = image["SeriesInstanceUID"]
            if series not in by_series:
                by_series[series] = RetrieveTarget("IMAGE", image["StudyInstanceUID"], series)
            target = by_series[series]
            target.at_peer.append(image["SOPInstanceUID"])
            if not have(image["SOPInstanceUID"]):
                target.missing.append(image["SOPInstanceUID"])
        self.targets += by_series.values()


@dataclass
class RetrieveReport:
    node: str
    method: str  # "move" or "get"
    requested: int = 0  # instances the peer has for the request
    already_here: int = 0  # skipped: in the database already
    completed: int = 0
    failed: int = 0
    warning: int = 0
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        """The counts as the CLI prints them on stdout (``errors`` follow on stderr, one a line)."""
        return (f"{self.method} from {self.node}: {self.completed} retrieved, {self.already_here} already here, "
                f"{self.failed} failed, {self.warning} with warnings (of {self.requested})")

    def problems(self) -> list[str]:
        """The sentences the CLI prints on stderr after the summary."""
        return list(self.errors)


def plan_retrieve(db, node: RemoteNode, uids: list[str], local: LocalNode | None = None) -> RetrievePlan:
    """Find each UID at the peer (a study or a series) and list what of it is not in ``db``. Raises
    NetworkError when the peer has neither."""
    local = local or LocalNode()
    plan = RetrievePlan()
    for uid in uids:
        level, images = _locate(node, uid, local)
        plan.add(level, uid, images, lambda sop: db.find("instance", sop) is not None)
    return plan


def retrieve(db, node: RemoteNode, uids: list[str], method: str | None = None, local: LocalNode | None = None,
             progress: Callable[[int, int], None] | None = None, destination: str | None = None,
             cancel: threading.Event | None = None) -> RetrieveReport:
    """C-GET into the database, or C-MOVE to our listener (started for the duration when not running).

    Each UID is a study or series UID at the peer. Instances already in the database are left out, when the
    peer answers image-level queries, so that an interrupted retrieve resumes where it stopped. Setting
    ``cancel`` aborts the association at the next response; what arrived until then stays in the database.
    ``progress(done, total)`` counts instances. Raises NetworkError when the peer cannot be asked at all."""
    local = local or LocalNode()
    plan = plan_retrieve(db, node, uids, local)
    return execute(db, node, plan, method or node.retrieve, local, progress, destination, cancel)


def execute(db, node: RemoteNode, plan: RetrievePlan, method: str, local: LocalNode,
            progress: Callable[[int, int], None] | None = None, destination: str | None = None,
            cancel: threading.Event | None = None) -> RetrieveReport:
    """Fetch what ``plan`` says is needed, one C-MOVE/C-GET per study/series (the missing instances of each)."""
    report = RetrieveReport(node.address, method, plan.requested, plan.already_here)
    destination = destination or local.ae_title
    if method == "move" and destination == local.ae_title and any(t.needed for t in plan.targets):
        with receiving(db, local):  # one listener for every C-MOVE of the plan, not one per series
            _execute(db, node, plan, method, local, report, progress, destination, cancel)
    else:
        _execute(db, node, plan, method, local, report, progress, destination, cancel)
    return report


def _execute(db, node: RemoteNode, plan: RetrievePlan, method: str, local: LocalNode, report: RetrieveReport,
             progress: Callable[[int, int], None] | None, destination: str, cancel: threading.Event | None) -> None:
    total = report.requested - report.already_here
    done = 0
    for target in plan.targets:
        if not target.needed:
            continue
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break

        def tick(completed: int, before: int = done) -> None:
            if progress is not None:
                progress(before + completed, total)
            if cancel is not None and cancel.is_set():
                raise _Cancelled

        if method == "get":
            done += get(db, node, local, target, report, tick)
        else:
            done += move(db, node, local, target, report, tick, destination, ready=True)


def _locate(node: RemoteNode, uid: str, local: LocalNode) -> tuple[str, list[dict[str, str]]]:
    """Whether ``uid`` is a study or a series at the peer, and its instances (empty if it won't list them)."""
    for level, filters in (("study", QueryFilters(study_uid=uid)), ("series", QueryFilters(series_uid=uid))):
        found = query(node, level, filters, local)
        if found:
            study_uid = found[0].get("StudyInstanceUID", uid)
            image_filters = QueryFilters(study_uid=study_uid, series_uid=uid if level == "series" else "")
            try:
                images = query(node, "image", image_filters, local)
            except NetworkError:
                images = []
            return level.upper(), images
    raise NetworkError(f"{node.address} has no study or series {uid}")


# ---- C-MOVE / C-GET ----------------------------------------------------------------------------------------------

class _Cancelled(Exception):
    """Raised by a retrieve's progress tick when the user cancels: the association is aborted."""


def _identifier(target: RetrieveTarget):
    """The C-MOVE/C-GET identifier of a target: the whole study/series, or its missing instances."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = target.level
    ds.StudyInstanceUID = target.study_uid
    if target.series_uid:
        ds.SeriesInstanceUID = target.series_uid
    if target.missing:
        ds.SOPInstanceUID = target.missing
    return ds


def _follow(responses, node: RemoteNode, report: RetrieveReport, service: Service, tick,
            local: LocalNode | None = None, assoc=None) -> int:
    """Read C-MOVE/C-GET responses: progress from the pending ones, the final counts, plain-words failures.
    A cancel (``tick`` raising) aborts the association; a C-MOVE then counts the sub-operations the last pending
    response reported completed (a C-GET counts what it received itself)."""
    seen = [0]
    try:
        return _read_responses(responses, node, report, service, tick, local, seen)
    except _Cancelled:
        report.cancelled = True
        if assoc is not None and assoc.is_established:
            assoc.abort()
        if service == Service.MOVE:
            report.completed += seen[0]
        return seen[0]


def _read_responses(responses, node: RemoteNode, report: RetrieveReport, service: Service, tick,
                    local: LocalNode | None, seen: list[int]) -> int:
    completed = 0
    for status, _identifier_ds in responses:
        if status is None or "Status" not in status:
            report.errors.append(stopped_answering(node.address, service))
            break
        code = int(status.Status)
        completed = int(status.get("NumberOfCompletedSuboperations", completed) or 0)
        seen[0] = completed
        if code in PENDING_CODES:
            tick(completed)
            continue
        with contextlib.suppress(_Cancelled):  # the retrieve is over: nothing left to cancel
            tick(completed)
        report.completed += completed
        report.failed += int(status.get("NumberOfFailedSuboperations", 0) or 0)
        report.warning += int(status.get("NumberOfWarningSuboperations", 0) or 0)
        comment = str(status.get("ErrorComment", "") or "").strip()
        message = _final_status_problem(code, comment, completed, node, report, service, local or LocalNode())
        if message and message not in report.errors:
            report.errors.append(message)
    return completed


def _final_status_problem(code: int, comment: str, completed: int, node: RemoteNode, report: RetrieveReport,
                          service: Service, me: LocalNode) -> str:
    """The final C-MOVE/C-GET status in words ("" for success), with what to check."""
    hint = (f"The peer must know our AE title, host and port as a destination; add it to the peer's list of "
            f'nodes, e.g. for Orthanc: "DicomModalities": {{"dicomtui": ["{me.ae_title}", "<this host>", '
            f"{me.port}]}}")
    if code == Status.MOVE_DESTINATION_UNKNOWN:
        return f"{node.address} does not know the move destination {me.ae_title}: " \
               f"{qr_meaning(code, Service.MOVE)}. {hint}"
    if service == Service.MOVE and code == Status.CANNOT_UNDERSTAND and completed == 0 and report.failed == 0:
        return (f"{node.address} answered the C-MOVE with {qr_meaning(code, Service.MOVE)} without sending "
                f"anything{' (' + comment + ')' if comment else ''}. Most often the peer does not know the "
                f"move destination {me.ae_title}. {hint}")
    if code == Status.SUBOPERATIONS_OUT_OF_RESOURCES:
        return (f"{node.address}: {qr_meaning(code, service)}: the receiving side refused the instances "
                f"(disk full or too many files?)")
    if code == Status.SUBOPERATIONS_FAILED:
        return f"{node.address}: some sub-operations failed ({report.failed} failed, {completed} completed)"
    if code != Status.SUCCESS:
        return f"{node.address} answered the C-{service.upper()} with {qr_meaning(code, service)}" + \
               (f" ({comment})" if comment else "")
    return ""


@contextlib.contextmanager
def receiving(db, local: LocalNode) -> Iterator[None]:
    """Our listener for C-MOVEs to our AE title, for the duration: the one running for this database, or one
    started here (and stopped, after indexing what it received). Raises NetworkError when another program holds
    our port (another database's listener, :mod:`.identity`): the images would land there."""
    from .listener import Listener

    if port_open("127.0.0.1" if local.bind in ("0.0.0.0", "") else local.bind, local.port, MOVE_LISTENER_PROBE_S):
        if not identity.serves(db.root, local.port):
            raise NetworkError(_port_held_elsewhere(db, local))
        yield
        return
    listener = Listener(db.root, local)  # nobody listens for us: receive for the duration
    listener.start()
    try:
        yield
    finally:
        listener.stop()


def move(db, node: RemoteNode, local: LocalNode, target: RetrieveTarget, report: RetrieveReport, tick,
         destination: str, ready: bool = False) -> int:
    """One C-MOVE of ``target`` to ``destination``. To our AE title: our listener receives (``ready``: the caller
    holds :func:`receiving` already; else it is set up for this C-MOVE alone), and only what reached this database
    counts. Returns the sub-operations completed; counts and errors go to ``report``."""
    to_us = destination == local.ae_title  # else the images go to a third node, by the user's choice
    if to_us and not ready:
        with receiving(db, local):
            return move(db, node, local, target, report, tick, destination, ready=True)
    before = _here(db, target) if to_us else 0
    completed_before = report.completed
    ae = application_entity(local, node)
    ae.add_requested_context(MOVE)
    assoc = associate(ae, node)
    try:
        done = _follow(assoc.send_c_move(_identifier(target), destination, MOVE), node, report, Service.MOVE,
                       tick, LocalNode(destination, local.port), assoc)
    finally:
        if assoc.is_established:
            assoc.release()
    if to_us:
        done = _arrived(db, target, before, done, report, completed_before, node, local)
    return done


def _port_held_elsewhere(db, local: LocalNode) -> str:
    return (f"port {local.port} is held by a program that is not this database's listener (another database's "
            f"dicomtui listener, or another DICOM receiver): a C-MOVE to {local.ae_title} would deliver the images "
            f"there, not into {db.root}. Stop that program, retrieve with --method get, or give this database's "
            f"listener another port (dicomtui nodes local --port N, and the same port in the peer's entry for "
            f"{local.ae_title})")


def _here(db, target: RetrieveTarget) -> int:
    """How many instances of ``target`` the database holds."""
    if target.missing:
        return sum(db.find("instance", uid) is not None for uid in target.missing)
    from ..levels import Item, Level

    level, uid = (Level.SERIES, target.series_uid) if target.series_uid else (Level.STUDY, target.study_uid)
    row = db.find(level, uid)
    return len(db.instance_rows([Item(level, row["id"])], "id")) if row is not None else 0


def _arrived(db, target: RetrieveTarget, before: int, done: int, report: RetrieveReport, completed_before: int,
             node: RemoteNode, local: LocalNode) -> int:
    """What the C-MOVE really brought into the database: the peer's count of completed sub-operations says what
    it sent to our AE title's address, not where that landed. Fine when the database now holds at least as many
    of the requested instances as the peer sent (some may have been here before: sent again, replaced); else only
    the new ones count. A listener of this database running in another process indexes at the end of each
    association: wait for it a moment (at most ARRIVAL_WAIT_S)."""
    deadline = time.monotonic() + ARRIVAL_WAIT_S
    here = _here(db, target)
    while here < done and time.monotonic() < deadline:
        time.sleep(0.02)
        here = _here(db, target)
    if here >= done:
        return done
    arrived = max(here - before, 0)
    report.completed = completed_before + arrived
    report.errors.append(f"{node.address} reports {done} instances sent to {local.ae_title}, but only {arrived} "
                         f"arrived in this database ({db.root}): the peer may send {local.ae_title} to another "
                         f"host or port than ours ({local.port}) — check its entry for {local.ae_title}")
    return arrived


def get(db, node: RemoteNode, local: LocalNode, target: RetrieveTarget, report: RetrieveReport, tick) -> int:
    """One C-GET of ``target``: the peer's C-STOREs on the same association are made durable in the
    database storage (as ``local.sync`` says: :func:`.listener.store_received`) and indexed (even when cancelled:
    nothing received is lost). Returns instances received."""
    from pynetdicom import StoragePresentationContexts, build_role, evt

    from .listener import store_received

    ae = application_entity(local, node)
    ae.add_requested_context(GET)
    roles = []
    for context in StoragePresentationContexts[:127]:  # 128 contexts at most, one is the C-GET itself
        if context.abstract_syntax is not None:
            ae.add_requested_context(context.abstract_syntax)
            roles.append(build_role(context.abstract_syntax, scp_role=True))
    received = []

    def on_store(event) -> int:
        record, status, _problem = store_received(db.root, event.encoded_dataset(include_meta=True), local.sync,
                                                   local.min_free_bytes)
        if record is not None:
            received.append(record)
        return status

    assoc = associate(ae, node, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        done = _follow(assoc.send_c_get(_identifier(target), GET), node, report, Service.GET, tick, assoc=assoc)
    finally:
        if assoc.is_established:
            assoc.release()
        for start in range(0, len(received), 500):  # indexed even when cancelled: nothing received is lost
            db.add_files(received[start : start + 500])
    if report.cancelled:
        report.completed += len(received)
        return len(received)
    return done
