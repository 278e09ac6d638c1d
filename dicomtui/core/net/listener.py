"""The C-STORE (and C-ECHO) listener: every received instance is made durable in the database storage before
we answer success, then indexed in batches by one writer thread.

Durable means: written to ``incoming/``, fsync'd, renamed into ``dicom/…`` and the folder fsync'd — a crash
after a success response loses nothing; at start, files in storage that the index does not know (a crash between
rename and index) are indexed. Stored as received: compressed transfer syntaxes stay compressed.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import storage
from ..database import DicomDatabase, FileRecord, fill_patient_id
from ..header import HeaderError, read_header
from .nodes import LocalNode

log = logging.getLogger("dicomtui.listener")

BATCH = 256  # instances per index transaction
FLUSH_S = 0.25  # longest wait before pending instances are indexed
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700


@dataclass
class AssociationStats:
    """One association, as the listener panel and the log show it."""

    calling_ae: str
    address: str
    started: float = field(default_factory=time.monotonic)
    images: int = 0
    bytes: int = 0
    failures: int = 0
    ended: str = ""  # "released" / "aborted" once over

    def summary(self) -> str:
        seconds = max(time.monotonic() - self.started, 1e-6)
        return (f"association from {self.calling_ae} ({self.address}) {self.ended or 'open'}: {self.images} images, "
                f"{self.bytes / 1e6:.1f} MB in {seconds:.1f} s ({self.images / seconds:.0f}/s)"
                + (f", {self.failures} refused" if self.failures else ""))


def set_nodelay(event) -> None:
    """EVT_CONN_OPEN handler: without TCP_NODELAY each small C-STORE waits for a delayed ACK (~40 ms)."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def store_received(root: Path, data: bytes) -> tuple[FileRecord | None, int, str]:
    """Make a received instance (file bytes with meta) durable in storage: (record to index, status, problem).

    Written to ``incoming/``, fsync'd, renamed into ``dicom/…``, folder fsync'd — before any success is sent."""
    tmp = storage.temp_file(root, "received")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        header = read_header(str(tmp), len(data))
        missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not header.get(k)]
        if missing:
            raise HeaderError(f"no {' / '.join(missing)}")
        fill_patient_id(header)
        rel = storage.relative_path(header["StudyInstanceUID"], header["SeriesInstanceUID"], header["SOPInstanceUID"])
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        storage.fsync_dir(dest.parent)
    except HeaderError as exc:
        tmp.unlink(missing_ok=True)
        return None, STATUS_CANNOT_UNDERSTAND, str(exc)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return None, STATUS_OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}"
    st = dest.stat()
    return FileRecord(header, rel, True, st.st_size, st.st_mtime_ns, rel, st.st_size, st.st_mtime_ns), 0, ""


_FLUSH = object()  # queued when an association ends: index its files at once


class Listener:
    """Run with :meth:`start` / :meth:`stop` (or as a context manager); ``on_event`` receives
    :class:`AssociationStats` whenever an association starts, stores an image or ends."""

    def __init__(self, db_path: Path, local: LocalNode, on_event: Callable[[AssociationStats], None] | None = None):
        self.db_path = Path(db_path)
        self.local = local
        self.on_event = on_event
        self.associations: list[AssociationStats] = []
        self._queue: queue.Queue = queue.Queue()  # FileRecord, _FLUSH, or None (stop)
        self._writer: threading.Thread | None = None
        self._server = None
        self._root: Path | None = None
        self.indexed = 0
        self.index_errors: list[str] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        with DicomDatabase.open(self.db_path) as db:
            self._root = db.root
            self._catch_up(db)
        ae = AE(ae_title=self.local.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_associations = self.local.max_associations
        if self.local.allow:
            ae.require_calling_aet = list(self.local.allow)
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, lambda event: STATUS_SUCCESS),
                    (evt.EVT_CONN_OPEN, set_nodelay), (evt.EVT_ESTABLISHED, self._on_established),
                    (evt.EVT_RELEASED, self._on_end), (evt.EVT_ABORTED, self._on_end)]
        self._writer = threading.Thread(target=self._write_loop, name="listener-index", daemon=True)
        self._writer.start()
        self._server = ae.start_server((self.local.bind, self.local.port), block=False, evt_handlers=handlers,
                                       ssl_context=self.local.ssl_context())
        log.info("listening as %s on %s:%d%s into %s", self.local.ae_title, self.local.bind, self.port,
                 " (TLS)" if self.local.tls_cert else "", self.db_path)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return self._server.server_address[1] if self._server is not None else self.local.port

    def stop(self) -> None:
        """Stop accepting, let open associations finish their writes, index what is pending."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- events ----------------------------------------------------------------------------------------------

    def _stats(self, event) -> AssociationStats:
        stats = getattr(event.assoc, "_dicomtui_stats", None)
        if stats is None:
            requestor = event.assoc.requestor
            stats = AssociationStats(requestor.ae_title, f"{requestor.address}:{requestor.port}")
            event.assoc._dicomtui_stats = stats
            self.associations.append(stats)
        return stats

    def _on_established(self, event) -> None:
        stats = self._stats(event)
        self._emit(stats)

    def _on_end(self, event) -> None:
        self._queue.put(_FLUSH)  # index what this association sent now, not after FLUSH_S
        stats = self._stats(event)
        stats.ended = "released" if event.event.name == "EVT_RELEASED" else "aborted"
        log.info(stats.summary())
        self._emit(stats)

    def _emit(self, stats: AssociationStats) -> None:
        if self.on_event is not None:
            self.on_event(stats)

    def _on_store(self, event) -> int:
        """Make the instance durable in storage, queue it for the index, then (and only then) say success."""
        stats = self._stats(event)
        assert self._root is not None
        data = event.encoded_dataset(include_meta=True)
        record, status, problem = store_received(self._root, data)
        if record is None:
            stats.failures += 1
            log.warning("refused an instance from %s: %s", stats.calling_ae, problem)
            return status
        self._queue.put(record)
        stats.images += 1
        stats.bytes += len(data)
        self._emit(stats)
        return STATUS_SUCCESS

    # ---- indexing --------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        """One writer: index received files in batches (a 1,000-image study is a handful of transactions)."""
        with DicomDatabase.open(self.db_path) as db:
            pending: list[FileRecord] = []
            deadline = None
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = ...
                if isinstance(item, FileRecord):
                    pending.append(item)
                    deadline = deadline or time.monotonic() + FLUSH_S
                if pending and (not isinstance(item, FileRecord) or len(pending) >= BATCH):
                    self._flush(db, pending)
                    pending = []
                    deadline = None
                if item is None:
                    return

    def _flush(self, db: DicomDatabase, pending: list[FileRecord]) -> None:
        try:
            db.add_files(pending)
            self.indexed += len(pending)
        except Exception as exc:  # noqa: BLE001 - the files are durable; the index catches up at next start
            self.index_errors.append(str(exc))
            log.error("indexing %d received files failed (%s); they are in storage and will be indexed at the "
                      "next start", len(pending), exc)

    def _catch_up(self, db: DicomDatabase) -> None:
        """Index files that reached storage but not the index (a crash between the two)."""
        orphans = db.storage_orphans()
        records = []
        for rel in orphans:
            full = db.root / rel
            try:
                header = read_header(str(full))
                fill_patient_id(header)
                st = full.stat()
                records.append(FileRecord(header, rel, True, st.st_size, st.st_mtime_ns, rel, st.st_size,
                                          st.st_mtime_ns))
            except (HeaderError, OSError) as exc:
                log.warning("left in storage, not indexed: %s (%s)", rel, exc)
        if records:
            db.add_files(records)
            log.info("indexed %d files found in storage after an interruption", len(records))
