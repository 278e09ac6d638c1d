"""The C-STORE (and C-ECHO) listener: every received instance is made durable in the database storage before
we answer success, then indexed in batches by one writer thread.

Durable means (``--sync file``, the default): written to ``incoming/``, flushed, renamed into ``dicom/…`` and the
folder flushed — a crash after a success response loses nothing (``batch`` and ``none``: :mod:`.durable`). At
start, files in storage that the index does not know (a crash between rename and index) are indexed. Stored as
received: compressed transfer syntaxes stay compressed.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .. import storage
from ..database import DicomDatabase, FileRecord
from ..errors import HeaderError, NodeError
from . import identity
from .durable import GroupSync, flush_data
from .nodes import SYNC_MODES, LocalNode
from .scp import Association, Handler, StoreSCP
from .status import Status
from .wire import meta_uids, peer_text

log = logging.getLogger("dicomtui.listener")

BATCH = 256  # instances per index transaction
FLUSH_S = 0.25  # longest wait before pending instances are indexed
PUBLISH_S = 1.0  # while images arrive, the live state (`status`) is rewritten at most this often
KEPT_ASSOCIATIONS = 1000  # Listener.associations keeps this many, the latest


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
    ended_at: float | None = None  # time.monotonic() when it ended

    @property
    def seconds(self) -> float:
        """How long it lasted (so far, while open)."""
        return max((self.ended_at or time.monotonic()) - self.started, 1e-6)

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    def summary(self) -> str:
        seconds = self.seconds
        return (f"association from {peer_text(self.calling_ae)} ({self.address}) {self.ended or 'open'}: "
                f"{self.images} images, "
                f"{self.bytes / 1e6:.1f} MB in {seconds:.1f} s ({self.images / seconds:.0f}/s)"
                + (f", {self.failures} refused" if self.failures else ""))

    def event(self) -> dict:
        """The association as one JSON log object (``--log-format json``): the peer's values escaped and cut."""
        return {"event": "association", "calling_ae": peer_text(self.calling_ae, 64), "address": self.address,
                "images": self.images, "bytes": self.bytes, "refused": self.failures,
                "status": self.ended or "open", "seconds": round(self.seconds, 3)}


below_floor = storage.below_floor  # moved to storage (indexer's import --copy stops at the floor too)


def open_temp(root: Path) -> tuple[Path, int]:
    """A new, empty temporary file in ``incoming/`` of the database folder ``root``, open for writing: the
    SCP's temp-file factory (:data:`.incoming.TempFileFactory`)."""
    path = storage.temp_file(root, "received")
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)


def store_received(root: Path, data: bytes, sync: str = "file", min_free: int = 0
                   ) -> tuple[FileRecord | None, int, str]:
    """Make a received instance (file bytes with meta) durable in storage: (record to index, status, problem).
    The C-GET's receiving side (the peer's C-STOREs on our association).

    Written to ``incoming/``, flushed, renamed into ``dicom/…``, folder flushed — before any success is sent;
    ``sync`` "none": no flush (as the listener's ``--sync none``); "batch" flushes as "file" does (one association
    sends one instance at a time: there is nothing to group). Below the free-space floor ``min_free`` (bytes; see
    :func:`below_floor`) nothing is written: status 0xA700."""
    if problem := below_floor(root, min_free):
        return None, Status.OUT_OF_RESOURCES, problem
    tmp = storage.temp_file(root, "received")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync != "none":
                flush_data(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return None, Status.OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}"
    return store_written(root, tmp, len(data), _no_flush if sync == "none" else folder_flushed)


def _no_flush(_path: Path) -> None:
    """``--sync none``: nothing is flushed (DCMTK storescp's behaviour)."""


def folder_flushed(path: Path) -> None:
    """``--sync file``'s second half: the rename of ``path`` (already flushed itself) made durable."""
    storage.fsync_dir(path.parent)


def store_written(root: Path, tmp: Path, size: int, durable: Callable[[Path], None] = folder_flushed
                  ) -> tuple[FileRecord | None, int, str]:
    """The second half of :func:`store_received`: ``tmp`` (in ``incoming/``, complete and flushed) is checked,
    renamed into ``dicom/…`` and ``durable(new path)`` called (by default: its folder flushed; raises OSError); on
    failure it is deleted. The record is made by ``FileRecord.from_file``, as an import or ``db check`` makes it.

    The file meta of ``tmp`` was written from the C-STORE request (its Affected SOP Class and Instance UIDs, by
    our SCP or by pynetdicom's): when the data set's SOPClassUID or SOPInstanceUID differs, the file is not kept
    and the status is 0xA900, "Error: Data Set does not match SOP Class" (PS3.4 B.2.3, Table B.2-1). For the class
    that is the status's meaning. For the instance we chose a failure too, not storing under the data set's UID
    with a warning: PS3.7 9.1.1.1 says the Affected SOP Instance UID identifies the instance stored, the peer
    records our answer against that UID, and indexing another UID than the one it announced (possibly one we hold
    already, which the file would replace) would make its records and ours disagree silently; 0xA9xx is the
    failure PS3.4 gives for a data set that does not match its request."""
    from ..database import read_checked

    try:
        header, _warning = read_checked(str(tmp), size)
        problem = _mismatch(tmp, header)
        if problem:
            tmp.unlink(missing_ok=True)
            return None, Status.DATASET_MISMATCH, problem
        rel = storage.relative_path(header["StudyInstanceUID"], header["SeriesInstanceUID"], header["SOPInstanceUID"])
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        durable(dest)
    except HeaderError as exc:
        tmp.unlink(missing_ok=True)
        return None, Status.CANNOT_UNDERSTAND, str(exc)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return None, Status.OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}"
    return FileRecord.from_file(dest, root=root, header=header), 0, ""


def _mismatch(tmp: Path, header: dict) -> str:
    """Why the data set in ``tmp`` does not match the request its file meta records ("" when it does): a read of
    the first bytes, already in the page cache (the header was just read from them)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        expected = meta_uids(os.pread(fd, 1024, 0))
    finally:
        os.close(fd)
    if expected is None:
        return ""
    for keyword, announced in zip(("SOPClassUID", "SOPInstanceUID"), expected, strict=True):
        if announced and header.get(keyword) != announced:
            return (f"the data set's {keyword} {peer_text(header.get(keyword))} is not the request's "
                    f"{peer_text(announced)}")
    return ""


_SYNC_WORDS = {"file": "each instance flushed to disk before its success response (--sync file)",
               "batch": "instances flushed to disk in shared rounds before their success responses (--sync batch)",
               "none": "instances NOT flushed before their success responses (--sync none, as DCMTK storescp: a "
                       "crash can lose instances the sender was told are stored)"}
_FLUSH = object()  # queued when an association ends: index its files at once


class ForwardHook(Protocol):
    """What the listener asks of forwarding (:class:`.forwarder.Forwarding`, given by the face that starts the
    listener): ``open(root)`` before the catch-up index, ``received`` with each batch of received instances (record,
    calling AE or None) just before they are indexed, ``start`` / ``stop`` around the listener's life."""

    def open(self, root: Path) -> None: ...
    def received(self, items: list[tuple[FileRecord, str | None]], again: bool = True) -> int: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class _Events(Handler):
    """What the SCP tells the listener, from each association's thread."""

    def __init__(self, listener: Listener, root: Path, durable: Callable[[Path], None]):
        self.listener = listener
        self.root = root  # the database folder
        self.durable = durable  # called with each file renamed into storage (the sync mode)

    def established(self, assoc: Association) -> None:
        stats = AssociationStats(assoc.calling_ae, f"{assoc.address}:{assoc.port}")
        assoc.data["stats"] = stats
        self.listener.associations.append(stats)
        self.listener._open[id(stats)] = stats
        self.listener._emit(stats)
        self.listener.publish()

    def stored(self, assoc: Association, tmp: Path, size: int) -> int:
        """Make the instance durable in storage, queue it for the index, then (and only then) say success."""
        stats: AssociationStats = assoc.data["stats"]
        if problem := self.listener.low_on_space():  # refused before the disk is full (issue 20)
            tmp.unlink(missing_ok=True)
            self.store_failed(assoc, problem)
            return Status.OUT_OF_RESOURCES
        record, status, problem = store_written(self.root, tmp, size, self.durable)
        if record is None:
            self.store_failed(assoc, problem)
            return status
        self.listener._queue.put((record, stats.calling_ae))
        stats.images += 1
        stats.bytes += size
        self.listener._emit(stats)
        if time.monotonic() - self.listener._published > PUBLISH_S:
            self.listener.publish()
        return Status.SUCCESS

    def store_failed(self, assoc: Association, problem: str) -> None:
        stats: AssociationStats = assoc.data["stats"]
        stats.failures += 1
        log.warning("refused an instance from %s (%s): %s", peer_text(stats.calling_ae), stats.address,
                    peer_text(problem, 300))

    def ended(self, assoc: Association, how: str) -> None:
        self.listener._queue.put(_FLUSH)  # index what this association sent now, not after FLUSH_S
        stats: AssociationStats = assoc.data["stats"]
        stats.ended, stats.ended_at = how, time.monotonic()
        self.listener._open.pop(id(stats), None)
        log.info(stats.summary(), extra={"event": stats.event()})
        self.listener._emit(stats)
        self.listener.publish()


def quiet_pynetdicom(level: int = logging.CRITICAL) -> None:
    """Silence pynetdicom's logger unless someone set its level: it logs peer-supplied values whole at ERROR while
    we decode an A-ASSOCIATE-RQ with it (a 3.6 MB Implementation Version Name made a 3.6 MB line); our own log
    says what went wrong, truncated (:func:`.wire.peer_text`). ``dicomtui listen -v`` asks for its messages."""
    logger = logging.getLogger("pynetdicom")
    if logger.level == logging.NOTSET:
        logger.setLevel(level)


class Listener:
    """Run with :meth:`start` / :meth:`stop` (or as a context manager); ``on_event`` receives
    :class:`AssociationStats` whenever an association starts, stores an image or ends. ``forward``: the
    forwarding rules and queue (:class:`ForwardHook`; None: received instances are not forwarded)."""

    def __init__(self, db_path: Path, local: LocalNode, on_event: Callable[[AssociationStats], None] | None = None,
                 forward: ForwardHook | None = None, log_file: Path | None = None):
        self.db_path = Path(db_path)
        self.log_file = log_file  # where the face sends the log (shown by `status`); None: stderr or the TUI
        self.local = local
        self.on_event = on_event
        self.forward = forward
        # the latest associations, newest last (shown by the TUI and the tests); bounded, so that a listener that
        # runs for months as a service does not keep every association it ever had
        self.associations: collections.deque[AssociationStats] = collections.deque(maxlen=KEPT_ASSOCIATIONS)
        self._open: dict[int, AssociationStats] = {}  # the associations open now, by id()
        self._queue: queue.Queue = queue.Queue()  # (FileRecord, calling AE), _FLUSH, or None (stop)
        self._writer: threading.Thread | None = None
        self._server: StoreSCP | None = None
        self._group: GroupSync | None = None
        self._identity: tuple[Path, int, int] | None = None  # (database folder, port, locked fd): see .identity
        self._publishing = threading.Lock()
        self._published = 0.0  # time.monotonic() of the last publish
        self.indexed = 0
        self.index_errors: list[str] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        quiet_pynetdicom()
        sync = self.local.sync
        if sync not in SYNC_MODES:
            raise NodeError(f"our listener: sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        with DicomDatabase.open(self.db_path) as db:
            root = db.root
            if self.forward is not None:
                self.forward.open(root)
            self._catch_up(db)
        self._writer = threading.Thread(target=self._write_loop, name="listener-index", daemon=True)
        self._writer.start()
        try:
            durable: Callable[[Path], None] = folder_flushed
            if sync == "batch":
                durable = self._group = GroupSync(root)
            elif sync == "none":
                durable = _no_flush
            server = StoreSCP(self.local.ae_title, self.local.bind, self.local.port, _Events(self, root, durable),
                              lambda: open_temp(root), ssl_context=self.local.ssl_context(),
                              allow=self.local.allow, max_associations=self.local.max_associations,
                              max_connections=self.local.max_connections, flush_files=sync == "file")
        except BaseException:
            self._stop_threads()
            raise
        self._server = server
        server.start()
        if self.forward is not None:
            self.forward.start()
        try:
            self._identity = (root, server.port, identity.claim(root, server.port, self.local.ae_title,
                                                                 self.local.bind))
        except OSError as exc:  # the database folder is read-only: a retrieve cannot tell this listener is ours
            log.warning("cannot write the listener's identity file in %s (%s): a C-MOVE into this database will "
                        "refuse to use it", root, exc)
        self.publish()
        log.debug(self.start_line())  # the face says it once (the CLI on stdout, the TUI in its panel)

    def start_line(self) -> str:
        """What a user must know once the listener runs, in one line: the AE title, the address and port it is
        bound to (all interfaces or one), TLS, which callers it accepts, how received files are made durable,
        and the database."""
        local = self.local
        where = "all interfaces" if local.bind in ("", "0.0.0.0", "::") else "this address only"
        callers = (f"only the calling AE titles {', '.join(local.allow)}" if local.allow
                   else "ANY calling AE title (restrict with --allow)")
        return (f"listening as {local.ae_title} on {local.bind or '0.0.0.0'}:{self.port} ({where})"
                f"{', TLS' if local.tls_cert else ''}, accepting {callers}; {_SYNC_WORDS.get(local.sync, '')}; "
                f"into {self.db_path}")

    def low_on_space(self) -> str:
        """Why a new instance is refused for lack of disk ("" when it is not): :func:`below_floor` of the database
        folder and ``LocalNode.min_free_bytes``."""
        return below_floor(self.db_path, self.local.min_free_bytes)

    def publish(self) -> None:
        """Write the live state ``status`` shows (:func:`.identity.publish`): the associations open now (calling AE,
        address, since, images so far), the log file. Called when an association starts or ends."""
        if self._identity is None:
            return
        root, port, _fd = self._identity
        now, wall = time.monotonic(), time.time()
        with self._publishing:
            self._published = now
            open_now = [{"calling_ae": peer_text(a.calling_ae, 64), "address": a.address, "images": a.images,
                         "since": wall - (now - a.started)} for a in list(self._open.values())]
            state = {"associations": open_now, "log_file": str(self.log_file) if self.log_file else None,
                     "updated": wall}
            try:
                identity.publish(root, port, state)
            except OSError as exc:
                log.debug("cannot write the listener's live state: %s", exc)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return self._server.port if self._server is not None else self.local.port

    def stop(self) -> None:
        """Stop accepting, abort open associations once their current write is durable, index what is pending."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._identity is not None:
            identity.release(*self._identity)
            self._identity = None
        self._stop_threads()

    def _stop_threads(self) -> None:
        if self._group is not None:
            self._group.close()
            self._group = None
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        if self.forward is not None:  # after the index thread: every received instance is queued by then
            self.forward.stop()

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _emit(self, stats: AssociationStats) -> None:
        if self.on_event is not None:
            self.on_event(stats)

    # ---- indexing --------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        """One writer: index received files in batches (a 1,000-image study is a handful of transactions)."""
        with DicomDatabase.open(self.db_path) as db:
            pending: list[tuple[FileRecord, str | None]] = []
            deadline = None
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = ...
                if isinstance(item, tuple):
                    pending.append(item)
                    deadline = deadline or time.monotonic() + FLUSH_S
                if pending and (not isinstance(item, tuple) or len(pending) >= BATCH):
                    self._flush(db, pending)
                    pending = []
                    deadline = None
                if item is None:
                    return

    def _flush(self, db: DicomDatabase, received: list[tuple[FileRecord, str | None]]) -> None:
        pending = [record for record, _ae in received]
        try:
            # queued before they are indexed: a crash between the two leaves files the next start indexes (and
            # queues again, without a second forward); the other order could index an instance never forwarded
            if self.forward is not None:
                self.forward.received(received)
            result = db.add_files(pending)
            self.indexed += len(pending) - len(result.vanished)
            if result.vanished:  # removed from storage meanwhile (an `rm` of their study): not indexed, said
                log.warning("%d received files were deleted from storage before they were indexed (e.g. %s)",
                            len(result.vanished), result.vanished[0])
        except Exception as exc:  # noqa: BLE001 - the files are durable; the index catches up at next start
            self.index_errors.append(str(exc))
            log.error("indexing %d received files failed (%s); they are in storage and will be indexed at the "
                      "next start", len(pending), exc)

    def _catch_up(self, db: DicomDatabase) -> None:
        """Index files that reached storage but not the index (a crash between the two)."""
        orphans = db.storage_orphans()
        records = []
        for rel in orphans:
            try:
                records.append(FileRecord.from_file(db.root / rel, root=db.root))
            except (HeaderError, OSError) as exc:
                log.warning("left in storage, not indexed: %s (%s)", rel, exc)
        if records:
            if self.forward is not None:  # the caller is not known any more: rules naming calling AEs do not match
                self.forward.received([(r, None) for r in records], again=False)
            db.add_files(records)
            log.info("indexed %d files found in storage after an interruption", len(records))
