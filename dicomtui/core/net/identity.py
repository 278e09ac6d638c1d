"""Which database a running listener serves: each listener holds a locked identity file in its database folder,
``listener-<port>.lock`` (JSON: port, AE title, bind address, process id), for as long as it runs.

A C-MOVE sends the images to whatever listens on the destination's port. Before it, the retrieving side asks
:func:`serves`: is the program on our port the listener of THIS database? When another database's listener (or
another receiver) holds the port, the images would land there while the peer reports success (issue 14, item 21).

The lock (``flock``) is what makes the file true: it is released when the listener stops or its process dies, so
a file left by a crash is recognised as stale. ``flock`` locks belong to one open file, so a retrieve in the same
process as the listener (the TUI) sees the lock held too.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def identity_file(root: Path, port: int) -> Path:
    """The identity file of a listener on ``port`` serving the database folder ``root``."""
    return Path(root) / f"listener-{port}.lock"


def claim(root: Path, port: int, ae_title: str, bind: str) -> int:
    """Write and lock the identity file; the returned descriptor holds the lock until :func:`release`.
    Raises OSError (the database folder is not writable)."""
    path = identity_file(root, port)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # serves() may have found the new file unlocked, taken it for stale and removed it: lock the one there
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"port": port, "ae_title": ae_title, "bind": bind, "pid": os.getpid()}).encode())
        except FileNotFoundError:
            os.close(fd)
            continue
        except OSError:
            os.close(fd)
            raise
        return fd


def release(root: Path, port: int, fd: int) -> None:
    """Remove the identity file (while still holding its lock) and the live state, then unlock it."""
    try:
        state_file(root, port).unlink(missing_ok=True)
        identity_file(root, port).unlink(missing_ok=True)
    finally:
        os.close(fd)


def state_file(root: Path, port: int) -> Path:
    """The live state of the listener on ``port`` (``listener-<port>.state.json``): what ``status`` shows of it
    that changes while it runs (open associations, the log file). Believed only while the identity file is locked."""
    return Path(root) / f"listener-{port}.state.json"


def publish(root: Path, port: int, state: dict[str, Any]) -> None:
    """Replace the live state atomically (a temporary file renamed over it: a reader sees the old or the new one;
    not flushed to disk: it is worth nothing after a crash). Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=f".listener-{port}.", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, state_file(root, port))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def live_state(root: Path, port: int) -> dict[str, Any]:
    """The live state the listener on ``port`` published ({} when none, or unreadable)."""
    try:
        state = json.loads(state_file(root, port).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def serves(root: Path, port: int) -> bool:
    """Whether a running listener of the database folder ``root`` holds ``port`` (its identity file is there and
    locked). A file nobody holds (a crashed listener's) is removed."""
    path = identity_file(root, port)
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not ours to judge: believe it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        path.unlink(missing_ok=True)  # stale: its listener is gone
        return False
    finally:
        os.close(fd)


def running(root: Path) -> list[dict]:
    """The listeners serving the database folder ``root`` now: the contents (port, ae_title, bind, pid) of every
    identity file there that is locked. Stale files are removed, as :func:`serves` does."""
    found = []
    for path in sorted(Path(root).glob("listener-*.lock")):
        try:
            port = int(path.stem.removeprefix("listener-"))
        except ValueError:
            continue
        if serves(root, port):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                found.append({"port": port})
    return found
