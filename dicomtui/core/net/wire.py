"""The DICOM upper layer and DIMSE bytes we write and read by hand: PDU/PDV framing (PS3.8 9.3), DIMSE command
sets (PS3.7 6.3, implicit VR little endian, group 0000), the file meta information (PS3.10 7.1) and our
A-ASSOCIATE user information (PS3.7 D.3.3).

By hand because pynetdicom's versions cost more than the rest of an image: they are the hot path of both the
lean SCP (:mod:`.scp`) and the lean SCU (:mod:`.scu`), which share this module and not each other. Checked
against pydicom's and pynetdicom's encoders in ``tests/test_net_codec.py``. What runs once per association
(A-ASSOCIATE-RQ/AC/RJ encoding and decoding, presentation context negotiation) stays with pynetdicom.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

# The file meta information (PS3.10 7.1) is written by dicomfile.file_meta, shared with the copies of the import.
from ..dicomfile import EXPLICIT_LE as EXPLICIT_LE
from ..dicomfile import IMPLEMENTATION_UID, IMPLEMENTATION_VERSION, layout_of
from ..dicomfile import IMPLICIT_LE as IMPLICIT_LE
from ..dicomfile import file_meta as file_meta
from ..dicomfile import pad as pad
from ..text import printable
from .status import ABORT_INVALID_PARAMETER, AbortReason

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
# Study Root Query/Retrieve Information Model SOP classes (PS3.4 C.6.2.1)
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

MAX_PDU = 1 << 20  # the largest P-DATA-TF we accept (we tell the peer); fewer, larger reads
# The largest A-ASSOCIATE-RQ (and any PDU before the association is established) we read: 128 presentation
# contexts (the most PS3.8 9.3.2.2 allows, odd ids 1-255) of one abstract syntax and 40 transfer syntaxes of 64
# characters each are 128 x (8 + 68 + 40 x 68) = 358 KB; real ones (pynetdicom's and DCMTK's storescu proposing
# every storage class) are 10-60 KB. A quarter of MAX_PDU: a hostile peer cannot make us read a megabyte before
# it has even been accepted.
MAX_ASSOCIATE_RQ = 1 << 18
# How far a PDU's buffer grows ahead of the bytes that have arrived: the announced length is never allocated at
# once (150 connections announcing 4 MiB and sending 8 bytes took the listener from 84 MB to 701 MB).
READ_STEP = 1 << 16
PEER_TEXT_MAX = 80  # characters of a peer-supplied value that reach our logs

# PDU types (PS3.8 9.3)
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)
# DIMSE command fields (PS3.7 E.1) and the Command Data Set Type meaning "no data set"
C_STORE_RQ, C_STORE_RSP, C_ECHO_RQ, C_ECHO_RSP = 0x0001, 0x8001, 0x0030, 0x8030
NO_DATASET = 0x0101

U16 = struct.Struct("<H")
U32 = struct.Struct("<L")
ELEMENT = struct.Struct("<HHL")  # implicit VR little endian element header
PDU_HEADER = struct.Struct(">BxL")  # type, reserved, length
PDV_HEADER = struct.Struct(">LBB")  # item length, presentation context id, message control header

RELEASE_RQ_PDU = bytes([RELEASE_RQ, 0, 0, 0, 0, 4, 0, 0, 0, 0])
RELEASE_RP_PDU = bytes([RELEASE_RP, 0, 0, 0, 0, 4, 0, 0, 0, 0])


TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only: acknowledge at once


def tcp_tuned(sock: socket.socket) -> bool:
    """Turn Nagle's algorithm off on our side (TCP_NODELAY); whether :func:`quick_ack` works on ``sock`` (TCP
    on Linux, plain or under TLS)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return TCP_QUICKACK is not None and sock.family in (socket.AF_INET, socket.AF_INET6)


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge the bytes read so far at once (Linux TCP_QUICKACK), re-armed after every read because the
    kernel leaves quick-ack mode by itself.

    Why: a sender with Nagle's algorithm on (Debian's DCMTK without TCP_NODELAY=1, Orthanc's C-MOVE
    sub-associations, many modalities) holds its next small segment until the previous one is acknowledged, and
    Linux delays the ACK of a segment it answers nothing to by up to 40 ms: 200 small instances from storescu
    took 9.0 s instead of 0.2 s (PEERS.md). With the ACK sent at once the sender never waits."""
    try:  # noqa: SIM105 - once per read: a try costs nothing, contextlib.suppress builds a context manager
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)  # type: ignore[arg-type]
    except OSError:
        pass


class AbortAssociation(Exception):
    """The peer broke the protocol: send an A-ABORT (provider, with this reason) and close."""

    def __init__(self, reason: AbortReason | int, message: str):
        super().__init__(message)
        self.reason = reason


def peer_text(value: object, limit: int = PEER_TEXT_MAX) -> str:
    """A peer-supplied value (AE title, UID, an exception message quoting one) as it may appear in a log line:
    control characters escaped (``\\x1b``) and cut to ``limit`` characters with the original length said
    ("…[3600000 chars]"): a 3.6 MB Implementation Version Name once made a 3.6 MB log line."""
    text = value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)
    cut = text[:limit]
    shown = printable(cut)
    return shown if len(text) <= limit else f"{shown}…[{len(text)} chars]"


def meta_uids(head: bytes) -> tuple[str, str] | None:
    """(Media Storage SOP Class UID, Media Storage SOP Instance UID) from the file meta of a part-10 file's first
    bytes (PS3.10 7.1: explicit VR little endian after the preamble and ``DICM``, its length in (0002,0000)); None
    when absent or cut. Found by their tag and VR inside the group: a few µs, on every stored instance."""
    if head[128:132] != b"DICM" or head[132:138] != b"\2\0\0\0UL":
        return None
    meta_end = min(len(head), 144 + U32.unpack_from(head, 140)[0])
    found = []
    for tag in (b"\2\0\2\0UI", b"\2\0\3\0UI"):
        at = head.find(tag, 144, meta_end)
        if at < 0 or at + 8 > meta_end:
            return None
        length = U16.unpack_from(head, at + 6)[0]
        found.append(uid_text(head[at + 8 : at + 8 + length]))
    return found[0], found[1]


def user_information() -> list:
    """Our A-ASSOCIATE user information items (pynetdicom primitives), for the RQ of the SCU and the AC of the
    SCP: the largest PDU we take, implementation class UID and version name."""
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


def dataset_offset(head: bytes) -> tuple[int, str] | None:
    """Where the dataset starts in a part-10 file and its transfer syntax, from its first bytes (None: no file
    meta we can walk; let pydicom read it). See :func:`dicomtui.core.dicomfile.layout_of` for files without one."""
    layout = layout_of(head)
    return (layout.dataset_offset, layout.transfer_syntax) if layout is not None and layout.has_meta else None


def decode_command(data: bytes | bytearray) -> dict[int, bytes]:
    """A DIMSE command set (implicit VR little endian, group 0000): element number → raw value.
    Raises :class:`AbortAssociation` when it is malformed."""
    out: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, element, length = ELEMENT.unpack_from(data, pos)
        pos += 8
        if group != 0 or length == 0xFFFFFFFF or pos + length > end:
            raise AbortAssociation(ABORT_INVALID_PARAMETER, "malformed DIMSE command set")
        out[element] = bytes(data[pos : pos + length])
        pos += length
    return out


def uid_text(value: bytes | None) -> str:
    """A UI value as text, its padding removed ("" when absent)."""
    return (value or b"").rstrip(b"\0 ").decode("ascii", "replace")


def u16(value: bytes | None) -> int | None:
    """A US value (None when absent or short)."""
    return U16.unpack(value[:2])[0] if value and len(value) >= 2 else None


def encode_command(elements: Iterable[tuple[int, bytes]]) -> bytes:
    """Elements (number, raw value; ascending) as a command set with its group length."""
    body = b"".join(ELEMENT.pack(0, number, len(value)) + value for number, value in elements)
    return ELEMENT.pack(0, 0, 4) + U32.pack(len(body)) + body


def store_request(sop_class: str, sop_instance: str, message_id: int) -> bytes:
    """A C-STORE-RQ command set (priority medium, a data set follows; PS3.7 9.3.1.1)."""
    return encode_command([(0x0002, pad(sop_class.encode(), b"\0")), (0x0100, U16.pack(C_STORE_RQ)),
                           (0x0110, U16.pack(message_id)), (0x0700, U16.pack(0)),
                           (0x0800, U16.pack(0x0001)), (0x1000, pad(sop_instance.encode(), b"\0"))])


def response(command: int, sop_class: str, message_id: int, status: int, sop_instance: str = "") -> bytes:
    """A C-STORE-RSP / C-ECHO-RSP command set (no data set)."""
    elements = [(0x0002, pad(sop_class.encode(), b"\0")), (0x0100, U16.pack(command)),
                (0x0120, U16.pack(message_id)), (0x0800, U16.pack(NO_DATASET)), (0x0900, U16.pack(status))]
    if sop_instance:
        elements.append((0x1000, pad(sop_instance.encode(), b"\0")))
    return encode_command(elements)


def p_data(context_id: int, command: bytes) -> bytes:
    """One P-DATA-TF PDU holding a whole command set (responses are far below any maximum PDU length)."""
    return PDU_HEADER.pack(P_DATA, len(command) + 6) + PDV_HEADER.pack(len(command) + 2, context_id, 0x03) + command


def pdv_header(context_id: int, length: int, control: int) -> bytes:
    """The PDU and PDV headers in front of one fragment of ``length`` bytes (control: bit 0 command, bit 1
    last fragment; PS3.8 E.2)."""
    return PDU_HEADER.pack(P_DATA, length + 6) + PDV_HEADER.pack(length + 2, context_id, control)


def abort_pdu(source: int, reason: int) -> bytes:
    """An A-ABORT PDU (source 0: service user, 2: service provider; PS3.8 9.3.8)."""
    return bytes([ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason])
