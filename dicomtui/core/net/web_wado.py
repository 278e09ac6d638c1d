"""WADO-RS retrieve (PS3.18 10.4) into the database: the retrieve plan of :mod:`.retrieve` (what the peer has and
this database lacks, by an instance-level QIDO-RS) executed over HTTP. The multipart/related response is read as
it streams: each instance is written to a temp file in ``incoming/``, checked and renamed into ``dicom/`` by the
listener's store path (:func:`.listener.store_written`, as a C-GET's instances are) and indexed in small batches
while the rest arrives. Memory stays at one read chunk, whatever the study's size.

Durability: nobody waits for our answer per instance (as a C-STORE's peer does), so instead of two flushes per file
(measured: 0.68-1.0 s for 100 × 512 KiB, against 0.13-0.18 s without) one file-system flush (:class:`.durable.
GroupSync`, the listener's ``--sync batch``) precedes the indexing of each batch: an instance is in the index only
once its data and rename are on disk. A crash loses at most the unindexed ones, which the next retrieve fetches
again (instance diff). ``sync`` "none" skips the flush.

The multipart reader is written here (:func:`read_parts`), not taken from dicomweb-client: its decoder keeps
each part whole in memory and yields bytes to be written afterwards, and this is the retrieve's hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import storage
from ..errors import NetworkError
from .durable import GroupSync
from .incoming import Incoming
from .listener import open_temp, store_written
from .nodes import RemoteNode
from .query import QueryFilters
from .retrieve import RetrievePlan, RetrieveReport, RetrieveTarget
from .web import HttpStatusError, WebClient, qido, qido_page

READ_CHUNK = 1 << 20  # bytes read from the response at a time
INDEX_EVERY = 64  # instances indexed together (also at the end, on cancel and on error)
INDEX_EVERY_S = 0.5  # ... or when the oldest unindexed one waited this long
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'  # as stored (PS3.18 8.7.3.5.2)
ACCEPT_DEFAULT = 'multipart/related; type="application/dicom"'  # the server's default (Explicit VR Little Endian)


@dataclass
class WebRetrieveReport(RetrieveReport):
    """A retrieve's counts (see :class:`.retrieve.RetrieveReport`) and the bytes received."""

    bytes_received: int = 0

    def summary(self) -> str:
        return super().summary() + f", {self.bytes_received / 1e6:.1f} MB"


class PartSink:
    """Where :func:`read_parts` puts each part: ``start()``, ``data(view)`` any number of times, ``end()`` (False:
    stop reading); ``abort()`` when the stream stops inside a part."""

    def start(self) -> None: ...
    def data(self, view: memoryview) -> None: ...
    def end(self) -> bool:
        return True

    def abort(self) -> None: ...


def read_parts(chunks: Iterable[bytes], boundary: bytes, sink: PartSink) -> bool:
    """Split a multipart body (RFC 2046 5.1) arriving in ``chunks`` into its parts, each handed to ``sink`` as
    it arrives (part headers skipped). True when the closing delimiter came; False when the chunks ended first
    (after ``sink.abort()`` when a part was open) or ``sink.end()`` said stop."""
    delimiter = b"\r\n--" + boundary
    keep = len(delimiter) + 1
    buf = bytearray(b"\r\n")  # the first delimiter has no CRLF before it
    state = "preamble"  # -> "headers" -> "body" -> "headers" ...
    for chunk in chunks:
        buf += chunk
        while True:
            if state == "headers":
                if len(buf) < 2:
                    break
                if buf[:2] == b"--":
                    return True
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                del buf[: end + 4]
                sink.start()
                state = "body"
            at = buf.find(delimiter)
            if at < 0:
                if len(buf) > keep:  # all but a tail that may hold the start of the delimiter
                    if state == "body":
                        with memoryview(buf) as view:
                            sink.data(view[: len(buf) - keep])
                    del buf[: len(buf) - keep]
                break
            if state == "body":
                with memoryview(buf) as view:
                    sink.data(view[:at])
                if sink.end() is False:
                    return False
            del buf[: at + len(delimiter)]
            state = "headers"
    if state == "body":
        sink.abort()
    return False


class _Storer(PartSink):
    """Each part into ``incoming/`` (an :class:`.incoming.Incoming` temp file), then stored as the listener stores
    (durable as ``sync`` says, renamed into ``dicom/``), indexed in batches. A part is not written when the disk
    would go under the free-space floor ``min_free`` (:func:`.storage.floor_problem`, reckoning the part as large
    as the one before it: a multipart part has no size up front); the retrieve stops there."""

    def __init__(self, db, sync: str, report: WebRetrieveReport, tick: Callable[[], None],
                 cancel: threading.Event | None, min_free: int = 0):
        self.db, self.root, self.sync, self.report, self.tick = db, Path(db.root), sync, report, tick
        self.cancel, self.min_free, self.last_size = cancel, min_free, 0
        self.group = GroupSync(self.root) if sync != "none" else None
        self.part: Incoming | None = None
        self.refused = ""  # why the part arriving is not written (the floor), "" when it is
        self.pending: list = []
        self.oldest = 0.0

    def start(self) -> None:
        if problem := storage.floor_problem(self.root, self.min_free, self.last_size):
            self.refused = problem
            return
        self.part = Incoming(lambda: open_temp(self.root), 0, 0, "", "", b"")

    def data(self, view: memoryview) -> None:
        self.report.bytes_received += len(view)
        if self.part is not None:
            self.part.write(view)

    def end(self) -> bool:
        """Store the part; False when the user cancelled (stop after this instance) or the floor stopped it."""
        if self.refused:
            self.report.errors.append(floor_stop(self.refused, self.report.completed))
            return False
        self.last_size = self.part.size if self.part is not None else 0
        self._store()
        self.tick()
        if self.cancel is not None and self.cancel.is_set():
            self.report.cancelled = True
            return False
        return True

    def _store(self) -> None:
        part, self.part = self.part, None
        assert part is not None
        problem = part.problem
        if part.close(flush=False) == 0:  # flushed with its batch, before indexing (see the module's text)
            record, _status, problem = store_written(self.root, part.path, part.size, _no_flush)
            if record is not None:
                self.pending.append(record)
                self.oldest = self.oldest or time.monotonic()
                self.report.completed += 1
                if len(self.pending) >= INDEX_EVERY or time.monotonic() - self.oldest > INDEX_EVERY_S:
                    self.flush()
                return
        self.report.failed += 1
        if problem and problem not in self.report.errors:
            self.report.errors.append(f"an instance received could not be stored: {problem}")

    def abort(self) -> None:
        if self.refused and not any(storage.BELOW_FLOOR in e for e in self.report.errors):
            self.report.errors.append(floor_stop(self.refused, self.report.completed))
        if self.part is not None:
            self.part.discard()
            self.part = None

    def flush(self) -> None:
        """Make what was stored since the last flush durable (one file-system flush), then index it. Raises
        OSError when the flush fails (nothing of the batch is indexed)."""
        if self.pending:
            if self.group is not None:
                self.group.wait()
            self.db.add_files(self.pending)
            self.pending, self.oldest = [], 0.0

    def close(self) -> None:
        """Abort an open part, index what is pending, stop the flushing thread."""
        try:
            self.abort()
            self.flush()
        finally:
            if self.group is not None:
                self.group.close()


def _no_flush(_path: Path) -> None:
    """The rename is flushed with its batch (:meth:`_Storer.flush`), not on its own."""


def floor_stop(problem: str, kept: int) -> str:
    """The sentence of a retrieve stopped at the free-space floor: the floor and what was kept."""
    kept_text = (f"the {kept} instance{'s' * (kept != 1)} retrieved before are kept and indexed" if kept
                 else "nothing was retrieved")
    return (f"WADO-RS stopped {storage.BELOW_FLOOR}: {problem}; {kept_text}; make room and retrieve again to "
            f"fetch the rest")


def plan_web_retrieve(db, client: WebClient, uids: list[str]) -> RetrievePlan:
    """For each UID (a study or a series at the peer, found by QIDO-RS): the whole study/series when the database
    holds none of it (no instance-level QIDO needed), else its instances at the peer (QIDO-RS) less those here.
    Raises NetworkError when the peer has neither."""
    plan = RetrievePlan()
    for uid in uids:
        if qido_page(client, "studies", f"StudyInstanceUID={uid}&limit=1"):
            level, study_uid, series_uid = "STUDY", uid, ""
        else:
            series = qido_page(client, "series", f"SeriesInstanceUID={uid}&limit=1")
            if not series:
                raise NetworkError(f"{client.base} has no study or series {uid}")
            study_uid = str(series[0].get("0020000D", {}).get("Value", [""])[0])
            level, series_uid = "SERIES", uid
        if db.find(level.lower(), uid) is None:
            plan.targets.append(RetrieveTarget(level, study_uid, series_uid))
            continue
        images = qido(client.node, "image", QueryFilters(study_uid=study_uid, series_uid=series_uid), client)
        plan.add(level, uid, images, lambda sop: db.find("instance", sop) is not None)
    return plan


def web_retrieve(db, node: RemoteNode, uids: list[str], progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None, sync: str = "file",
                 report: WebRetrieveReport | None = None, min_free: int = 0) -> WebRetrieveReport:
    """WADO-RS the studies/series ``uids`` into ``db``: what the database lacks (see :func:`plan_web_retrieve`),
    each instance stored and indexed as it arrives. ``progress(done, total)`` counts instances (the total grows
    with ``done`` while unknown: a whole study asked for); ``cancel`` stops after the instance arriving (or at
    the next read chunk), keeping what arrived. Raises NetworkError when the peer cannot be asked at all (HTTP
    status and what to check); a failure during the transfer is in ``report.errors``, what arrived is kept.
    ``report``: one made by the caller, to read ``bytes_received`` from ``progress`` while it runs. ``min_free``:
    the free-space floor (bytes, ``LocalNode.min_free_bytes``): nothing is asked when the disk is under it, and
    the retrieve stops before an instance would take it there (the reason in ``report.errors``)."""
    report = report or WebRetrieveReport(node.url, "wado")
    if problem := storage.floor_problem(Path(db.root), min_free):
        report.errors.append(floor_stop(problem, 0))
        return report
    with WebClient(node) as client:
        plan = plan_web_retrieve(db, client, uids)
        report.requested, report.already_here = plan.requested, plan.already_here
        total = plan.requested - plan.already_here

        def tick() -> None:
            if progress is not None:
                progress(report.completed + report.failed, max(total, report.completed + report.failed))

        storer = _Storer(db, sync, report, tick, cancel, min_free)
        try:
            paths = [path for target in plan.targets if target.needed for path in _wado_paths(target)]
            for path in paths:
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                if report.cancelled or not _fetch(client, path, storer, cancel, report):
                    break
        finally:
            storer.close()
            # a whole study/series asked for: the peer's count is what it sent
            report.requested = report.requested or report.completed + report.failed
    return report


def _wado_paths(target: RetrieveTarget) -> list[str]:
    """The WADO-RS resources of a target: the whole study/series, or its missing instances one by one (all of a
    series' missing: the series)."""
    series = f"studies/{target.study_uid}/series/{target.series_uid}"
    if target.whole:
        return [series if target.series_uid else f"studies/{target.study_uid}"]
    if len(target.missing) == len(target.at_peer):
        return [series]
    return [f"{series}/instances/{sop}" for sop in target.missing]


def _fetch(client: WebClient, path: str, storer: _Storer, cancel: threading.Event | None,
           report: WebRetrieveReport) -> bool:
    """One WADO-RS request streamed into ``storer``: False when the retrieve must stop (cancelled, or the
    transfer broke: the reason in ``report.errors``)."""
    import requests

    url = client.url("wado", path)
    try:
        response = client.request("GET", url, "WADO-RS", headers={"Accept": ACCEPT}, stream=True)
    except HttpStatusError as exc:  # a server that will not send "as stored" (406): its default syntax, then
        if exc.status != 406:
            raise
        response = client.request("GET", url, "WADO-RS", headers={"Accept": ACCEPT_DEFAULT}, stream=True)
    with response:
        boundary = _boundary(response.headers.get("Content-Type", ""))
        if boundary is None:
            report.errors.append(f"WADO-RS: {url} did not answer multipart/related (Content-Type "
                                 f"{response.headers.get('Content-Type', 'none')!r})")
            return False

        def chunks():
            for chunk in response.iter_content(READ_CHUNK):
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    return
                yield chunk

        try:
            complete = read_parts(chunks(), boundary, storer)
        except requests.exceptions.RequestException as exc:
            storer.abort()
            report.errors.append(f"WADO-RS: the transfer from {url} broke off ({exc}); what arrived is kept, "
                                 f"retrieve again to fetch the rest")
            return False
    if not complete and not report.cancelled and not storer.refused:  # the floor stopped it: said already
        report.errors.append(f"WADO-RS: {url} ended its answer early; what arrived is kept, retrieve again "
                             f"to fetch the rest")
    return complete


def _boundary(content_type: str) -> bytes | None:
    """The boundary of a multipart/related Content-Type, or None."""
    media, *params = [p.strip() for p in content_type.split(";")]
    if media.lower() != "multipart/related":
        return None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"').encode("latin-1")
    return None
