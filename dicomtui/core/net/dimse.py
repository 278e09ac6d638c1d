"""SCU operations over DIMSE (pynetdicom): echo and send, with failures explained in plain words.

Every failure names the peer and says what to check; statuses are given in hex with their meaning.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .listener import set_nodelay
from .nodes import LocalNode, RemoteNode

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
MAX_CONTEXTS = 128

# A-ASSOCIATE-RJ reasons (PS3.8 9.3.4), by (source, reason)
_REJECT_REASONS = {
    (1, 1): "no reason given by the peer",
    (1, 2): "the peer does not support the application context",
    (1, 3): "our calling AE title is not recognised by the peer: add it to the peer's list of known nodes",
    (1, 7): "the called AE title is not recognised by the peer: check the node's AE title",
    (2, 1): "no reason given (presentation layer)",
    (2, 2): "the peer does not support this protocol version",
    (3, 1): "the peer is busy (too many associations): try again later",
    (3, 2): "the peer has a local limit exceeded: try again later",
}


class DimseError(Exception):
    """A DIMSE operation failed; the message names the peer and says what to check."""


@dataclass
class EchoResult:
    ok: bool
    message: str
    seconds: float = 0.0


@dataclass
class SendItem:
    sop_instance_uid: str
    path: str
    status: int | None
    meaning: str
    decompressed: bool = False

    @property
    def category(self) -> str:
        if self.status is None:
            return "failure"
        from pynetdicom.status import code_to_category

        return code_to_category(self.status).lower()


@dataclass
class SendReport:
    node: str
    items: list[SendItem] = field(default_factory=list)
    error: str = ""

    @property
    def counts(self) -> dict[str, int]:
        counts = {"success": 0, "warning": 0, "failure": 0}
        for item in self.items:
            counts[item.category if item.category in counts else "failure"] += 1
        return counts


def status_meaning(code: int) -> str:
    """'0xA700 Failure: Refused: Out of resources' style text for a C-STORE status."""
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category

    category, text = STORAGE_SERVICE_CLASS_STATUS.get(code, (code_to_category(code), ""))
    return f"0x{code:04X} {category}" + (f": {text}" if text else "")


def _ae(local: LocalNode, node: RemoteNode):
    from pynetdicom import AE

    ae = AE(ae_title=local.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = node.timeout
    ae.connection_timeout = min(node.timeout, 10.0)
    return ae


def _associate(ae, node: RemoteNode):
    """Open an association, turning every way it can fail into a sentence about the peer."""
    from pynetdicom import evt

    rejected: dict[str, Any] = {}

    def on_acse(event) -> None:
        primitive = event.primitive
        if getattr(primitive, "result", None) in (1, 2):
            rejected["source"], rejected["reason"] = primitive.result_source, primitive.diagnostic

    try:
        socket.getaddrinfo(node.host, node.port)
    except OSError as exc:
        raise DimseError(f"{node.address}: cannot resolve host {node.host!r} ({exc.strerror or exc})") from None
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title,
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay), (evt.EVT_ACSE_RECV, on_acse)])
    if assoc.is_established:
        return assoc
    if assoc.is_rejected or rejected:
        key = (int(rejected.get("source") or 0), int(getattr(rejected.get("reason"), "value", rejected.get("reason"))
                                                      or 0))
        why = _REJECT_REASONS.get(key, f"source {key[0]}, reason {key[1]}")
        raise DimseError(f"{node.address} rejected the association: {why}")
    if _port_closed(node):
        raise DimseError(f"{node.address}: connection refused — is the peer running and listening on "
                         f"{node.host}:{node.port}? (firewall, wrong port)")
    raise DimseError(f"{node.address}: the association was aborted or timed out after {node.timeout:g} s — check "
                     f"that {node.host}:{node.port} is a DICOM service and that it knows our AE title")


def _port_closed(node: RemoteNode) -> bool:
    try:
        with socket.create_connection((node.host, node.port), timeout=min(node.timeout, 5.0)):
            return False
    except OSError:
        return True


def echo(node: RemoteNode, local: LocalNode | None = None) -> EchoResult:
    """C-ECHO the node: ok, or the plain-words reason it failed."""
    import time

    from pynetdicom.sop_class import Verification

    local = local or LocalNode()
    ae = _ae(local, node)
    ae.add_requested_context(Verification)
    start = time.monotonic()
    try:
        assoc = _associate(ae, node)
    except DimseError as exc:
        return EchoResult(False, str(exc))
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    seconds = time.monotonic() - start
    if status is None or "Status" not in status:
        return EchoResult(False, f"{node.address} did not answer the C-ECHO (timeout or abort)", seconds)
    if status.Status != 0:
        return EchoResult(False, f"{node.address} answered the C-ECHO with status 0x{status.Status:04X}", seconds)
    return EchoResult(True, f"{node.address} answers C-ECHO ({seconds * 1000:.0f} ms)", seconds)


def send(files: list[dict[str, Any]], node: RemoteNode, local: LocalNode | None = None,
         progress: Callable[[int, int], None] | None = None) -> SendReport:
    """C-STORE instance rows (``path``, ``SOPClassUID``, ``TransferSyntaxUID``, ``SOPInstanceUID``; paths
    absolute) over one association. Each file goes in its stored transfer syntax when the peer accepts it,
    else decompressed to explicit VR little endian."""
    from pydicom.uid import UID

    local = local or LocalNode()
    report = SendReport(node.address)
    if not files:
        return report
    ae = _ae(local, node)
    pairs: dict[str, set[str]] = {}
    for f in files:
        pairs.setdefault(f["SOPClassUID"], set()).add(f["TransferSyntaxUID"] or IMPLICIT_LE)
    contexts = 0
    for sop_class, syntaxes in pairs.items():
        offered = sorted(syntaxes) + [ts for ts in (EXPLICIT_LE, IMPLICIT_LE) if ts not in syntaxes]
        for ts in offered:  # one context per syntax, so that the peer can accept some and refuse others
            if contexts >= MAX_CONTEXTS:
                raise DimseError(f"{node.address}: more than {MAX_CONTEXTS} SOP class / transfer syntax pairs; "
                                 f"send fewer kinds of object at once")
            ae.add_requested_context(sop_class, [ts])
            contexts += 1
    assoc = _associate(ae, node)
    try:
        accepted: dict[str, set[str]] = {}
        for cx in assoc.accepted_contexts:
            accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
        for n, f in enumerate(files, 1):
            report.items.append(_send_one(assoc, f, accepted.get(f["SOPClassUID"], set()), UID))
            if progress is not None:
                progress(n, len(files))
            if not assoc.is_established:
                report.error = f"{node.address} ended the association after {n} of {len(files)} instances"
                break
    finally:
        if assoc.is_established:
            assoc.release()
    return report


def _send_one(assoc, f: dict[str, Any], accepted: set[str], UID) -> SendItem:
    import pydicom

    path = f["path"]
    stored_ts = f["TransferSyntaxUID"] or IMPLICIT_LE
    if not accepted:
        return SendItem(f["SOPInstanceUID"], path, None,
                        f"the peer accepts no transfer syntax for SOP class {f['SOPClassUID']}")
    try:
        decompressed = False
        if stored_ts in accepted:
            dataset: Any = Path(path)
        else:
            ds = pydicom.dcmread(path)
            if UID(stored_ts).is_compressed:
                ds.decompress(generate_instance_uid=False)  # to explicit VR little endian; same instance
            target = EXPLICIT_LE if EXPLICIT_LE in accepted else IMPLICIT_LE
            if target not in accepted:
                return SendItem(f["SOPInstanceUID"], path, None,
                                f"the peer accepts only {', '.join(sorted(accepted))} for this object")
            ds.file_meta.TransferSyntaxUID = target
            dataset, decompressed = ds, True
        status = assoc.send_c_store(dataset)
    except Exception as exc:  # noqa: BLE001 - one unreadable file: report it, send the rest
        return SendItem(f["SOPInstanceUID"], path, None, f"not sent: {type(exc).__name__}: {exc}")
    if status is None or "Status" not in status:
        return SendItem(f["SOPInstanceUID"], path, None, "no answer (timeout or abort)", decompressed)
    return SendItem(f["SOPInstanceUID"], path, int(status.Status), status_meaning(int(status.Status)), decompressed)
