"""The forwarder: a thread of the listener process that sends the due rows of the forward queue
(:mod:`.forward_queue`) to their nodes, with our C-STORE SCU (:func:`.send.send`), or STOW-RS
(:func:`.web_stow.stow`) for a node that has only a DICOMweb URL.

A row is marked sent only after the peer's success (or warning) status for that instance, committed before the
next instance goes: should the process die between the peer's answer and the mark, that one instance per node is
sent again at the next start (at-least-once; the window is one instance per node over DIMSE, one STOW-RS request
over DICOMweb). A failed try is retried with exponential backoff (:class:`..forward.RetryPolicy`); after
``max_tries`` the row is failed, logged, and waits for ``route retry``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..database import FileRecord
from ..errors import DicomtuiError, SettingsError
from ..forward import RetryPolicy, Routes, destinations, load_routes
from .forward_queue import Forward, ForwardQueue, queue_path
from .nodes import LocalNode, Nodes, RemoteNode, load_nodes
from .send import SendItem, SendReport
from .wire import peer_text

log = logging.getLogger("dicomtui.forward")

POLL_S = 1.0  # the longest sleep: rows set pending by `route retry` (another process) are seen within it
SENT_KEEP_S = 7 * 86400.0  # sent rows are kept this long (`route queue --json` history), then forgotten
FORGET_EVERY_S = 3600.0  # how often the forwarder forgets old sent rows
ERROR_WAIT_MAX_S = 60.0  # a round that keeps failing (nodes.toml broken, queue file locked) is tried this often
STOW_COUNT = 20  # instances per STOW-RS request: the at-least-once window over DICOMweb


class Forwarder:
    """Sends due forwards of the database folder ``root`` until :meth:`stop`. ``nodes`` is read again at each
    round (a node added or changed with ``nodes add`` is used without a restart). Each node's forwards go from a
    thread of their own (one at a time per node): a node that does not answer holds up only its own."""

    def __init__(self, root: Path, local: LocalNode, retry: RetryPolicy | None = None,
                 nodes: Callable[[], Nodes] = load_nodes):
        self.root = Path(root)
        self.local = local
        self.retry = retry or RetryPolicy()
        self.nodes = nodes
        self.sent = 0  # instances the peers stored, since start
        self.failed = 0  # forwards that used up their tries, since start
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: dict[str, threading.Thread] = {}  # node name → the thread sending to it now

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="listener-forward", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (rows were just added)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the instance being sent (its mark committed); the association is released. Pending rows stay."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for worker in list(self._workers.values()):
            worker.join()
        self._workers.clear()

    def _loop(self) -> None:
        with ForwardQueue(self.root) as queue:
            forgotten = None
            errors = 0
            while not self._stop.is_set():
                try:
                    if forgotten is None or time.monotonic() - forgotten > FORGET_EVERY_S:
                        queue.forget_sent(time.time() - SENT_KEEP_S)  # else the file grows by a row per instance
                        forgotten = time.monotonic()
                    worked = self.round(queue)
                    errors = 0
                except Exception as exc:  # noqa: BLE001 - the thread outlives a bad round; the rows stay pending
                    errors += 1
                    wait = min(POLL_S * 2 ** errors, ERROR_WAIT_MAX_S)
                    if isinstance(exc, DicomtuiError):  # e.g. nodes.toml does not read: a sentence, no traceback
                        log.warning("forwarding paused for %.0f s: %s", wait, exc)
                    else:
                        log.exception("forwarding round failed; again in %.0f s", wait)
                    self._wake.wait(wait)
                    self._wake.clear()
                    continue
                if not worked:  # nothing due, or only rows of nodes busy now (their thread wakes us when done)
                    upcoming = queue.next_due()
                    now = time.time()
                    wait = POLL_S if upcoming is None or upcoming <= now else min(POLL_S, upcoming - now)
                    self._wake.wait(wait)
                    self._wake.clear()

    def round(self, queue: ForwardQueue) -> bool:
        """Start sending what is due now to each node that is not being sent to already (a thread per node);
        whether anything was started."""
        for name, worker in list(self._workers.items()):
            if not worker.is_alive():
                del self._workers[name]
        due = queue.due()
        if not due:
            return False
        by_node: dict[str, list[Forward]] = {}
        for row in due:
            if row.destination not in self._workers:
                by_node.setdefault(row.destination, []).append(row)
        if not by_node:
            return False
        nodes = self.nodes()
        for name, rows in by_node.items():
            if self._stop.is_set():
                break
            node = nodes.remotes.get(name)
            if node is None:
                self._failed_all(queue, rows, f"no node named {name} in nodes.toml (dicomtui nodes add {name} ...)")
                continue
            worker = threading.Thread(target=self._node_worker, args=(node, rows), name=f"forward-{name}",
                                      daemon=True)
            self._workers[name] = worker
            worker.start()
        return True

    def _node_worker(self, node: RemoteNode, rows: list[Forward]) -> None:
        """One node's due rows, on a queue connection of this thread; the main loop is woken when done."""
        try:
            with ForwardQueue(self.root) as queue:
                self._send(queue, node, rows)
        except Exception as exc:  # noqa: BLE001 - the rows stay pending; the next round tries them again
            if isinstance(exc, DicomtuiError):
                log.warning("forwarding to %s paused: %s", node.name, exc)
            else:
                log.exception("forwarding to %s failed", node.name)
            self._stop.wait(POLL_S)
        finally:
            self._wake.set()

    def _send(self, queue: ForwardQueue, node: RemoteNode, rows: list[Forward]) -> None:
        started = time.monotonic()
        done: set[str] = set()
        temps: list[Path] = []
        try:
            files, by_uid, temps, mapping = self._prepare(queue, rows, done)  # node threads at once: the mapping
            if mapping is not None:  # commits each new entry as made, so they and other jobs agree (deid_mapping)
                mapping.save()  # before anything goes: the peer holds only UIDs the mapping knows (synced)
            report = self._send_files(queue, node, files, by_uid, done)
        except DicomtuiError as exc:  # the mapping cannot be written: nothing de-identified may go
            report = SendReport(node.name, error=str(exc))
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
        if not report.cancelled:  # instances the send never reached (the peer ended it, or no association)
            for row in rows:
                if row.SOPInstanceUID not in done:
                    self._failed_try(queue, row, report.error or "not sent")
        counts = report.counts
        seconds = time.monotonic() - started
        event = {"event": "forward", "node": node.name, "address": report.node, "instances": len(rows),
                 "sent": counts["success"] + counts["warning"], "failed": counts["failure"],
                 "not_sent": len(rows) - len(done), "error": peer_text(report.error, 300),
                 "seconds": round(seconds, 3)}
        log.info("forwarded to %s (%s): %d of %d instances stored%s in %.1f s", node.name, report.node,
                 event["sent"], len(rows), f"; {event['error']}" if report.error else "", seconds,
                 extra={"event": event})

    def _prepare(self, queue: ForwardQueue, rows: list[Forward], done: set[str]
                 ) -> tuple[list[dict], dict[str, Forward], list[Path], Any]:
        """The files to send for ``rows`` (a de-identified copy in ``incoming/`` for a row that asks for one),
        the rows by the SOP Instance UID sent, the temporary copies to delete afterwards, and the
        de-identification mapping used (None: none was; it must be saved before the send). A row whose copy
        cannot be made is marked (a try failed; refused for burned-in annotation: failed at once) and put in
        ``done``."""
        files: list[dict] = []
        by_uid: dict[str, Forward] = {}
        temps: list[Path] = []
        deids: dict[str, Any] = {}  # profile options (as the row holds them) → its de-identifier
        for row in rows:
            file: dict[str, Any] | None = row.file()
            if not Path(row.path).exists():  # deleted other than by `rm` / `db prune`, which drop the row
                done.add(row.SOPInstanceUID)
                queue.mark_failed_try(row.id, f"deleted before it was sent: {row.path} is gone", None)
                self.failed += 1
                continue
            if row.deidentify:
                try:
                    deid = deids.get(row.deid_options)
                    if deid is None:  # one mapping for the round, whatever the options
                        mapping = next(iter(deids.values())).mapping if deids else None
                        deid = deids[row.deid_options] = _deidentifier(self.root, row.deid_options, mapping)
                    file = _deidentified_copy(self.root, row, deid, self.local.min_free_bytes)
                except Exception as exc:  # noqa: BLE001 - one unreadable file: this forward fails, the rest go
                    done.add(row.SOPInstanceUID)
                    self._failed_try(queue, row, f"cannot de-identify: {type(exc).__name__}: {exc}")
                    continue
                if file is not None:
                    temps.append(Path(file["path"]))
            if file is None:
                done.add(row.SOPInstanceUID)
                queue.mark_failed_try(row.id, "not de-identified: the pixels may show identity (burned-in "
                                              "annotation, PS3.15 E.1.1); not forwarded", None)
                self.failed += 1
                continue
            files.append(file)
            by_uid[file["SOPInstanceUID"]] = row
        return files, by_uid, temps, next(iter(deids.values())).mapping if deids else None

    def _send_files(self, queue: ForwardQueue, node: RemoteNode, files: list[dict], by_uid: dict[str, Forward],
                    done: set[str]) -> SendReport:
        """Send ``files`` to ``node`` (C-STORE, or STOW-RS for a node with only a URL), each row marked as soon as
        the peer answered for it (its original SOP Instance UID then in ``done``)."""

        def mark(item: SendItem) -> None:
            row = by_uid.get(item.sop_instance_uid)
            if row is None:
                return
            done.add(row.SOPInstanceUID)
            if item.category in ("success", "warning"):
                queue.mark_sent(row.id)
                self.sent += 1
            else:
                self._failed_try(queue, row, item.meaning)

        web = node.web and not node.dimse
        try:
            if web:
                from .web_stow import stow

                report = stow(node, files, cancel=self._stop, max_count=STOW_COUNT)
                for item in report.items:
                    mark(item)
            else:
                from .send import send

                report = send(files, node, self.local, cancel=self._stop, on_item=mark)
        except DicomtuiError as exc:  # no association (peer down, refused) or the DICOMweb request failed
            report = SendReport(node.address if node.dimse else node.url, error=str(exc))
        return report

    def _failed_try(self, queue: ForwardQueue, row: Forward, error: str) -> None:
        tries = row.tries + 1
        if tries >= self.retry.max_tries:
            queue.mark_failed_try(row.id, error, None)
            self.failed += 1
            log.warning("forward of %s to %s failed %d times, given up (dicomtui route retry): %s",
                        row.SOPInstanceUID, row.destination, tries, peer_text(error, 300))
        else:
            queue.mark_failed_try(row.id, error, self.retry.delay(tries))

    def _failed_all(self, queue: ForwardQueue, rows: list[Forward], error: str) -> None:
        for row in rows:
            self._failed_try(queue, row, error)
        log.warning("%d forwards not sent: %s", len(rows), error)


def _deidentifier(root: Path, options: str, mapping: Any = None):
    """The de-identification transform with the profile options ``options`` (``deidentify --profile-option``
    names, comma-separated; ValueError for an unknown one) and the database's mapping (``mapping``, else opened
    now: at each round; entries another job makes meanwhile are read from the file, ours committed as made)."""
    from ..export.deid_mapping import database_mapping
    from ..export.deidentify import Deidentifier, DeidOptions

    names = [n for n in options.split(",") if n]
    return Deidentifier(DeidOptions.from_names(names), mapping or database_mapping(root))


def check_routes(routes: Routes) -> Routes:
    """``routes`` when every de-identifying rule's profile options are known ones
    (:data:`..export.deidentify.PROFILE_OPTIONS`); else SettingsError naming the rule and the option."""
    from ..export.deidentify import PROFILE_OPTIONS

    for n, rule in enumerate(routes.rules, 1):
        unknown = [o for o in rule.profile_options if o not in PROFILE_OPTIONS]
        if unknown:
            raise SettingsError(f"routes.toml: route {n}: unknown profile option(s) {', '.join(unknown)} (known: "
                                f"{', '.join(PROFILE_OPTIONS)})")
    return routes


def _deidentified_copy(root: Path, row: Forward, deid, min_free: int = 0) -> dict | None:
    """A de-identified copy of the row's file in ``incoming/`` of ``root``, as a file row (None: refused for
    burned-in annotation). Raises what reading or writing the file raises; OSError (ENOSPC) when the copy would
    leave less than ``min_free`` bytes free (the listener's floor: the forward is tried again later)."""
    import errno

    from .. import storage
    from ..dicomfile import read_dataset

    if problem := storage.floor_problem(root, min_free, os.path.getsize(row.path)):
        raise OSError(errno.ENOSPC, f"{storage.BELOW_FLOOR}: {problem}; the de-identified copy was not made")
    ds = deid(read_dataset(row.path, pixels=True).dataset)
    if ds is None:
        return None
    temp = storage.temp_file(root, "forward-deid")
    temp.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds.save_as(temp, enforce_file_format=True)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return {"path": str(temp), "SOPInstanceUID": str(ds.SOPInstanceUID), "SOPClassUID": str(ds.SOPClassUID),
            "TransferSyntaxUID": str(ds.file_meta.TransferSyntaxUID)}


class Forwarding:
    """What the listener needs of forwarding (its ``forward`` hook, :class:`.listener.ForwardHook`): match each
    received instance against the rules and queue it (:meth:`received`, from the listener's index thread), and
    run the :class:`Forwarder` thread between :meth:`start` and :meth:`stop`. The queue is resumed at start even
    with no rule left (forwards queued before stay due). ``routes_path``: the file the rules came from; it is
    looked at again before each batch of received instances, and read again when it changed (``route add`` needs
    no restart; a file that does not read leaves the rules in force, with a warning in the log)."""

    def __init__(self, routes: Routes, local: LocalNode, nodes: Callable[[], Nodes] = load_nodes,
                 routes_path: Path | None = None):
        self.routes = check_routes(routes)
        self.local = local
        self.nodes = nodes
        self.root: Path | None = None
        self.forwarder: Forwarder | None = None
        self._queue: ForwardQueue | None = None
        self._lock = threading.Lock()
        self._routes_path = routes_path
        self._routes_version = _version(routes_path)
        self._started = False

    def open(self, root: Path) -> None:
        """Open (create) the queue of the database folder ``root`` when there are rules or a queue; before
        :meth:`received`."""
        self.root = Path(root)
        if self.routes.rules or queue_path(self.root).exists():
            self._open_queue()

    def _open_queue(self) -> None:
        if self._queue is None and self.root is not None:
            self._queue = ForwardQueue(self.root, check_same_thread=False)

    def start(self) -> None:
        """Start the forwarder thread (when there is a queue: rules, or forwards left from before)."""
        self._started = True
        self._start_forwarder()

    def _start_forwarder(self) -> None:
        if self._started and self._queue is not None and self.root is not None and self.forwarder is None:
            self.forwarder = Forwarder(self.root, self.local, self.routes.retry, self.nodes)
            self.forwarder.start()

    def _reload(self) -> None:
        """Read the rules again when their file changed (see the class docstring)."""
        if self._routes_path is None:
            return
        version = _version(self._routes_path)
        if version == self._routes_version:
            return
        self._routes_version = version
        try:
            routes = check_routes(load_routes(self._routes_path))
        except DicomtuiError as exc:
            log.warning("the forwarding rules were not reloaded; those read before stay in force: %s", exc)
            return
        self.routes = routes
        log.info("forwarding rules read again from %s: %d rules", self._routes_path, len(routes.rules))
        if self.forwarder is not None:
            self.forwarder.retry = routes.retry
        if routes.rules:
            self._open_queue()
            self._start_forwarder()

    def received(self, items: list[tuple[FileRecord, str | None]], again: bool = True) -> int:
        """Queue the forwards of received instances: (record as indexed, calling AE or None when not known);
        ``again`` as :meth:`.ForwardQueue.enqueue` takes it. Returns the forwards queued."""
        self._reload()
        if self._queue is None or not self.routes.rules or self.root is None:
            return 0
        queued = []
        for record, calling_ae in items:
            header = record.header
            path = str(self.root / record.path) if record.stored else record.path
            row = {**header, "path": path}
            for name, rule in destinations(self.routes.rules, header, calling_ae).items():
                queued.append((row, name, calling_ae, rule.idle_s if rule.when == "study" else 0.0, rule.deidentify,
                               rule.profile_options))
        if not queued:
            return 0
        with self._lock:
            n = self._queue.enqueue(queued, again=again)
        if self.forwarder is not None:
            self.forwarder.wake()
        return n

    def stop(self) -> None:
        """Stop the forwarder (after the instance it is sending) and close the queue."""
        self._started = False
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder = None
        if self._queue is not None:
            with self._lock:
                self._queue.close()
            self._queue = None


def _version(path: Path | None) -> tuple[int, int, int] | None:
    """What tells a changed rules file (saved by renaming a new file over it): inode, size, mtime in ns."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
