"""A lean C-STORE / C-ECHO SCP: blocking sockets, one thread per association, each instance streamed to a file.

pynetdicom's acceptor polls (1 ms sleeps in its DUL and association reactor threads, 4 KB socket reads) and its
per-message cost, not our storage, bounded how fast the listener received. Here one thread per association reads
whole PDUs with ``recv_into`` and writes each data fragment straight into the instance's temporary file; the only
waits are on the socket and on the disk.

What pynetdicom still does for us: decoding the A-ASSOCIATE-RQ PDU, presentation context negotiation (including
SCP/SCU role selection) and encoding the A-ASSOCIATE-AC/RJ and A-ABORT PDUs (``pynetdicom.pdu``,
``pynetdicom.presentation``): they run once per association. Written by hand, because pynetdicom's versions cost
more than the rest of an image: the P-DATA-TF framing, the DIMSE command sets (implicit VR little endian, a
handful of elements) and the file meta information (see :func:`file_meta`; checked against pydicom's encoder in
the tests).

Not supported (not needed by a storage SCP): asynchronous operations (the peer gets the default window of one),
extended/user identity negotiation (ignored, as PS3.7 allows), DIMSE services other than C-STORE and C-ECHO.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import storage

log = logging.getLogger("dicomtui.scp")

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
# A fixed UID under pydicom's root (pydicom.uid.generate_uid(entropy_srcs=["dicomtui implementation"]))
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.10155331945626853729602317572875953617"
IMPLEMENTATION_VERSION = "DICOMTUI"

MAX_PDU = 1 << 20  # the largest P-DATA-TF we accept (we tell the peer); fewer, larger reads
MAX_OTHER_PDU = 1 << 22  # an A-ASSOCIATE-RQ with 128 contexts is far smaller
ARTIM_S = 30.0  # longest wait for the A-ASSOCIATE-RQ (and the TLS handshake) after a connection opens
IDLE_S = 60.0  # an established association silent this long is aborted

# PDU types (PS3.8 9.3)
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)
# A-ASSOCIATE-RJ (result, source, reason) as pynetdicom and DCMTK send them
REJECT_CALLING_AE = (1, 1, 3)  # rejected-permanent, service-user, calling AE title not recognized
REJECT_CONTEXT = (1, 1, 2)  # application context name not supported
REJECT_VERSION = (1, 2, 2)  # service-provider (ACSE), protocol version not supported
REJECT_BUSY = (2, 3, 2)  # rejected-transient, service-provider (presentation), local limit exceeded
# A-ABORT provider reasons
ABORT_UNSPECIFIED, ABORT_UNRECOGNISED_PDU, ABORT_UNEXPECTED_PDU, ABORT_INVALID_PARAMETER = 0, 1, 2, 6

C_STORE_RQ, C_STORE_RSP, C_ECHO_RQ, C_ECHO_RSP = 0x0001, 0x8001, 0x0030, 0x8030
NO_DATASET = 0x0101
STATUS_OUT_OF_RESOURCES = 0xA700

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")
_ELEMENT = struct.Struct("<HHL")  # implicit VR little endian element header
_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LBB")


class AbortAssociation(Exception):
    """The peer broke the protocol: send an A-ABORT (provider, with this reason) and close."""

    def __init__(self, reason: int, message: str):
        super().__init__(message)
        self.reason = reason


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
        """``tmp`` holds a complete, fsync'd file (meta + dataset) of ``size`` bytes: make it durable in place
        (or delete it) and return the C-STORE status to answer."""
        tmp.unlink(missing_ok=True)
        return 0

    def store_failed(self, assoc: Association, problem: str) -> None:
        pass

    def ended(self, assoc: Association, how: str) -> None:
        """``how``: "released" or "aborted"."""


def user_information() -> list:
    """Our A-ASSOCIATE user information: the largest PDU we take, implementation class UID and version name."""
    from pynetdicom.pdu_primitives import (
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
    )

    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = MAX_PDU
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION
    return [max_length, implementation, version]


def storage_contexts() -> list:
    """What we accept: every storage SOP class in any transfer syntax pynetdicom knows, and Verification."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
    from pynetdicom.presentation import build_context

    contexts = [build_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES) for cx in AllStoragePresentationContexts]
    contexts.append(build_context(VERIFICATION, ALL_TRANSFER_SYNTAXES[:4]))
    return contexts


def _pad(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str) -> bytes:
    """Preamble, ``DICM`` and the file meta information group (explicit VR little endian), as pydicom's
    ``write_file_meta_info`` writes it — built by hand: pydicom takes ~0.2 ms, a fifth of a small image's budget."""
    def short(tag: int, vr: bytes, value: bytes) -> bytes:
        return _U16.pack(2) + _U16.pack(tag) + vr + _U16.pack(len(value)) + value

    body = (_U16.pack(2) + _U16.pack(1) + b"OB\0\0" + _U32.pack(2) + b"\0\1"
            + short(2, b"UI", _pad(sop_class.encode(), b"\0"))
            + short(3, b"UI", _pad(sop_instance.encode(), b"\0"))
            + short(0x10, b"UI", _pad(transfer_syntax.encode(), b"\0"))
            + short(0x12, b"UI", _pad(IMPLEMENTATION_UID.encode(), b"\0"))
            + short(0x13, b"SH", _pad(IMPLEMENTATION_VERSION.encode(), b" ")))
    if source_ae:
        body += short(0x16, b"AE", _pad(source_ae.encode("ascii", "replace"), b" "))
    return b"\0" * 128 + b"DICM" + short(0, b"UL", _U32.pack(len(body))) + body


def decode_command(data: bytes | bytearray) -> dict[int, bytes]:
    """A DIMSE command set (implicit VR little endian, group 0000): element number → raw value."""
    out: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, element, length = _ELEMENT.unpack_from(data, pos)
        pos += 8
        if group != 0 or length == 0xFFFFFFFF or pos + length > end:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, "malformed DIMSE command set")
        out[element] = bytes(data[pos : pos + length])
        pos += length
    return out


def _uid(value: bytes | None) -> str:
    return (value or b"").rstrip(b"\0 ").decode("ascii", "replace")


def _u16(value: bytes | None) -> int | None:
    return _U16.unpack(value[:2])[0] if value and len(value) >= 2 else None


def encode_command(elements: Iterable[tuple[int, bytes]]) -> bytes:
    """Elements (number, raw value; ascending) as a command set with its group length."""
    body = b"".join(_ELEMENT.pack(0, number, len(value)) + value for number, value in elements)
    return _ELEMENT.pack(0, 0, 4) + _U32.pack(len(body)) + body


def response(command: int, sop_class: str, message_id: int, status: int, sop_instance: str = "") -> bytes:
    elements = [(0x0002, _pad(sop_class.encode(), b"\0")), (0x0100, _U16.pack(command)),
                (0x0120, _U16.pack(message_id)), (0x0800, _U16.pack(NO_DATASET)), (0x0900, _U16.pack(status))]
    if sop_instance:
        elements.append((0x1000, _pad(sop_instance.encode(), b"\0")))
    return encode_command(elements)


def p_data(context_id: int, command: bytes) -> bytes:
    """One P-DATA-TF PDU holding a whole command set (responses are far below any maximum PDU length)."""
    return _PDU_HEADER.pack(P_DATA, len(command) + 6) + _PDV_HEADER.pack(len(command) + 2, context_id, 0x03) + command


def abort_pdu(source: int, reason: int) -> bytes:
    return bytes([ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason])


RELEASE_RP_PDU = bytes([RELEASE_RP, 0, 0, 0, 0, 4, 0, 0, 0, 0])


class StoreSCP:
    """Accept associations on ``bind:port``; every stored instance is handed to ``handler.stored``."""

    def __init__(self, ae_title: str, bind: str, port: int, handler: Handler, root: Path, *,
                 ssl_context=None, allow: Iterable[str] = (), max_associations: int = 10):
        self.ae_title = ae_title
        self.handler = handler
        self.root = Path(root)  # the database folder: instances are written into its incoming/
        self.ssl_context = ssl_context
        self.allow = {a.strip() for a in allow}
        self.max_associations = max_associations
        self._contexts = storage_contexts()
        self._sock = socket.create_server((bind, port), backlog=64)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._active: dict[threading.Thread, socket.socket] = {}
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
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
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
                thread = threading.Thread(target=self._serve, args=(conn, address), daemon=True,
                                          name=f"scp-{address[0]}:{address[1]}")
                with self._lock:
                    self._active[thread] = conn
                thread.start()

    def _serve(self, conn: socket.socket, address) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(ARTIM_S)
            if self.ssl_context is not None:
                try:
                    tls = self.ssl_context.wrap_socket(conn, server_side=True)
                except (OSError, ValueError) as exc:
                    log.warning("TLS handshake with %s:%d failed: %s", address[0], address[1], exc)
                    return
                with self._lock:
                    self._active[threading.current_thread()] = tls
                conn = tls
            _Connection(self, conn, address).run()
        except Exception:  # noqa: BLE001 - one association's bug must not take the listener down
            log.exception("association from %s:%d ended by an error", address[0], address[1])
        finally:
            _close_gently(conn)
            with self._lock:
                self._active.pop(threading.current_thread(), None)

    def _busy(self) -> bool:
        with self._lock:
            return len(self._active) > self.max_associations  # this one included


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
        try:
            conn.close()
        except OSError:
            pass


class _Connection:
    """One association's protocol, from the A-ASSOCIATE-RQ to the release or abort."""

    def __init__(self, scp: StoreSCP, sock: socket.socket, address):
        self.scp = scp
        self.sock = sock
        self.address = address
        self.buf = bytearray(64 * 1024)
        self.assoc: Association | None = None
        self.command = bytearray()
        self.store: _Incoming | None = None
        self.spares: _Spares | None = None  # temp files for the next instances, made by a helper thread
        self.recv_flags = 0

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
        """Exactly n bytes into the buffer at offset (None: the peer closed the connection)."""
        if len(self.buf) < offset + n:  # a new buffer: views of the old one may still be alive
            grown = bytearray(max(offset + n, 2 * len(self.buf)))
            grown[:offset] = self.buf[:offset]
            self.buf = grown
        view = memoryview(self.buf)[offset : offset + n]
        got = 0
        recv_into, flags = self.sock.recv_into, self.recv_flags
        while got < n:
            try:
                r = recv_into(view[got:], n - got, flags)
            except BlockingIOError:  # SO_RCVTIMEO expired on a blocking socket
                raise TimeoutError from None
            if r == 0:
                return None
            got += r
        return view

    def _read_pdu(self, limit: int) -> tuple[int, memoryview] | None:
        header = self._read(6)
        if header is None:
            return None
        kind, length = _PDU_HEADER.unpack(header)
        if kind not in range(1, 8):
            raise AbortAssociation(ABORT_UNRECOGNISED_PDU, f"unknown PDU type 0x{kind:02X}")
        if length > limit:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"PDU of {length} bytes, above the {limit} we allow")
        body = self._read(length, 6)
        if body is None:
            return None
        return kind, body

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    # ---- the association -------------------------------------------------------------------------------------

    def run(self) -> None:
        how = "aborted"
        try:
            try:
                self._set_timeout(ARTIM_S)
                if not self._associate():
                    return
                self._set_timeout(IDLE_S)
                how = self._serve_established()
            except AbortAssociation as exc:
                log.warning("aborting the association from %s:%d: %s", self.address[0], self.address[1], exc)
                try:
                    self._send(abort_pdu(2, exc.reason))
                except OSError:
                    pass
            except TimeoutError:
                log.warning("association from %s:%d: nothing received for %g s, aborted", self.address[0],
                            self.address[1], IDLE_S if self.assoc else ARTIM_S)
                try:
                    self._send(abort_pdu(2, ABORT_UNSPECIFIED))
                except OSError:
                    pass
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

        pdu = self._read_pdu(MAX_OTHER_PDU)
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
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"malformed A-ASSOCIATE-RQ ({exc})") from None
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
        elif self.scp._busy():
            reject = REJECT_BUSY
        if reject is not None:
            reply.result, reply.result_source, reply.diagnostic = reject
            out = A_ASSOCIATE_RJ()
            out.from_primitive(reply)
            self._send(out.encode())
            log.info("rejected an association from %s (%s:%d): result %d, source %d, reason %d", calling,
                     self.address[0], self.address[1], *reject)
            return False

        peer_max = 0
        roles = {}
        for item in request.user_information:
            if isinstance(item, MaximumLengthNotification):
                peer_max = item.maximum_length_received or 0
            elif isinstance(item, SCP_SCU_RoleSelectionNegotiation):
                roles[item.sop_class_uid] = (item.scu_role, item.scp_role)
        results, ac_roles = negotiate_as_acceptor(request.presentation_context_definition_list, self.scp._contexts,
                                                  roles or None)
        reply.result, reply.result_source = 0, 1
        reply.presentation_context_definition_results_list = results
        reply.user_information = [*user_information(), *ac_roles]
        out = A_ASSOCIATE_AC()
        out.from_primitive(reply)
        self._send(out.encode())
        self.assoc = Association(calling, called, self.address[0], self.address[1],
                                 {cx.context_id: (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                                  for cx in results if cx.result == 0}, peer_max)
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
                self._send(RELEASE_RP_PDU)
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
            length, context_id, control = _PDV_HEADER.unpack_from(body, pos)
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
        field_ = _u16(command.get(0x0100))
        message_id = _u16(command.get(0x0110)) or 0
        has_dataset = _u16(command.get(0x0800)) != NO_DATASET
        context = self.assoc.contexts.get(context_id)
        if context is None:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, f"a command on presentation context {context_id}, "
                                                            f"which was not accepted")
        if field_ == C_ECHO_RQ and not has_dataset:
            self._send(p_data(context_id, response(C_ECHO_RSP, _uid(command.get(0x0002)) or VERIFICATION,
                                                   message_id, 0)))
        elif field_ == C_STORE_RQ and has_dataset:
            sop_class, sop_instance = _uid(command.get(0x0002)), _uid(command.get(0x1000))
            if self.spares is None:
                self.spares = _Spares(self.scp.root)
            spare = self.spares.take()
            self.store = _Incoming(self.scp.root, context_id, message_id, sop_class, sop_instance,
                                   file_meta(sop_class, sop_instance, context[1], self.assoc.calling_ae), spare)
        else:
            raise AbortAssociation(ABORT_UNSPECIFIED, f"unsupported DIMSE command 0x{field_ or 0:04X} on "
                                                      f"context {context_id}")

    def _finish(self, store: _Incoming) -> None:
        assert self.assoc is not None
        status = store.close()
        if status == 0:
            status = self.scp.handler.stored(self.assoc, store.path, store.size)
        else:
            self.scp.handler.store_failed(self.assoc, store.problem)
        self._send(p_data(store.context_id, response(C_STORE_RSP, store.sop_class, store.message_id, status,
                                                     store.sop_instance)))


class _Incoming:
    """The temporary file of the instance being received; a write error is kept until the last fragment, so that
    the peer gets its answer (out of resources) and the association goes on."""

    def __init__(self, root: Path, context_id: int, message_id: int, sop_class: str, sop_instance: str,
                 meta: bytes, spare: tuple[Path, int] | None = None):
        self.context_id, self.message_id = context_id, message_id
        self.sop_class, self.sop_instance = sop_class, sop_instance
        self.size = 0
        self.problem = ""
        if spare is None:
            try:
                spare = open_temp(root)
            except OSError as exc:
                self.path, self.fd = Path(os.devnull), -1
                self.problem = f"cannot store: {exc.strerror or exc}"
                return
        self.path, self.fd = spare
        self.write(memoryview(meta))

    def write(self, data: memoryview) -> None:
        if self.problem:
            return
        try:
            while data:
                n = os.write(self.fd, data)
                self.size += n
                data = data[n:]
        except OSError as exc:
            self.problem = f"cannot store: {exc.strerror or exc}"

    def close(self) -> int:
        """fsync and close: 0, or out of resources (the file is then gone)."""
        if not self.problem:
            try:
                os.fsync(self.fd)
            except OSError as exc:
                self.problem = f"cannot store: {exc.strerror or exc}"
        if self.problem:
            self.discard()
            return STATUS_OUT_OF_RESOURCES
        os.close(self.fd)
        self.fd = -1
        return 0

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.path.unlink(missing_ok=True)


def open_temp(root: Path) -> tuple[Path, int]:
    """A new, empty temporary file in ``incoming/``, open for writing."""
    path = storage.temp_file(root, "received")
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)


class _Spares:
    """Empty temp files made ahead by a helper thread: creating a file in incoming/ took 0.03-1 ms here, varying
    with the disk's load, and in the receiving thread it was up to a third of a small image's time. The helper
    keeps ``ahead`` files ready; ``take`` never waits for it (it creates one itself when none is ready)."""

    def __init__(self, root: Path, ahead: int = 2):
        import queue

        self.root = root
        self.ready: queue.SimpleQueue[tuple[Path, int]] = queue.SimpleQueue()
        self.room = threading.Semaphore(ahead)
        self.closed = False
        self.thread = threading.Thread(target=self._fill, name="scp-spares", daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        while True:
            self.room.acquire()
            if self.closed:
                return
            try:
                self.ready.put(open_temp(self.root))
            except OSError:
                return  # take() creates its own and reports the error
            if self.closed:  # close() may have drained already: make sure this one goes too
                self._drain()
                return

    def take(self) -> tuple[Path, int] | None:
        """A ready temp file, or None (the caller creates one)."""
        try:
            item = self.ready.get_nowait()
        except Exception:  # noqa: BLE001 - queue.Empty
            return None
        self.room.release()
        return item

    def _drain(self) -> None:
        while True:
            try:
                path, fd = self.ready.get_nowait()
            except Exception:  # noqa: BLE001 - queue.Empty
                return
            os.close(fd)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self.closed = True
        self.room.release()
        self.thread.join()
        self._drain()
