"""The files of instances being received by the SCP: one temporary file per C-STORE, written fragment by fragment,
flushed (unless the listener's sync mode says otherwise) before the handler makes it durable; and empty temp
files made ahead by a helper thread.

Where the temp files live is not the SCP's business: it takes a :data:`TempFileFactory` (the listener gives one
that creates them in the database's ``incoming/``).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from .durable import flush_data
from .status import Status

TempFileFactory = Callable[[], tuple[Path, int]]
"""Creates the next temporary file and returns (path, file descriptor open for writing); raises OSError."""


class Incoming:
    """The temporary file of the instance being received; a write error is kept until the last fragment, so that
    the peer gets its answer (out of resources) and the association goes on."""

    def __init__(self, new_file: TempFileFactory, context_id: int, message_id: int, sop_class: str,
                 sop_instance: str, meta: bytes, spare: tuple[Path, int] | None = None):
        self.context_id, self.message_id = context_id, message_id
        self.sop_class, self.sop_instance = sop_class, sop_instance
        self.size = 0
        self.problem = ""
        if spare is None:
            try:
                spare = new_file()
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

    def close(self, flush: bool = True) -> int:
        """Flush (``flush``: :func:`.durable.flush_data`) and close: 0, or out of resources (the file is then
        gone)."""
        if not self.problem and flush:
            try:
                flush_data(self.fd)
            except OSError as exc:
                self.problem = f"cannot store: {exc.strerror or exc}"
        if self.problem:
            self.discard()
            return Status.OUT_OF_RESOURCES
        os.close(self.fd)
        self.fd = -1
        return Status.SUCCESS

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.path.unlink(missing_ok=True)


class Spares:
    """Empty temp files made ahead by a helper thread: creating a file in incoming/ took 0.03-1 ms here, varying
    with the disk's load, and in the receiving thread it was up to a third of a small image's time. The helper
    keeps ``ahead`` files ready; ``take`` never waits for it (it creates one itself when none is ready)."""

    def __init__(self, new_file: TempFileFactory, ahead: int = 2):
        self.new_file = new_file
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
                self.ready.put(self.new_file())
            except OSError:
                return  # take() creates its own and reports the error
            if self.closed:  # close() may have drained already: make sure this one goes too
                self._drain()
                return

    def take(self) -> tuple[Path, int] | None:
        """A ready temp file, or None (the caller creates one)."""
        try:
            item = self.ready.get_nowait()
        except queue.Empty:
            return None
        self.room.release()
        return item

    def _drain(self) -> None:
        while True:
            try:
                path, fd = self.ready.get_nowait()
            except queue.Empty:
                return
            os.close(fd)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self.closed = True
        self.room.release()
        self.thread.join()
        self._drain()
