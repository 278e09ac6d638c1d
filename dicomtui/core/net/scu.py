"""A lean C-STORE SCU association: one blocking socket, no reactor threads.

pynetdicom's requestor hands every message to a DUL thread that polls with 1 ms sleeps, and its association
reactor races ``send_c_store`` for the response (see :mod:`.send`, "the send stall"). Here the
caller's thread sends the C-STORE-RQ and the dataset (read from the file, its meta information skipped, sent in
P-DATA-TF PDUs no larger than the peer accepts, many PDUs per ``sendmsg``) and reads the C-STORE-RSP itself.

From pynetdicom: A-ASSOCIATE-RQ encoding and A-ASSOCIATE-AC/RJ decoding (``pynetdicom.pdu``), dataset encoding
for the decompress fallback (``pynetdicom.dsutils.encode``). By hand: P-DATA-TF framing and the DIMSE command sets
(:mod:`.wire`, shared with the SCP).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from .. import dicomfile
from .wire import (
    ABORT,
    APPLICATION_CONTEXT,
    ASSOCIATE_AC,
    ASSOCIATE_RJ,
    C_STORE_RSP,
    MAX_ASSOCIATE_RQ,
    MAX_PDU,
    P_DATA,
    PDU_HEADER,
    PDV_HEADER,
    RELEASE_RP,
    RELEASE_RQ_PDU,
    abort_pdu,
    decode_command,
    pdv_header,
    quick_ack,
    store_request,
    tcp_tuned,
    u16,
    user_information,
)

DEFAULT_CHUNK = 1 << 20  # PDV size when the peer sets no maximum
IOV_BATCH = 512  # buffers per sendmsg (Linux allows 1,024)


class AssociationFailed(Exception):
    """The association could not be opened; ``rejected`` holds (result, source, reason) for an A-ASSOCIATE-RJ."""

    def __init__(self, message: str, rejected: tuple[int, int, int] | None = None):
        super().__init__(message)
        self.rejected = rejected


class PeerGone(Exception):
    """The peer aborted, closed the connection or did not answer in time."""


@dataclass
class StoreAssociation:
    sock: socket.socket
    timeout: float
    accepted: dict[int, tuple[str, str]] = field(default_factory=dict)  # context id → (abstract, transfer)
    peer_max_pdu: int = 0
    is_established: bool = True
    quick: bool = False  # acknowledge each read at once (wire.quick_ack): a peer answering with Nagle on never waits
    _message_id: int = 0

    # ---- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, sock: socket.socket, calling_ae: str, called_ae: str, contexts: list[tuple[str, str]],
             timeout: float) -> StoreAssociation:
        """Associate over a connected socket; ``contexts`` are (abstract syntax, transfer syntax), one per
        presentation context (so that the peer can accept some syntaxes and refuse others)."""
        from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
        from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
        from pynetdicom.presentation import build_context

        request = A_ASSOCIATE()
        request.application_context_name = APPLICATION_CONTEXT
        request.calling_ae_title = calling_ae
        request.called_ae_title = called_ae
        offered = []
        for i, (abstract, transfer) in enumerate(contexts):
            cx = build_context(abstract, [transfer])
            cx.context_id = 2 * i + 1
            offered.append(cx)
        request.presentation_context_definition_list = offered
        request.user_information = user_information()
        pdu = A_ASSOCIATE_RQ()
        pdu.from_primitive(request)
        self = cls(sock, timeout)
        self.quick = tcp_tuned(sock)
        sock.settimeout(timeout)
        try:
            sock.sendall(pdu.encode())
            kind, body = self._read_pdu(MAX_ASSOCIATE_RQ)
        except (PeerGone, OSError) as exc:
            raise AssociationFailed(f"no answer to the association request ({exc})") from None
        raw = PDU_HEADER.pack(kind, len(body)) + body
        if kind == ASSOCIATE_RJ:
            rj = A_ASSOCIATE_RJ()
            rj.decode(raw)
            sock.close()
            raise AssociationFailed("rejected", (rj.result or 0, rj.source or 0, rj.reason_diagnostic or 0))
        if kind != ASSOCIATE_AC:
            sock.close()
            raise AssociationFailed(f"the peer answered the association request with PDU type {kind}")
        ac = A_ASSOCIATE_AC()
        ac.decode(raw)
        answer = ac.to_primitive()
        by_id = {cx.context_id: cx for cx in offered}
        for cx in answer.presentation_context_definition_results_list:
            if cx.result == 0 and cx.context_id is not None and cx.context_id in by_id:
                transfer = cx.transfer_syntax[0] if cx.transfer_syntax else by_id[cx.context_id].transfer_syntax[0]
                self.accepted[cx.context_id] = (str(by_id[cx.context_id].abstract_syntax), str(transfer))
        for item in answer.user_information:
            if isinstance(item, MaximumLengthNotification):
                self.peer_max_pdu = item.maximum_length_received or 0
        return self

    # ---- framing ---------------------------------------------------------------------------------------------

    def _recv_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(n - got)
            if not chunk:
                raise PeerGone("the peer closed the connection")
            if self.quick:
                quick_ack(self.sock)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_pdu(self, limit: int) -> tuple[int, bytes]:
        kind, length = PDU_HEADER.unpack(self._recv_exact(6))
        if length > limit:
            raise PeerGone(f"a PDU of {length} bytes")
        return kind, self._recv_exact(length)

    def _send_buffers(self, buffers: list) -> None:
        """Send a list of bytes-like objects, many per system call (sendmsg), or one by one over TLS."""
        sendmsg = getattr(self.sock, "sendmsg", None)
        if sendmsg is None or hasattr(self.sock, "cipher"):  # SSLSocket has no sendmsg
            for buf in buffers:
                self.sock.sendall(buf)
            return
        for start in range(0, len(buffers), IOV_BATCH):
            batch = buffers[start : start + IOV_BATCH]
            total = sum(len(b) for b in batch)
            sent = sendmsg(batch)
            if sent < total:  # rare on a blocking socket: send the rest plainly
                rest = b"".join(bytes(b) for b in batch)[sent:]
                self.sock.sendall(rest)

    # ---- C-STORE ---------------------------------------------------------------------------------------------

    def context_for(self, sop_class: str, transfer_syntax: str) -> int | None:
        for cid, (abstract, transfer) in self.accepted.items():
            if abstract == sop_class and transfer == transfer_syntax:
                return cid
        return None

    def store(self, context_id: int, sop_class: str, sop_instance: str, dataset) -> int:
        """Send one C-STORE (``dataset``: the encoded dataset, bytes or memoryview) and return the status of the
        response. Raises :class:`PeerGone` (and ends the association) when none comes."""
        self._message_id = self._message_id % 0xFFFF + 1
        message_id = self._message_id
        command = store_request(sop_class, sop_instance, message_id)
        chunk = (self.peer_max_pdu - 6) if self.peer_max_pdu > 6 else DEFAULT_CHUNK
        buffers: list = []
        for start in range(0, max(len(command), 1), chunk):
            piece = command[start : start + chunk]
            last = start + chunk >= len(command)
            buffers.append(pdv_header(context_id, len(piece), 0x03 if last else 0x01))
            buffers.append(piece)
        data = memoryview(dataset)
        size = len(data)
        for start in range(0, max(size, 1), chunk):
            fragment = data[start : start + chunk]
            control = 0x02 if start + chunk >= size else 0x00
            buffers.append(pdv_header(context_id, len(fragment), control))
            buffers.append(fragment)
        try:
            self._send_buffers(buffers)
            return self._response(message_id)
        except (OSError, PeerGone) as exc:
            self.abort()
            raise PeerGone(str(exc) or type(exc).__name__) from None

    def _response(self, message_id: int) -> int:
        command = bytearray()
        while True:
            kind, body = self._read_pdu(MAX_PDU + 6)
            if kind == ABORT:
                raise PeerGone("the peer aborted the association")
            if kind != P_DATA:
                raise PeerGone(f"unexpected PDU type {kind} while waiting for the C-STORE response")
            pos = 0
            while pos + 6 <= len(body):
                length, _cid, control = PDV_HEADER.unpack_from(body, pos)
                command += body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                if control & 0x03 == 0x03:
                    fields = decode_command(command)
                    command = bytearray()
                    if u16(fields.get(0x0100)) == C_STORE_RSP and u16(fields.get(0x0120)) == message_id:
                        status = u16(fields.get(0x0900))
                        if status is None:
                            raise PeerGone("a C-STORE response without a status")
                        return status
                    # an answer to something else (cannot happen with one operation at a time): ignore

    # ---- ending ----------------------------------------------------------------------------------------------

    def release(self) -> None:
        if not self.is_established:
            return
        self.is_established = False
        try:
            self.sock.sendall(RELEASE_RQ_PDU)
            while True:
                kind, _ = self._read_pdu(MAX_PDU + 6)
                if kind in (RELEASE_RP, ABORT):
                    break
        except (OSError, PeerGone):
            pass
        finally:
            self.sock.close()

    def abort(self) -> None:
        if not self.is_established:
            return
        self.is_established = False
        try:
            self.sock.sendall(abort_pdu(0, 0))
        except OSError:
            pass
        finally:
            self.sock.close()


def read_for_sending(path: str | Path, *, accepted: bool = False) -> tuple[bytes, int, str] | None:
    """(file bytes, dataset offset, transfer syntax) of a file whose data set can be sent as it is: a part-10
    file, or (``accepted``: an indexed file, which the import's header walk read) a bare data set, offset 0 and
    its syntax as the import guessed it. None when it has no usable meta (see :mod:`dicomtui.core.dicomfile`)."""
    found = dicomfile.read_for_sending(path, accepted=accepted)
    if found is None or not found[1].transfer_syntax:
        return None
    data, layout = found
    return data, layout.dataset_offset, layout.transfer_syntax
