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
import threading
import time
from collections.abc import Iterable

from .incoming import TempFileFactory
from .scp_association import Association as Association  # re-exported: the handler API lives with the SCP
from .scp_association import Connection, Handler
from .wire import VERIFICATION, tcp_tuned

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
        self.contexts = storage_contexts()
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
            Connection(self, conn, address, artim_deadline, quick).run()
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

    def admit(self) -> bool:
        """Count the calling thread's association as established, unless max_associations are already."""
        with self._lock:
            if len(self._admitted) >= self.max_associations:
                return False
            self._admitted.add(threading.current_thread())
            return True


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
