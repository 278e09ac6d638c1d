"""A lean C-STORE / C-ECHO SCP: blocking sockets, one thread per association, each instance streamed to a file.

pynetdicom's acceptor polls (1 ms sleeps in its DUL and association reactor threads, 4 KB socket reads) and its
per-message cost, not our storage, bounded how fast the listener received. Here one thread per association reads
whole PDUs with ``recv_into`` and writes each data fragment straight into the instance's temporary file; the only
waits are on the socket and on the disk.

What pynetdicom still does for us: decoding the A-ASSOCIATE-RQ PDU, presentation context negotiation (including
SCP/SCU role selection) and encoding the A-ASSOCIATE-AC/RJ and A-ABORT PDUs (``pynetdicom.pdu``,
``pynetdicom.presentation``): they run once per association. Written by hand in :mod:`.wire`, because
pynetdicom's versions cost more than the rest of an image: the P-DATA-TF framing, the DIMSE command sets (implicit
VR little endian, a handful of elements) and the file meta information (checked against pydicom's encoder in the
tests). Where each instance's temporary file is made is the caller's choice (a :data:`.incoming.TempFileFactory`).

Not supported (not needed by a storage SCP): asynchronous operations (the peer gets the default window of one),
extended/user identity negotiation (ignored, as PS3.7 allows), DIMSE services other than C-STORE and C-ECHO.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .incoming import Incoming, Spares, TempFileFactory
from .status import (
    ABORT_INVALID_PARAMETER,
    ABORT_UNEXPECTED_PDU,
    ABORT_UNRECOGNISED_PDU,
    ABORT_UNSPECIFIED,
    REJECT_BUSY,
    REJECT_CALLING_AE,
    REJECT_CONTEXT,
    REJECT_VERSION,
    Status,
)
from .wire import (
    ABORT,
    APPLICATION_CONTEXT,
    ASSOCIATE_RQ,
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
    MAX_ASSOCIATE_RQ,
    MAX_PDU,
    NO_DATASET,
    P_DATA,
    PDU_HEADER,
    PDV_HEADER,
    READ_STEP,
    RELEASE_RP_PDU,
    RELEASE_RQ,
    VERIFICATION,
    AbortAssociation,
    abort_pdu,
    decode_command,
    file_meta,
    p_data,
    peer_text,
    quick_ack,
    response,
    tcp_tuned,
    u16,
    uid_text,
    user_information,
)

log = logging.getLogger("dicomtui.scp")

# The ARTIM timer (PS3.8 9.1.5): the WHOLE A-ASSOCIATE-RQ must have arrived this long after the connection opened
# (one deadline, not one per read: 12 peers sending a byte every 5 s used to hold the listener for ever). A TLS
# handshake counts in it (Python's ssl applies a socket's timeout to the whole handshake, as one deadline).
ARTIM_S = 30.0
IDLE_S = 60.0  # once established, each PDU must arrive whole within this long of the previous one, or we abort
# Open TCP connections at once (negotiating, established, closing): above it a new connection is closed at once
# and logged. Larger than max_associations (only established associations count there) so that peers still
# negotiating cannot lock real ones out; small enough that connections announcing large PDUs cost little (each
# holds at most its buffer, 64 KiB until bytes arrive, and a thread).
MAX_CONNECTIONS = 64


@dataclass
class Association:
    """One accepted association, as the handler sees it."""

    calling_ae: str
    called_ae: str
    address: str
    port: int
    contexts: dict[int, tuple[str, str]] = field(default_factory=dict)  # accepted: id → (abstract, transfer)
    peer_max_pdu: int = 0
    data: dict[str, Any] = field(default_factory=dict)  # for the handler's own use


class Handler:
    """What the SCP calls; the listener overrides these. Every call comes from the association's thread."""

    def established(self, assoc: Association) -> None:
        pass

    def stored(self, assoc: Association, tmp: Path, size: int) -> int:
        """``tmp`` holds a complete file (meta + dataset) of ``size`` bytes, flushed when the SCP's
        ``flush_files`` says so: make it durable in place (or delete it) and return the C-STORE status to answer."""
        tmp.unlink(missing_ok=True)
        return Status.SUCCESS

    def store_failed(self, assoc: Association, problem: str) -> None:
        pass

    def ended(self, assoc: Association, how: str) -> None:
        """``how``: "released" or "aborted"."""


@functools.cache
def storage_contexts() -> tuple:
    """What we accept: every storage SOP class in any transfer syntax pynetdicom knows, and Verification. Built
    once (70 ms: every listener start, e.g. one per C-MOVE, paid it) and shared: pynetdicom's negotiation only
    reads them."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
    from pynetdicom.presentation import build_context

    contexts = [build_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES) for cx in AllStoragePresentationContexts
                if cx.abstract_syntax is not None]
    contexts.append(build_context(VERIFICATION, ALL_TRANSFER_SYNTAXES[:4]))
    return tuple(contexts)


class StoreSCP:
    """Accept associations on ``bind:port``; each incoming instance is written to a file from ``new_file``
    and handed to ``handler.stored``."""

    def __init__(self, ae_title: str, bind: str, port: int, handler: Handler, new_file: TempFileFactory, *,
                 ssl_context=None, allow: Iterable[str] = (), max_associations: int = 10,
                 max_connections: int = MAX_CONNECTIONS, artim_s: float | None = None,
                 idle_s: float | None = None, flush_files: bool = True):
        """``max_associations``: established associations at once (more are rejected, "local limit exceeded");
        ``max_connections``: open connections at once (more are closed unanswered); ``artim_s``: seconds for
        the whole A-ASSOCIATE-RQ; ``idle_s``: seconds for each PDU once established (None: the module's
        ARTIM_S and IDLE_S, read here); ``flush_files``: flush each temp file before ``handler.stored`` (False
        when the handler makes files durable another way, or not at all: :mod:`.durable`)."""
        self.ae_title = ae_title
        self.handler = handler
        self.new_file = new_file  # the temporary file of each incoming instance (the listener's: in incoming/)
        self.flush_files = flush_files
        self.ssl_context = ssl_context
        self.allow = {a.strip() for a in allow}
        self.max_associations = max_associations
        self.max_connections = max(max_connections, max_associations)
        self.artim_s = ARTIM_S if artim_s is None else artim_s
        self.idle_s = IDLE_S if idle_s is None else idle_s
        self._contexts = storage_contexts()
        self._sock = socket.create_server((bind, port), backlog=64)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._active: dict[threading.Thread, socket.socket] = {}  # every open connection
        # the established associations, the only ones counted against max_associations: not the connections still
        # negotiating (a slow peer would lock real ones out), nor those whose association is over (rejected,
        # released, aborted) while their socket closes gently (up to 2 s), or a peer that reconnects at once after
        # a release would be refused as "local limit exceeded"
        self._admitted: set[threading.Thread] = set()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="scp-accept", daemon=True)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting; abort open associations (a write in progress completes first) and wait for them."""
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(timeout)
        self._sock.close()
        with self._lock:
            active = list(self._active.items())
        for _thread, conn in active:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread, _conn in active:
            thread.join(timeout)
        self._wake_r.close()
        self._wake_w.close()

    # ---- accepting -------------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._stopping or self._wake_r in ready:
                    return
                try:
                    conn, address = self._sock.accept()
                except OSError:
                    continue
                with self._lock:
                    full = len(self._active) >= self.max_connections
                if full:
                    with contextlib.suppress(OSError):
                        conn.close()
                    log.warning("refused a connection from %s:%d: %d connections open already (the most we "
                                "keep)", address[0], address[1], self.max_connections)
                    continue
                thread = threading.Thread(target=self._serve, args=(conn, address), daemon=True,
                                          name=f"scp-{address[0]}:{address[1]}")
                with self._lock:
                    self._active[thread] = conn
                thread.start()

    def _serve(self, conn: socket.socket, address) -> None:
        artim_deadline = time.monotonic() + self.artim_s
        try:
            quick = tcp_tuned(conn)
            conn.settimeout(self.artim_s)
            if self.ssl_context is not None:
                try:
                    tls = self.ssl_context.wrap_socket(conn, server_side=True)
                except (OSError, ValueError) as exc:
                    log.warning("TLS handshake with %s:%d failed: %s", address[0], address[1], exc)
                    return
                with self._lock:
                    self._active[threading.current_thread()] = tls
                conn = tls
            _Connection(self, conn, address, artim_deadline, quick).run()
        except Exception:  # noqa: BLE001 - one association's bug must not take the listener down
            log.exception("association from %s:%d ended by an error", address[0], address[1])
        finally:
            self.association_over()
            _close_gently(conn)
            with self._lock:
                self._active.pop(threading.current_thread(), None)

    def association_over(self) -> None:
        """The calling thread's association has ended: called before its last PDU (A-ASSOCIATE-RJ, A-RELEASE-RP,
        A-ABORT) is sent, so that the peer, once it has read it, can open the next association at once."""
        with self._lock:
            self._admitted.discard(threading.current_thread())

    def _admit(self) -> bool:
        """Count the calling thread's association as established, unless max_associations are already."""
        with self._lock:
            if len(self._admitted) >= self.max_associations:
                return False
            self._admitted.add(threading.current_thread())
            return True


_REJECTED = {REJECT_CALLING_AE: "calling AE title not in the allowed list", REJECT_BUSY: "local limit exceeded",
             REJECT_VERSION: "protocol version not supported", REJECT_CONTEXT: "application context not supported"}


def _close_gently(conn: socket.socket, wait_s: float = 2.0) -> None:
    """Half-close, then wait (at most ``wait_s``) for the peer to close its side, as the ARTIM timer does after
    an A-ASSOCIATE-RJ or A-ABORT: closing with unread data sends a TCP reset, which can destroy the reject or
    abort PDU before the peer has read it (the peer then sees a dropped connection, not the reason)."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(wait_s)
        while conn.recv(65536):
            pass
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()


class _Connection:
    """One association's protocol, from the A-ASSOCIATE-RQ to the release or abort."""

    def __init__(self, scp: StoreSCP, sock: socket.socket, address, artim_deadline: float, quick: bool = False):
        self.scp = scp
        self.quick = quick  # acknowledge every read at once (wire.quick_ack): a Nagle sender never waits on us
        self.sock = sock
        self.address = address
        self.buf = bytearray(READ_STEP)
        self.assoc: Association | None = None
        self.command = bytearray()
        self.store: Incoming | None = None
        self.spares: Spares | None = None  # temp files for the next instances, made by a helper thread
        self.recv_flags = 0
        self.deadline = artim_deadline  # time.monotonic() by which the PDU being read must have arrived whole
        self.strict = True  # set the socket's timeout to what is left before every read (ARTIM: once per association)
        self.lowered = False  # the socket's timeout was lowered below idle_s for the end of a PDU

    def _set_timeout(self, seconds: float) -> None:
        """Plain TCP: a blocking socket with kernel timeouts, so that MSG_WAITALL reads a whole PDU in one call
        (one GIL release instead of one per TCP segment: other busy Python threads slow each re-acquisition).
        TLS: Python's own timeout (an SSLSocket takes no flags)."""
        if isinstance(self.sock, socket.socket) and not hasattr(self.sock, "cipher"):
            self.sock.settimeout(None)
            whole, frac = int(seconds), int((seconds % 1) * 1e6)
            value = struct.pack("ll", whole, frac)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
            self.recv_flags = getattr(socket, "MSG_WAITALL", 0)
        else:
            self.sock.settimeout(seconds)

    # ---- reading ---------------------------------------------------------------------------------------------

    def _read(self, n: int, offset: int = 0) -> memoryview | None:
        """Exactly n bytes into the buffer at offset (None: the peer closed the connection); TimeoutError when
        they have not all arrived by ``self.deadline``.

        The buffer grows as bytes arrive (to at most twice what has arrived, plus READ_STEP), never to an
        announced length before its bytes are here; once grown it stays, so that a steady stream of full PDUs is
        one ``recv_into`` each."""
        end = offset + n
        pos = offset
        recv_into, flags = self.sock.recv_into, self.recv_flags
        while pos < end:
            if len(self.buf) <= pos:  # a new buffer: views of the old one may still be alive
                grown = bytearray(min(end, max(2 * len(self.buf), pos + READ_STEP)))
                grown[:pos] = self.buf[:pos]
                self.buf = grown
            want = min(end, len(self.buf)) - pos
            if self.strict:
                self._timeout_left()
            try:
                r = recv_into(memoryview(self.buf)[pos : pos + want], want, flags)
            except BlockingIOError:  # SO_RCVTIMEO expired on a blocking socket
                raise TimeoutError from None
            if r == 0:
                return None
            if self.quick:
                quick_ack(self.sock)
            pos += r
            if r < want and pos < end:  # a partial read: the peer is slow (or TLS records): keep to the deadline
                self._timeout_left()
        return memoryview(self.buf)[offset:end]

    def _timeout_left(self) -> None:
        """Make the socket's timeout what is left until the deadline; TimeoutError when nothing is."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._set_timeout(max(left, 0.001))  # 0 would mean no timeout at all
        self.lowered = True

    def _read_pdu(self, limit: int) -> tuple[int, memoryview] | None:
        """The next PDU: (type, its bytes after the 6-byte header); None when the peer closed the connection.
        Once established, the PDU must arrive whole within ``idle_s`` (PS3.8 9.1.5 leaves this to us)."""
        if not self.strict:
            self.deadline = time.monotonic() + self.scp.idle_s
            if self.lowered:
                self._set_timeout(self.scp.idle_s)
                self.lowered = False
        header = self._read(6)
        if header is None:
            return None
        kind, length = PDU_HEADER.unpack(header)
        if kind not in range(1, 8):
            raise AbortAssociation(ABORT_UNRECOGNISED_PDU, f"unknown PDU type 0x{kind:02X}")
        if length > limit:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"PDU of {length} bytes, above the {limit} we allow "
                                                            f"{'here' if self.assoc else 'before an association'}")
        body = self._read(length, 6)
        if body is None:
            return None
        return kind, body

    def _send_last(self, data: bytes) -> None:
        """Send the PDU that ends the association (reject, release response, abort)."""
        self.scp.association_over()
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    # ---- the association -------------------------------------------------------------------------------------

    def run(self) -> None:
        how = "aborted"
        try:
            try:
                if not self._associate():
                    return
                self.strict, self.lowered = False, False
                self._set_timeout(self.scp.idle_s)
                how = self._serve_established()
            except AbortAssociation as exc:
                log.warning("aborting the association from %s:%d: %s", self.address[0], self.address[1],
                            peer_text(exc, 200))
                with contextlib.suppress(OSError):
                    self._send_last(abort_pdu(2, exc.reason))
            except TimeoutError:
                if self.assoc is None:
                    log.warning("connection from %s:%d: no whole A-ASSOCIATE-RQ within %g s (ARTIM), closed",
                                self.address[0], self.address[1], self.scp.artim_s)
                else:
                    log.warning("association from %s:%d: no whole PDU within %g s, aborted", self.address[0],
                                self.address[1], self.scp.idle_s)
                with contextlib.suppress(OSError):
                    self._send_last(abort_pdu(2, ABORT_UNSPECIFIED))
            except OSError as exc:
                log.info("association from %s:%d: connection lost (%s)", self.address[0], self.address[1], exc)
        finally:
            if self.store is not None:
                self.store.discard()
                self.store = None
            if self.spares is not None:
                self.spares.close()
            if self.assoc is not None:
                self.scp.handler.ended(self.assoc, how)

    def _associate(self) -> bool:
        from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
        from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification, SCP_SCU_RoleSelectionNegotiation
        from pynetdicom.presentation import negotiate_as_acceptor

        pdu = self._read_pdu(MAX_ASSOCIATE_RQ)
        if pdu is None:
            return False
        kind, body = pdu
        if kind != ASSOCIATE_RQ:
            raise AbortAssociation(ABORT_UNEXPECTED_PDU, f"PDU type {kind} before any A-ASSOCIATE-RQ")
        rq = A_ASSOCIATE_RQ()
        try:
            rq.decode(bytes(self.buf[: 6 + len(body)]))
            request = rq.to_primitive()
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's malformed PDU
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"malformed A-ASSOCIATE-RQ ({peer_text(exc)})") from None
        calling, called = request.calling_ae_title.strip(), request.called_ae_title.strip()

        reply = A_ASSOCIATE()
        reply.application_context_name = APPLICATION_CONTEXT
        reply.calling_ae_title = request.calling_ae_title
        reply.called_ae_title = request.called_ae_title
        reject = None
        if not rq.protocol_version & 1:
            reject = REJECT_VERSION
        elif str(request.application_context_name) != APPLICATION_CONTEXT:
            reject = REJECT_CONTEXT
        elif self.scp.allow and calling not in self.scp.allow:
            reject = REJECT_CALLING_AE
        elif not self.scp._admit():
            reject = REJECT_BUSY
        if reject is not None:
            reply.result, reply.result_source, reply.diagnostic = reject
            out = A_ASSOCIATE_RJ()
            out.from_primitive(reply)
            self._send_last(out.encode())
            log.log(logging.WARNING if reject in (REJECT_CALLING_AE, REJECT_BUSY) else logging.INFO,
                    "rejected an association from %s (%s:%d) to %s: %s (result %d, source %d, reason %d)",
                    peer_text(calling), self.address[0], self.address[1], peer_text(called),
                    _REJECTED.get(reject, "refused"), *reject)
            return False

        peer_max = 0
        roles: dict = {}
        for item in request.user_information:
            if isinstance(item, MaximumLengthNotification):
                peer_max = item.maximum_length_received or 0
            elif isinstance(item, SCP_SCU_RoleSelectionNegotiation) and item.sop_class_uid is not None:
                roles[item.sop_class_uid] = (item.scu_role, item.scp_role)
        results, ac_roles = negotiate_as_acceptor(request.presentation_context_definition_list,
                                                  list(self.scp._contexts), roles or None)
        reply.result, reply.result_source = 0, 1
        reply.presentation_context_definition_results_list = results
        reply.user_information = [*user_information(), *ac_roles]
        accept = A_ASSOCIATE_AC()
        accept.from_primitive(reply)
        self._send(accept.encode())
        self.assoc = Association(calling, called, self.address[0], self.address[1],
                                 {cx.context_id: (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                                  for cx in results if cx.result == 0 and cx.context_id is not None}, peer_max)
        self.scp.handler.established(self.assoc)
        return True

    def _serve_established(self) -> str:
        while True:
            pdu = self._read_pdu(MAX_PDU)
            if pdu is None:
                log.info("association from %s:%d: the peer closed the connection", self.address[0], self.address[1])
                return "aborted"
            kind, body = pdu
            if kind == P_DATA:
                self._p_data(body)
            elif kind == RELEASE_RQ:
                if self.store is not None:  # released mid-instance: that instance is incomplete
                    self.store.discard()
                    self.store = None
                self._send_last(RELEASE_RP_PDU)
                return "released"
            elif kind == ABORT:
                return "aborted"
            else:
                raise AbortAssociation(ABORT_UNEXPECTED_PDU, f"unexpected PDU type {kind}")

    def _p_data(self, body: memoryview) -> None:
        pos, end = 0, len(body)
        while pos < end:
            if pos + 6 > end:
                raise AbortAssociation(ABORT_INVALID_PARAMETER, "truncated PDV")
            length, context_id, control = PDV_HEADER.unpack_from(body, pos)
            if length < 2 or pos + 4 + length > end:
                raise AbortAssociation(ABORT_INVALID_PARAMETER, "PDV length outside its PDU")
            value = body[pos + 6 : pos + 4 + length]
            pos += 4 + length
            if control & 1:  # command fragment
                if self.store is not None:
                    raise AbortAssociation(ABORT_UNEXPECTED_PDU, "a command before the last dataset fragment")
                self.command += value
                if control & 2:
                    command, self.command = self.command, bytearray()
                    self._command(context_id, decode_command(command))
            else:
                if self.store is None or self.store.context_id != context_id:
                    raise AbortAssociation(ABORT_UNEXPECTED_PDU, "dataset fragment without a C-STORE request")
                self.store.write(value)
                if control & 2:
                    store, self.store = self.store, None
                    self._finish(store)

    def _command(self, context_id: int, command: dict[int, bytes]) -> None:
        assert self.assoc is not None
        field_ = u16(command.get(0x0100))
        message_id = u16(command.get(0x0110)) or 0
        has_dataset = u16(command.get(0x0800)) != NO_DATASET
        context = self.assoc.contexts.get(context_id)
        if context is None:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"a command on presentation context {context_id}, "
                                                            f"which was not accepted")
        if field_ == C_ECHO_RQ and not has_dataset:
            self._send(p_data(context_id, response(C_ECHO_RSP, uid_text(command.get(0x0002)) or VERIFICATION,
                                                   message_id, 0)))
        elif field_ == C_STORE_RQ and has_dataset:
            sop_class, sop_instance = uid_text(command.get(0x0002)), uid_text(command.get(0x1000))
            if self.spares is None:
                self.spares = Spares(self.scp.new_file)
            spare = self.spares.take()
            self.store = Incoming(self.scp.new_file, context_id, message_id, sop_class, sop_instance,
                                   file_meta(sop_class, sop_instance, context[1], self.assoc.calling_ae), spare)
        else:
            raise AbortAssociation(ABORT_UNSPECIFIED, f"unsupported DIMSE command 0x{field_ or 0:04X} on "
                                                      f"context {context_id}")

    def _finish(self, store: Incoming) -> None:
        assert self.assoc is not None
        status = store.close(self.scp.flush_files)
        if status == 0:
            status = self.scp.handler.stored(self.assoc, store.path, store.size)
        else:
            self.scp.handler.store_failed(self.assoc, store.problem)
        self._send(p_data(store.context_id, response(C_STORE_RSP, store.sop_class, store.message_id, status,
                                                     store.sop_instance)))


