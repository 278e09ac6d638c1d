"""One association of the lean SCP (:mod:`.scp`), from the A-ASSOCIATE-RQ to the release or abort: whole PDUs read
under the ARTIM and idle deadlines (each read acknowledged at once, :func:`.wire.quick_ack`), the negotiation
(pynetdicom's), the C-ECHO and C-STORE requests, each instance's fragments streamed into its temporary file and
handed to the :class:`Handler`, whose status is answered.

:mod:`.scp` accepts connections, counts them and stops them; this module is what runs on each one's thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
    u16,
    uid_text,
    user_information,
)

log = logging.getLogger("dicomtui.scp")  # one logger for the SCP, whichever module logs


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


class Server(Protocol):
    """What an association needs of the server that accepted it (:class:`.scp.StoreSCP`)."""

    handler: Handler
    new_file: TempFileFactory
    flush_files: bool  # flush each temp file before handler.stored
    allow: set[str]  # calling AE titles accepted (empty: any)
    artim_s: float  # seconds for the whole A-ASSOCIATE-RQ
    idle_s: float  # seconds for each PDU once established
    contexts: tuple  # the presentation contexts we accept (pynetdicom's)

    def admit(self) -> bool:
        """Count the calling thread's association as established, unless the limit is reached."""
        ...

    def association_over(self) -> None:
        """The calling thread's association has ended (before its last PDU is sent)."""
        ...


_REJECTED = {REJECT_CALLING_AE: "calling AE title not in the allowed list", REJECT_BUSY: "local limit exceeded",
             REJECT_VERSION: "protocol version not supported", REJECT_CONTEXT: "application context not supported"}


class Connection:
    """One association's protocol, from the A-ASSOCIATE-RQ to the release or abort."""

    def __init__(self, scp: Server, sock: socket.socket, address, artim_deadline: float, quick: bool = False):
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
        elif not self.scp.admit():
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
                                                  list(self.scp.contexts), roles or None)
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


