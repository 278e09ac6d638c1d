"""C-STORE instance files to a remote node (PS3.4 B, Storage SCU) over our lean association (:mod:`.scu`).

The send stall: pynetdicom's requestor polls with 1 ms sleeps and its reactor can take the C-STORE response
that ``send_c_store`` waits for (see ``bench/pynetdicom_stall.py``), so send uses :mod:`.scu`. Should the peer stop
answering anyway, we reconnect and send the instance again (MAX_RECONNECTS times).

A ``transform`` (``Dataset -> Dataset | None``, the export's hook: issue 17's de-identification) makes each
instance read by pydicom, transformed and encoded; None leaves the instance out (``SendReport.left_out``). Without
one, the fast path sends the file's bytes as stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..dicomfile import captured_warnings, read_dataset
from ..errors import NetworkError
from .associate import store_association
from .nodes import LocalNode, RemoteNode
from .status import category, status_meaning
from .wire import EXPLICIT_LE, IMPLICIT_LE

if TYPE_CHECKING:
    from pydicom import Dataset

    Transform = Callable[[Dataset], Dataset | None]

MAX_CONTEXTS = 128  # presentation contexts in one A-ASSOCIATE-RQ (PS3.8 9.3.2: context ids 1-255, odd)
MAX_RECONNECTS = 3


@dataclass
class SendItem:
    """One instance: its C-STORE status (None: not sent, or no answer) and that status in words."""

    sop_instance_uid: str
    path: str
    status: int | None
    meaning: str
    decompressed: bool = False
    notes: list[str] = field(default_factory=list)  # the library's warnings on reading the file

    @property
    def category(self) -> str:
        """"success", "warning" or "failure" (and "unknown" for codes outside PS3.7 C)."""
        return "failure" if self.status is None else category(self.status)


@dataclass
class SendReport:
    """What a send did: one item per instance tried, in order."""

    node: str  # the peer's address, AE@host:port
    items: list[SendItem] = field(default_factory=list)
    error: str = ""  # why the send stopped before the end
    notes: list[str] = field(default_factory=list)  # what went wrong and was recovered from
    cancelled: bool = False
    not_sent: int = 0  # instances left out because the send stopped early (cancelled, or the peer ended it)
    left_out: list[str] = field(default_factory=list)  # paths the transform left out (not sent, not failed)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"success": 0, "warning": 0, "failure": 0}
        for item in self.items:
            counts[item.category if item.category in counts else "failure"] += 1
        return counts

    def summary(self) -> str:
        """The result as the CLI prints it on stdout: the counts, then one line per instance not stored
        successfully (category, SOP Instance UID, status in words; tab-separated, indented)."""
        counts = self.counts
        lines = [f"sent to {self.node}: {counts['success']} succeeded, {counts['warning']} with warnings, "
                 f"{counts['failure']} failed"]
        lines += [f"  {item.category}\t{item.sop_instance_uid}\t{item.meaning}"
                  for item in self.items if item.category != "success"]
        if self.left_out:
            lines.append(f"  {len(self.left_out)} left out by the transform (not sent)")
        return "\n".join(lines)

    def problems(self) -> list[str]:
        """The sentences the CLI prints on stderr after the summary: notes ("note: …"), then the error."""
        return [f"note: {note}" for note in self.notes] + ([self.error] if self.error else [])


def offered_contexts(files: list[dict[str, Any]], node: RemoteNode) -> list[tuple[str, str]]:
    """(SOP class, transfer syntax) pairs to propose: each class in its stored syntaxes, then explicit and
    implicit VR little endian (the fallbacks every SCP accepts), one presentation context each."""
    pairs: dict[str, set[str]] = {}
    for f in files:
        pairs.setdefault(f["SOPClassUID"], set()).add(f["TransferSyntaxUID"] or IMPLICIT_LE)
    contexts: list[tuple[str, str]] = []
    for sop_class, syntaxes in pairs.items():
        offered = sorted(syntaxes) + [ts for ts in (EXPLICIT_LE, IMPLICIT_LE) if ts not in syntaxes]
        for ts in offered:  # one context per syntax, so that the peer can accept some and refuse others
            if len(contexts) >= MAX_CONTEXTS:
                raise NetworkError(f"{node.address}: more than {MAX_CONTEXTS} SOP class / transfer syntax pairs; "
                                   f"send fewer kinds of object at once")
            contexts.append((sop_class, ts))
    return contexts


def send(files: list[dict[str, Any]], node: RemoteNode, local: LocalNode | None = None,
         progress: Callable[[int, int], None] | None = None,
         cancel: threading.Event | None = None, transform: Transform | None = None,
         on_item: Callable[[SendItem], None] | None = None) -> SendReport:
    """C-STORE instance rows (``path``, ``SOPClassUID``, ``TransferSyntaxUID``, ``SOPInstanceUID``; paths
    absolute) over one association. Each file goes in its stored transfer syntax when the peer accepts it,
    else decompressed to explicit VR little endian. ``progress(done, total)`` after each instance; ``on_item``
    with each instance's result as soon as the peer answered (the forwarder marks it sent there). Setting
    ``cancel`` stops before the next instance and releases the association; the report then has ``cancelled``
    and ``not_sent``. ``transform`` (see the module docstring) changes each data set before it is encoded; the
    items then name the SOP Instance UIDs sent. Raises NetworkError when no association opens."""
    local = local or LocalNode()
    report = SendReport(node.address)
    if not files:
        return report
    contexts = offered_contexts(files, node)
    assoc = store_association(local, node, contexts)
    reconnects = 0
    try:
        n = 0
        while n < len(files):
            if cancel is not None and cancel.is_set():
                report.cancelled, report.not_sent = True, len(files) - n
                report.error = (f"cancelled: {report.not_sent} of {len(files)} instances not sent to {node.address};"
                                f" the association was released, instances sent until then stay at the peer")
                break
            item = _send_one(assoc, files[n], transform)
            if not assoc.is_established and item is not None and item.status is None and reconnects < MAX_RECONNECTS:
                # the peer stopped answering or aborted mid-send: one new association, the same file again
                reconnects += 1
                report.notes.append(f"{node.address} stopped answering during instance {n + 1}: reconnected and "
                                    f"sent it again")
                assoc = store_association(local, node, contexts)
                continue
            if item is None:
                report.left_out.append(files[n]["path"])
            else:
                report.items.append(item)
                if on_item is not None:
                    on_item(item)
                report.notes += [f"{item.path}: {note}" for note in item.notes]
            n += 1
            if progress is not None:
                progress(n, len(files))
            if not assoc.is_established and n < len(files):
                report.not_sent = len(files) - n
                report.error = f"{node.address} ended the association after {n} of {len(files)} instances"
                break
    finally:
        assoc.release()
    return report


def _send_one(assoc, f: dict[str, Any], transform: Transform | None = None) -> SendItem | None:
    """One instance: the file's dataset as stored when the peer accepts its transfer syntax, else decoded
    (and decompressed) with pydicom and encoded in explicit (or implicit) VR little endian; with a
    ``transform``, always decoded and transformed (None: the transform left it out)."""
    from .scu import PeerGone, read_for_sending

    path = f["path"]
    sop_class, sop_instance = f["SOPClassUID"], f["SOPInstanceUID"]
    stored_ts = f["TransferSyntaxUID"] or IMPLICIT_LE
    accepted = {ts for abstract, ts in assoc.accepted.values() if abstract == sop_class}
    if not accepted:
        return SendItem(sop_instance, path, None, f"the peer accepts no transfer syntax for SOP class {sop_class}")
    decompressed = False
    notes: list[str] = []
    try:
        # an indexed file passed the import's header walk: a bare data set (no file meta) is sent too
        fast = transform is None and stored_ts in accepted
        raw = read_for_sending(path, accepted=True) if fast else None
        if raw is not None and raw[2] in accepted:
            data, offset, ts = raw
            dataset: Any = memoryview(data)[offset:]
        else:
            dataset, ts, notes, sop_instance = _decoded(path, stored_ts, accepted, transform, sop_instance)
            if dataset is False:
                return None
            if dataset is None:
                return SendItem(sop_instance, path, None,
                                f"the peer accepts only {', '.join(sorted(accepted))} for this object",
                                notes=notes)
            decompressed = ts != stored_ts
    except Exception as exc:  # noqa: BLE001 - one unreadable file: report it, send the rest
        return SendItem(sop_instance, path, None, f"not sent: {type(exc).__name__}: {exc}")
    try:
        status = assoc.store(assoc.context_for(sop_class, ts), sop_class, sop_instance, dataset)
    except PeerGone as exc:
        return SendItem(sop_instance, path, None, f"no answer (timeout or abort: {exc})", decompressed, notes)
    return SendItem(sop_instance, path, status, status_meaning(status), decompressed, notes)


def _decoded(path: str, stored_ts: str, accepted: set[str], transform: Transform | None = None,
             sop_instance: str = "") -> tuple[Any, str, list[str], str]:
    """The dataset decoded with pydicom (as the import read it, also without a file meta), transformed when asked,
    decompressed if need be, encoded in a syntax the peer accepts (None: none fits; False: the transform left it
    out); that syntax, pydicom's warnings about the file, and the SOP Instance UID to send."""
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    opened = read_dataset(path, pixels=True)
    ds = opened.dataset
    if transform is not None:
        changed = transform(ds)
        if changed is None:
            return False, stored_ts, opened.warnings, sop_instance
        ds, sop_instance = changed, str(changed.SOPInstanceUID)
    file_ts = opened.transfer_syntax or stored_ts
    if file_ts in accepted:
        target = file_ts
    else:
        if UID(file_ts).is_compressed:
            with captured_warnings() as caught:
                ds.decompress(generate_instance_uid=False)  # to explicit VR little endian; same instance
            opened.warnings += caught
        target = EXPLICIT_LE if EXPLICIT_LE in accepted else IMPLICIT_LE
        if target not in accepted:
            return None, target, opened.warnings, sop_instance
    uid = UID(target)
    with captured_warnings() as caught:
        encoded = encode(ds, uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated)
    return encoded, target, opened.warnings + caught, sop_instance
