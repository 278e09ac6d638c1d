"""Open an association with a remote node — pynetdicom's (echo, find, move, get) or our lean C-STORE one
(:mod:`.scu`, for send) — and turn every way it can fail into one sentence that names the peer and says what to
check. Each sentence is written once, here.

Raises :class:`~dicomtui.core.errors.NetworkError` (the CLI prints it and exits 2, the TUI shows it).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

from ..errors import NetworkError, ServiceNotOffered
from .nodes import LocalNode, RemoteNode
from .status import reject_reason
from .wire import STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE, VERIFICATION, quick_ack, tcp_tuned

PROBE_S = 5.0  # longest wait of a TCP probe (port open?) after pynetdicom failed to associate


# ---- the sentences ---------------------------------------------------------------------------------------------

def _cannot_resolve(node: RemoteNode, exc: OSError) -> NetworkError:
    return NetworkError(f"{node.address}: cannot resolve host {node.host!r} ({exc.strerror or exc})")


def _refused(node: RemoteNode) -> NetworkError:
    return NetworkError(f"{node.address}: connection refused — is the peer running and listening on "
                        f"{node.host}:{node.port}? (firewall, wrong port)")


def _tls_failed(node: RemoteNode, problem: str) -> NetworkError:
    return NetworkError(f"{node.address}: the TLS handshake failed: {problem} — check the CA file, our client "
                        f"certificate and key, and that the peer speaks TLS on this port")


def _rejected(node: RemoteNode, source: int, reason: int) -> NetworkError:
    return NetworkError(f"{node.address} rejected the association: {reject_reason(source, reason)}")


def _aborted(node: RemoteNode, detail: str = "") -> NetworkError:
    return NetworkError(f"{node.address}: the association was aborted or timed out after {node.timeout:g} s — check "
                        f"that {node.host}:{node.port} is a DICOM service and that it knows our AE title"
                        + (f" ({detail})" if detail else ""))


# What a context we ask for offers, in the words of the sentence below (PS3.4 C.6.2.1, A.4)
_OFFERS = {STUDY_ROOT_FIND: ("Study Root C-FIND", "no query"), STUDY_ROOT_MOVE: ("Study Root C-MOVE", "no retrieve"),
           STUDY_ROOT_GET: ("Study Root C-GET", "no retrieve by C-GET"), VERIFICATION: ("Verification", "no C-ECHO")}


def _no_context(node: RemoteNode, abstract_syntax: str) -> ServiceNotOffered:
    name, offers = _OFFERS.get(abstract_syntax, (abstract_syntax, "not this service"))
    return ServiceNotOffered(f"{node.address}: the peer accepted the association but no {name} context — it "
                             f"offers {offers} (a storage-only service such as DCMTK storescp, or not configured "
                             f"for it); ask another node, or the peer's administrator")


# ---- probes ----------------------------------------------------------------------------------------------------

def resolve(node: RemoteNode) -> None:
    """Raise NetworkError when the node's host name does not resolve, or it has none (a DICOMweb-only node)."""
    if not node.dimse:
        raise NetworkError(f"node {node.name} speaks DICOMweb only ({node.url}): it has no DIMSE address "
                           f"AE@HOST:PORT for this DIMSE operation")
    try:
        socket.getaddrinfo(node.host, node.port)
    except OSError as exc:
        raise _cannot_resolve(node, exc) from None


def connect_seconds(host: str, port: int, timeout: float) -> float:
    """Open (and close at once) a TCP connection to ``host:port``: the seconds it took. Raises OSError."""
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout):
        return time.monotonic() - start


def port_open(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        connect_seconds(host, port, timeout)
    except OSError:
        return False
    return True


def tls_problem(node: RemoteNode, context: ssl.SSLContext) -> str:
    """Repeat the TLS handshake alone to say why it failed (pynetdicom only reports a closed connection)."""
    try:
        with socket.create_connection((node.host, node.port), timeout=min(node.timeout, PROBE_S)) as raw, \
                context.wrap_socket(raw, server_hostname=node.host if node.tls_verify else None) as tls:
            tls.recv(1)  # the peer sends nothing first; a refusal of our certificate arrives here
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except OSError as exc:
        return "" if isinstance(exc, socket.timeout) else str(exc)
    return ""


def tune_socket(event) -> None:
    """pynetdicom EVT_CONN_OPEN handler: TCP_NODELAY (without it each small message we send waits for the peer's
    delayed ACK, ~40 ms; PEERS.md, pynetdicom), and every read acknowledged at once (:func:`.wire.quick_ack`, so
    that a peer sending with Nagle on never waits for ours: Orthanc's C-STOREs of a C-GET took 49 ms each).

    pynetdicom reads in its own loop (``AssociationSocket.recv``); the association's instance of it is wrapped
    here, the one place we reach into pynetdicom's transport."""
    assoc_socket: Any = getattr(event.assoc.dul, "socket", None)
    sock = getattr(assoc_socket, "socket", None)
    if assoc_socket is None or sock is None or not tcp_tuned(sock):
        return
    plain_recv = assoc_socket.recv

    def recv(nr_bytes: int) -> bytearray:
        data = plain_recv(nr_bytes)
        quick_ack(sock)
        return data

    assoc_socket.recv = recv


# ---- pynetdicom (echo, find, move, get) ------------------------------------------------------------------------

def application_entity(local: LocalNode, node: RemoteNode):
    """A pynetdicom ``AE`` with our AE title and the node's timeouts (connection: at most 10 s)."""
    from pynetdicom import AE

    ae = AE(ae_title=local.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = node.timeout
    ae.connection_timeout = min(node.timeout, 10.0)
    return ae


def associate(ae, node: RemoteNode, ext_neg: list | None = None, handlers: Sequence[tuple] = ()):
    """Open a pynetdicom association with ``node`` (the presentation contexts are those ``ae`` requests; the
    first is the service's, e.g. Study Root C-FIND). Returns the established ``pynetdicom.Association``; raises
    NetworkError with the reason otherwise, also when the peer accepted the association but not the first
    context (pynetdicom aborts an association without any accepted context itself)."""
    from pynetdicom import evt
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ

    rejected: dict[str, Any] = {}
    accepted: dict[str, Any] = {}
    service = str(ae.requested_contexts[0].abstract_syntax) if ae.requested_contexts else ""

    def on_pdu(event) -> None:
        # Taken from the PDU as the DUL receives it, not from the ACSE: when a local peer rejects within
        # microseconds, pynetdicom 3.0's requestor may find the transport already closed by the reject before it
        # waits for the answer, and then reports an abort (1 rejection in 60 to 300 here; tests/test_net_loopback.py)
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            rejected["source"], rejected["reason"] = event.pdu.source, event.pdu.reason_diagnostic
        elif isinstance(event.pdu, A_ASSOCIATE_AC):  # context ids are 1, 3, 5 … in the order ae requested them
            accepted["ids"] = {item.context_id for item in event.pdu.presentation_context if item.result == 0}

    resolve(node)
    context = node.ssl_context()
    tls_args = (context, node.host if node.tls_verify else None) if context is not None else None
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg, tls_args=tls_args,
                         evt_handlers=[(evt.EVT_CONN_OPEN, tune_socket), (evt.EVT_PDU_RECV, on_pdu), *handlers])
    if "ids" in accepted and service and 1 not in accepted["ids"]:  # the first requested context has id 1
        if assoc.is_established:
            assoc.release()
        raise _no_context(node, service)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected or rejected:
        reason = rejected.get("reason")
        raise _rejected(node, int(rejected.get("source") or 0), int(getattr(reason, "value", reason) or 0))
    if not port_open(node.host, node.port, min(node.timeout, PROBE_S)):
        raise _refused(node)
    if context is not None:
        problem = tls_problem(node, context)
        if problem:
            raise _tls_failed(node, problem)
    raise _aborted(node)


# ---- ours (send) -----------------------------------------------------------------------------------------------

def store_association(local: LocalNode, node: RemoteNode, contexts: list[tuple[str, str]]):
    """Open our lean C-STORE association (:class:`.scu.StoreAssociation`) proposing ``contexts`` (abstract
    syntax, transfer syntax), one presentation context each. Raises NetworkError with the reason."""
    from .scu import AssociationFailed, StoreAssociation

    resolve(node)
    context = node.ssl_context()
    try:
        sock = socket.create_connection((node.host, node.port), timeout=min(node.timeout, 10.0))
    except ConnectionRefusedError:
        raise _refused(node) from None
    except OSError as exc:
        raise NetworkError(f"{node.address}: cannot connect to {node.host}:{node.port} "
                           f"({exc.strerror or exc or 'timed out'})") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        try:
            sock.settimeout(node.timeout)
            sock = context.wrap_socket(sock, server_hostname=node.host if node.tls_verify else None)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise _tls_failed(node, getattr(exc, "reason", None) or str(exc)) from None
    try:
        return StoreAssociation.open(sock, local.ae_title, node.ae_title, contexts, node.timeout)
    except AssociationFailed as exc:
        sock.close()
        if exc.rejected is not None:
            _result, source, reason = exc.rejected
            raise _rejected(node, source, reason) from None
        raise _aborted(node, str(exc)) from None
