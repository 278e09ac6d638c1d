"""SCU operations over DIMSE: echo, send, query and retrieve, with failures explained in plain words.

Send uses our own lean C-STORE association (:mod:`.scu`); echo, C-FIND, C-MOVE and C-GET use pynetdicom.

Every failure names the peer and says what to check; statuses are given in hex with their meaning.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NetworkError as DimseError
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
    error: str = ""  # why the send stopped before the end
    notes: list[str] = field(default_factory=list)  # what went wrong and was recovered from

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


def _associate(ae, node: RemoteNode, ext_neg=None, handlers=()):
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
    context = node.ssl_context()
    tls_args = (context, node.host if node.tls_verify else None) if context is not None else None
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg, tls_args=tls_args,
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay), (evt.EVT_ACSE_RECV, on_acse), *handlers])
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
    if context is not None:
        problem = _tls_problem(node, context)
        if problem:
            raise DimseError(f"{node.address}: the TLS handshake failed: {problem} — check the CA file, our client "
                             f"certificate and key, and that the peer speaks TLS on this port")
    raise DimseError(f"{node.address}: the association was aborted or timed out after {node.timeout:g} s — check "
                     f"that {node.host}:{node.port} is a DICOM service and that it knows our AE title")


def _tls_problem(node: RemoteNode, context) -> str:
    """Repeat the TLS handshake alone to say why it failed (pynetdicom only reports a closed connection)."""
    import ssl

    try:
        with socket.create_connection((node.host, node.port), timeout=min(node.timeout, 5.0)) as raw:
            with context.wrap_socket(raw, server_hostname=node.host if node.tls_verify else None) as tls:
                tls.recv(1)  # the peer sends nothing first; a refusal of our certificate arrives here
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except (OSError, socket.timeout) as exc:
        return "" if isinstance(exc, socket.timeout) else str(exc)
    return ""


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
    else decompressed to explicit VR little endian.

    The association is our own lean one (:mod:`.scu`): pynetdicom's requestor polls with 1 ms sleeps and its
    reactor can take the C-STORE response that ``send_c_store`` waits for (the send stall, see
    ``bench/pynetdicom_stall.py``). Should the peer stop answering anyway, we reconnect and send the instance
    again (MAX_RECONNECTS times)."""
    local = local or LocalNode()
    report = SendReport(node.address)
    if not files:
        return report
    pairs: dict[str, set[str]] = {}
    for f in files:
        pairs.setdefault(f["SOPClassUID"], set()).add(f["TransferSyntaxUID"] or IMPLICIT_LE)
    contexts: list[tuple[str, str]] = []
    for sop_class, syntaxes in pairs.items():
        offered = sorted(syntaxes) + [ts for ts in (EXPLICIT_LE, IMPLICIT_LE) if ts not in syntaxes]
        for ts in offered:  # one context per syntax, so that the peer can accept some and refuse others
            if len(contexts) >= MAX_CONTEXTS:
                raise DimseError(f"{node.address}: more than {MAX_CONTEXTS} SOP class / transfer syntax pairs; "
                                 f"send fewer kinds of object at once")
            contexts.append((sop_class, ts))
    assoc = _store_association(local, node, contexts)
    reconnects = 0
    try:
        n = 0
        while n < len(files):
            f = files[n]
            item = _send_one(assoc, f)
            if not assoc.is_established and item.status is None and reconnects < MAX_RECONNECTS:
                # the peer stopped answering or aborted mid-send: one new association, the same file again
                reconnects += 1
                report.notes.append(f"{node.address} stopped answering during instance {n + 1}: reconnected and "
                                    f"sent it again")
                assoc = _store_association(local, node, contexts)
                continue
            report.items.append(item)
            n += 1
            if progress is not None:
                progress(n, len(files))
            if not assoc.is_established and n < len(files):
                report.error = f"{node.address} ended the association after {n} of {len(files)} instances"
                break
    finally:
        assoc.release()
    return report


MAX_RECONNECTS = 3


def _store_association(local: LocalNode, node: RemoteNode, contexts: list[tuple[str, str]]):
    """Open our lean C-STORE association, turning every way it can fail into a sentence about the peer."""
    import ssl

    from .scu import AssociationFailed, StoreAssociation

    try:
        socket.getaddrinfo(node.host, node.port)
    except OSError as exc:
        raise DimseError(f"{node.address}: cannot resolve host {node.host!r} ({exc.strerror or exc})") from None
    context = node.ssl_context()
    try:
        sock = socket.create_connection((node.host, node.port), timeout=min(node.timeout, 10.0))
    except ConnectionRefusedError:
        raise DimseError(f"{node.address}: connection refused — is the peer running and listening on "
                         f"{node.host}:{node.port}? (firewall, wrong port)") from None
    except OSError as exc:
        raise DimseError(f"{node.address}: cannot connect to {node.host}:{node.port} "
                         f"({exc.strerror or exc or 'timed out'})") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        try:
            sock.settimeout(node.timeout)
            sock = context.wrap_socket(sock, server_hostname=node.host if node.tls_verify else None)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            problem = getattr(exc, "reason", None) or str(exc)
            raise DimseError(f"{node.address}: the TLS handshake failed: {problem} — check the CA file, our client "
                             f"certificate and key, and that the peer speaks TLS on this port") from None
    try:
        return StoreAssociation.open(sock, local.ae_title, node.ae_title, contexts, node.timeout)
    except AssociationFailed as exc:
        sock.close()
        if exc.rejected is not None:
            _result, source, reason = exc.rejected
            why = _REJECT_REASONS.get((source, reason), f"source {source}, reason {reason}")
            raise DimseError(f"{node.address} rejected the association: {why}") from None
        raise DimseError(f"{node.address}: the association was aborted or timed out after {node.timeout:g} s — "
                         f"check that {node.host}:{node.port} is a DICOM service and that it knows our AE title "
                         f"({exc})") from None


def _send_one(assoc, f: dict[str, Any]) -> SendItem:
    """One instance: the file's dataset as stored when the peer accepts its transfer syntax, else decoded
    (and decompressed) with pydicom and encoded in explicit (or implicit) VR little endian."""
    from .scu import PeerGone, read_for_sending

    path = f["path"]
    sop_class, sop_instance = f["SOPClassUID"], f["SOPInstanceUID"]
    stored_ts = f["TransferSyntaxUID"] or IMPLICIT_LE
    accepted = {ts for abstract, ts in assoc.accepted.values() if abstract == sop_class}
    if not accepted:
        return SendItem(sop_instance, path, None, f"the peer accepts no transfer syntax for SOP class {sop_class}")
    decompressed = False
    try:
        raw = read_for_sending(path) if stored_ts in accepted else None
        if raw is not None and raw[2] in accepted:
            data, offset, ts = raw
            dataset: Any = memoryview(data)[offset:]
        else:
            dataset, ts = _decoded(path, stored_ts, accepted)
            if dataset is None:
                return SendItem(sop_instance, path, None,
                                f"the peer accepts only {', '.join(sorted(accepted))} for this object")
            decompressed = ts != stored_ts
    except Exception as exc:  # noqa: BLE001 - one unreadable file: report it, send the rest
        return SendItem(sop_instance, path, None, f"not sent: {type(exc).__name__}: {exc}")
    try:
        status = assoc.store(assoc.context_for(sop_class, ts), sop_class, sop_instance, dataset)
    except PeerGone as exc:
        return SendItem(sop_instance, path, None, f"no answer (timeout or abort: {exc})", decompressed)
    return SendItem(sop_instance, path, status, status_meaning(status), decompressed)


def _decoded(path: str, stored_ts: str, accepted: set[str]) -> tuple[bytes | None, str]:
    """The dataset decoded with pydicom, decompressed if need be, encoded in a syntax the peer accepts."""
    import pydicom
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    ds = pydicom.dcmread(path)
    file_ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or stored_ts)
    if file_ts in accepted:
        target = file_ts
    else:
        if UID(file_ts).is_compressed:
            ds.decompress(generate_instance_uid=False)  # to explicit VR little endian; same instance
        target = EXPLICIT_LE if EXPLICIT_LE in accepted else IMPLICIT_LE
        if target not in accepted:
            return None, target
    uid = UID(target)
    return encode(ds, uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated), target


# ---- query / retrieve ----------------------------------------------------------------------------------------

LEVELS = ("study", "series", "image")
RETURN_KEYS = {
    "study": ["PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "StudyTime",
              "StudyDescription", "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"],
    "series": ["PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "Modality",
               "SeriesDescription", "NumberOfSeriesRelatedInstances"],
    "image": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"],
}
_QR_LEVEL = {"study": "STUDY", "series": "SERIES", "image": "IMAGE"}


@dataclass
class QueryFilters:
    name: str = ""
    patient_id: str = ""
    date: str = ""  # "YYYYMMDD", "FROM-TO", "FROM-" or "-TO" (dashes in dates allowed: 2024-01-31)
    modality: str = ""  # "CT" or "CT,MR"
    accession: str = ""
    description: str = ""
    study_uid: str = ""
    series_uid: str = ""


def _date_range(text: str) -> str:
    """'2024-01-01..2024-02-01', '20240101-20240201', '2024-01-01' → a DICOM date (range)."""
    text = text.strip()
    if ".." in text:
        low, high = text.split("..", 1)
    elif len(text.replace("-", "")) == 16 or (text.count("-") == 1 and len(text) in (9, 17)):
        low, high = text.split("-", 1) if "-" in text else (text, text)
    elif text.count("-") == 5:  # 2024-01-01-2024-02-01
        low, high = text[:10], text[11:]
    else:
        return text.replace("-", "")
    return f"{low.replace('-', '')}-{high.replace('-', '')}"


def build_query(level: str, filters: QueryFilters, charset: str):
    from pydicom.dataset import Dataset

    if level not in LEVELS:
        raise DimseError(f"level must be one of {', '.join(LEVELS)}")
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = _QR_LEVEL[level]
    for keyword in RETURN_KEYS[level]:
        setattr(ds, keyword, "")
    if filters.name:
        ds.PatientName = filters.name if ("*" in filters.name or "?" in filters.name) else f"*{filters.name}*"
    if filters.patient_id:
        ds.PatientID = filters.patient_id
    if filters.date:
        ds.StudyDate = _date_range(filters.date)
    if filters.modality:
        modalities = "\\".join(m.strip().upper() for m in filters.modality.replace("\\", ",").split(",") if m.strip())
        if level == "study":
            ds.ModalitiesInStudy = modalities
        elif level == "series":
            ds.Modality = modalities
    if filters.accession:
        ds.AccessionNumber = filters.accession
    if filters.description:
        keyword = "StudyDescription" if level == "study" else "SeriesDescription"
        setattr(ds, keyword, f"*{filters.description}*")
    if filters.study_uid:
        ds.StudyInstanceUID = filters.study_uid
    if filters.series_uid:
        ds.SeriesInstanceUID = filters.series_uid
    return ds


def query(node: RemoteNode, level: str = "study", filters: QueryFilters | None = None,
          local: LocalNode | None = None) -> list[dict[str, str]]:
    """Study Root C-FIND; each match as {keyword: text}, decoded in the character set the peer answered in."""
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    local = local or LocalNode()
    identifier = build_query(level, filters or QueryFilters(), node.charset)
    ae = _ae(local, node)
    ae.add_requested_context(FIND)
    assoc = _associate(ae, node)
    results = []
    try:
        for status, match in assoc.send_c_find(identifier, FIND):
            if status is None or "Status" not in status:
                raise DimseError(f"{node.address} stopped answering the C-FIND (timeout or abort)")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and match is not None:
                results.append({kw: _text(match.get(kw)) for kw in RETURN_KEYS[level] if kw in match})
            elif code != 0:
                raise DimseError(f"{node.address} answered the C-FIND with {_qr_meaning(code, 'find')}")
    finally:
        if assoc.is_established:
            assoc.release()
    return results


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _qr_meaning(code: int, service: str) -> str:
    from pynetdicom.status import (
        QR_FIND_SERVICE_CLASS_STATUS,
        QR_GET_SERVICE_CLASS_STATUS,
        QR_MOVE_SERVICE_CLASS_STATUS,
        code_to_category,
    )

    table = {"find": QR_FIND_SERVICE_CLASS_STATUS, "move": QR_MOVE_SERVICE_CLASS_STATUS,
             "get": QR_GET_SERVICE_CLASS_STATUS}[service]
    category, text = table.get(code, (code_to_category(code), ""))
    return f"status 0x{code:04X} ({category}{': ' + text if text else ''})"


@dataclass
class RetrieveReport:
    node: str
    method: str
    requested: int = 0  # instances the peer has for the request
    already_here: int = 0  # skipped: in the database already
    completed: int = 0
    failed: int = 0
    warning: int = 0
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False


def retrieve(db, node: RemoteNode, uids: list[str], method: str | None = None, local: LocalNode | None = None,
             progress: Callable[[int, int], None] | None = None, destination: str | None = None,
             cancel: threading.Event | None = None) -> RetrieveReport:
    """C-GET into the database, or C-MOVE to our listener (started for the duration when not running).

    Each UID is a study or series UID at the peer. Instances already in the database are left out, when the
    peer answers image-level queries, so that an interrupted retrieve resumes where it stopped. Setting
    ``cancel`` aborts the association at the next response; what arrived until then stays in the database."""
    local = local or LocalNode()
    method = method or node.retrieve
    report = RetrieveReport(node.address, method)
    requests = []
    for uid in uids:
        level, images = _locate(node, uid, local)
        wanted = [i for i in images if db.find("instance", i["SOPInstanceUID"]) is None]
        report.requested += len(images)
        report.already_here += len(images) - len(wanted)
        if images and not wanted:
            continue
        if images:  # ask for exactly the missing instances
            for series, members in _by_series(wanted).items():
                requests.append(("IMAGE", members[0]["StudyInstanceUID"], series, [m["SOPInstanceUID"] for m in members]))
        else:  # the peer did not list images: ask for the whole study/series
            requests.append((level, uid if level == "STUDY" else "", uid if level == "SERIES" else "", []))
    total = report.requested - report.already_here
    done = 0
    for qr_level, study, series, sops in requests:
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break

        def tick(completed: int) -> None:
            if progress is not None:
                progress(done + completed, total)
            if cancel is not None and cancel.is_set():
                raise _Cancelled

        got = _get(db, node, local, qr_level, study, series, sops, report, tick) if method == "get" else \
            _move(db, node, local, qr_level, study, series, sops, report, tick, destination or local.ae_title)
        done += got
    return report


def _locate(node: RemoteNode, uid: str, local: LocalNode) -> tuple[str, list[dict[str, str]]]:
    """Whether ``uid`` is a study or a series at the peer, and its instances (empty if it won't list them)."""
    for level, filters in (("study", QueryFilters(study_uid=uid)), ("series", QueryFilters(series_uid=uid))):
        found = query(node, level, filters, local)
        if found:
            study_uid = found[0].get("StudyInstanceUID", uid)
            image_filters = QueryFilters(study_uid=study_uid, series_uid=uid if level == "series" else "")
            try:
                images = query(node, "image", image_filters, local)
            except DimseError:
                images = []
            return level.upper(), images
    raise DimseError(f"{node.address} has no study or series {uid}")


def _by_series(images: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = {}
    for image in images:
        groups.setdefault(image["SeriesInstanceUID"], []).append(image)
    return groups


def _identifier(level: str, study: str, series: str, sops: list[str]):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study
    if series:
        ds.SeriesInstanceUID = series
    if sops:
        ds.SOPInstanceUID = sops
    return ds


class _Cancelled(Exception):
    """Raised by a retrieve's progress tick when the user cancels: the association is aborted."""


def _follow(responses, node: RemoteNode, report: RetrieveReport, service: str, tick,
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
        if service == "move":
            report.completed += seen[0]
        return seen[0]


def _read_responses(responses, node: RemoteNode, report: RetrieveReport, service: str, tick,
                    local: LocalNode | None, seen: list[int]) -> int:
    completed = 0
    for status, _identifier_ds in responses:
        if status is None or "Status" not in status:
            report.errors.append(f"{node.address} stopped answering the C-{service.upper()} (timeout or abort)")
            break
        code = int(status.Status)
        completed = int(status.get("NumberOfCompletedSuboperations", completed) or 0)
        seen[0] = completed
        comment = str(status.get("ErrorComment", "") or "").strip()
        if code in (0xFF00, 0xFF01):
            tick(completed)
            continue
        try:
            tick(completed)
        except _Cancelled:
            pass  # the retrieve is over: nothing left to cancel
        report.completed += completed
        report.failed += int(status.get("NumberOfFailedSuboperations", 0) or 0)
        report.warning += int(status.get("NumberOfWarningSuboperations", 0) or 0)
        message = ""
        me = local or LocalNode()
        hint = (f"The peer must know our AE title, host and port as a destination; add it to the peer's list of "
                f'nodes, e.g. for Orthanc: "DicomModalities": {{"dicomtui": ["{me.ae_title}", "<this host>", '
                f"{me.port}]}}")
        if code == 0xA801:
            message = f"{node.address} does not know the move destination {me.ae_title}: " \
                      f"{_qr_meaning(code, 'move')}. {hint}"
        elif service == "move" and code == 0xC000 and completed == 0 and report.failed == 0:
            message = (f"{node.address} answered the C-MOVE with {_qr_meaning(code, 'move')} without sending "
                       f"anything{' (' + comment + ')' if comment else ''}. Most often the peer does not know the "
                       f"move destination {me.ae_title}. {hint}")
        elif code == 0xA702:
            message = (f"{node.address}: {_qr_meaning(code, service)}: the receiving side refused the instances "
                       f"(disk full or too many files?)")
        elif code == 0xB000:
            message = f"{node.address}: some sub-operations failed ({report.failed} failed, {completed} completed)"
        elif code != 0:
            message = f"{node.address} answered the C-{service.upper()} with {_qr_meaning(code, service)}" + \
                      (f" ({comment})" if comment else "")
        if message and message not in report.errors:
            report.errors.append(message)
    return completed


def _move(db, node, local, level, study, series, sops, report, tick, destination: str) -> int:
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

    from .listener import Listener

    listener = None
    if not _port_open("127.0.0.1" if local.bind in ("0.0.0.0", "") else local.bind, local.port):
        listener = Listener(db.root, local)  # nobody listens for us: receive for the duration
        listener.start()
    try:
        ae = _ae(local, node)
        ae.add_requested_context(MOVE)
        assoc = _associate(ae, node)
        try:
            done = _follow(assoc.send_c_move(_identifier(level, study, series, sops), destination, MOVE), node,
                           report, "move", tick, LocalNode(destination, local.port), assoc)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        if listener is not None:
            listener.stop()
    return done


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _get(db, node, local, level, study, series, sops, report, tick) -> int:
    from pynetdicom import StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    from .listener import store_received

    ae = _ae(local, node)
    ae.add_requested_context(GET)
    roles = []
    for context in StoragePresentationContexts[:127]:  # 128 contexts at most, one is the C-GET itself
        ae.add_requested_context(context.abstract_syntax)
        roles.append(build_role(context.abstract_syntax, scp_role=True))
    received = []

    def on_store(event) -> int:
        record, status, _problem = store_received(db.root, event.encoded_dataset(include_meta=True))
        if record is not None:
            received.append(record)
        return status

    assoc = _associate(ae, node, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        done = _follow(assoc.send_c_get(_identifier(level, study, series, sops), GET), node, report, "get", tick,
                       assoc=assoc)
    finally:
        if assoc.is_established:
            assoc.release()
        for start in range(0, len(received), 500):  # indexed even when cancelled: nothing received is lost
            db.add_files(received[start : start + 500])
    if report.cancelled:
        report.completed += len(received)
        return len(received)
    return done


# ---- doctor --------------------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run (an earlier check failed, or nothing to test with)
    detail: str


def doctor(db, node: RemoteNode, local: LocalNode | None = None) -> list[Check]:
    """Check a node step by step, each result in plain words: reachable, echo (us → them), query, and a C-MOVE
    of one instance back to us (them → us: does the peer know and reach our AE, host and port?)."""
    import time

    local = local or LocalNode()
    checks: list[Check] = []
    try:
        socket.getaddrinfo(node.host, node.port)
        start = time.monotonic()
        with socket.create_connection((node.host, node.port), timeout=min(node.timeout, 5.0)):
            pass
        checks.append(Check("network", True, f"{node.host}:{node.port} accepts TCP connections "
                                             f"({(time.monotonic() - start) * 1000:.0f} ms)"))
    except OSError as exc:
        checks.append(Check("network", False, f"cannot connect to {node.host}:{node.port}: {exc.strerror or exc} — "
                                              f"is the peer running, is this the right port, is a firewall between?"))
        return checks + [Check(name, None, "not tried") for name in ("echo", "query", "move to us")]
    result = echo(node, local)
    checks.append(Check("echo", result.ok, result.message))
    if not result.ok:
        return checks + [Check(name, None, "not tried") for name in ("query", "move to us")]
    try:
        studies = query(node, "study", QueryFilters(), local)
        checks.append(Check("query", True, f"C-FIND answered: {len(studies)} studies"))
    except DimseError as exc:
        checks.append(Check("query", False, f"{exc} — the peer may accept C-FIND only from AE titles it knows"))
        return checks + [Check("move to us", None, "not tried")]
    sample = None
    for study in studies[:5]:
        images = query(node, "image", QueryFilters(study_uid=study.get("StudyInstanceUID", "")), local)
        if images:
            sample = images[0]
            break
    if sample is None:
        return checks + [Check("move to us", None, "the peer listed no instance to move: cannot test the way back")]
    already = db.find("instance", sample["SOPInstanceUID"]) is not None
    report = RetrieveReport(node.address, "move")
    _move(db, node, local, "IMAGE", sample["StudyInstanceUID"], sample["SeriesInstanceUID"],
          [sample["SOPInstanceUID"]], report, lambda _done: None, local.ae_title)
    if report.errors or report.completed != 1:
        detail = "; ".join(report.errors) or f"the peer moved {report.completed} of 1 instance"
        checks.append(Check("move to us", False, detail))
    else:
        checks.append(Check("move to us", True, f"the peer reached us as {local.ae_title} on port {local.port} "
                                                f"(one instance moved{', already in the database' if already else ''})"))
    return checks
