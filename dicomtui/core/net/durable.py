"""How the listener makes a received instance durable before it answers success: ``--sync file|batch|none``.

- ``file`` (the default): the temp file's data is flushed (``fdatasync``), renamed into ``dicom/…``, and the
  folder flushed (``fsync``) — two flushes per instance, nothing else waits on them.
- ``batch``: the file is renamed unflushed; its response waits for one ``syncfs`` of the database's file system
  that started after the rename (a group commit: instances of every association arriving while one round runs
  share the next). One flush per round covers the data and the rename of every file in it. The price: after a
  power loss (not a process crash: the page cache survives that) a file renamed but not yet flushed can be in
  ``dicom/`` incomplete. No success was sent for it: the peer sends it again and it is replaced; until then the
  listener's start-up catch-up does not index it (the header walk refuses a truncated file: "truncated: Pixel
  Data needs N bytes").
- ``none``: no flush at all — DCMTK storescp's and pynetdicom's behaviour: a crash after the success response can
  lose instances the peer believes stored (it will not send them again).

Measured here (ext4, 512 KiB files, 150 each, one at a time): no flush 0.15 ms/file, fsync file + folder
0.9 ms, fdatasync file + fsync folder 0.8 ms, syncfs 0.6 ms.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def flush_data(fd: int) -> None:
    """Flush a new file's data and size (``fdatasync``; ``fsync`` where there is none). Raises OSError."""
    getattr(os, "fdatasync", os.fsync)(fd)


def _syncfs_function():
    """libc's ``syncfs(fd)`` (Linux), or None. ctypes is loaded here, by the batch mode only."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


class GroupSync:
    """Group commit for ``--sync batch``: :meth:`wait` returns once a flush of the whole file system holding
    ``root`` has completed that started after the call (``syncfs`` on Linux, ``os.sync`` elsewhere). One thread
    flushes, round after round, while callers wait; raises OSError in the callers when a round fails."""

    def __init__(self, root: Path):
        self._fd = os.open(root, os.O_RDONLY)
        self._syncfs = _syncfs_function()
        self._cond = threading.Condition()
        self._asked = 0  # rounds asked for (a caller asks for the round after the current one)
        self._done = 0  # rounds completed
        self._running = 0  # the round flushing now (0: none)
        self._errors: dict[int, OSError] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="listener-sync", daemon=True)
        self._thread.start()

    def __call__(self, path: Path) -> None:
        """The listener's ``durable`` step: :meth:`wait` for ``path``."""
        self.wait(path)

    def wait(self, path: Path | None = None) -> None:
        """Block until every file renamed before this call (``path`` among them: every file of the file system is
        flushed) is durable. Raises OSError when the flush failed."""
        with self._cond:
            if self._closed:
                raise OSError("the listener is stopping")
            # a round flushing now may have started before our rename: ours is the one after it
            round_ = (self._running or self._done) + 1
            self._asked = max(self._asked, round_)
            self._cond.notify_all()
            while self._done < round_:
                self._cond.wait()
            error = self._errors.get(round_)
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._asked == self._done and not self._closed:
                    self._cond.wait()
                if self._asked == self._done:
                    return
                running = self._running = self._done + 1
            error = None
            try:
                self._flush()
            except OSError as exc:
                error = exc
            with self._cond:
                if error is not None:
                    self._errors[running] = error
                self._done, self._running = running, 0
                self._errors = {r: e for r, e in self._errors.items() if r > running - 1000}
                self._cond.notify_all()

    def _flush(self) -> None:
        """One round: ``syncfs`` covers the data and the renames of every file renamed before it (measured against
        flushing each file and its folder in the round: 0.78-1.5 s vs 1.6-1.8 s for 300 x 512 KiB here)."""
        if self._syncfs is None:
            os.sync()
        elif self._syncfs(self._fd) != 0:
            import ctypes

            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    def close(self) -> None:
        """Finish the rounds asked for, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        os.close(self._fd)
