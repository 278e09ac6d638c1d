"""Managed file storage inside a database folder.

Copied and received files live at ``dicom/<study>/<series>/<sop>.dcm`` with every path component derived from a
UID by :func:`safe_name`, so that no UID (``../``, ``/``, control characters, 250 characters) can name a file
outside the storage folder. Files are written into ``incoming/`` first and renamed into place only once they are
complete and fsync'd: a reader never sees a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

STORAGE_DIR = "dicom"
INCOMING_DIR = "incoming"
# Room kept free during a copy-import for the database's own writes: when the copies fill the disk, releasing it
# lets the rows of the files already copied be committed (a 2,048-row batch writes ~3 MiB of WAL).
RESERVE_BYTES = 16 << 20

_VALID_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


def safe_name(uid: str) -> str:
    """A file-system-safe, collision-free name for ``uid``.

    A well-formed UID (digits and dots, at most 64 characters) is its own name. Anything else is replaced by a
    readable, sanitised prefix plus a hash of the whole value; such names start with ``x`` and so can never equal a
    well-formed UID, ``.`` or ``..``.
    """
    if len(uid) <= 64 and _VALID_UID.fullmatch(uid):
        return uid
    digest = hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    readable = _UNSAFE.sub("_", uid)[:40]
    return f"x{readable}-{digest}"


def relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Storage path of an instance, relative to the database folder (always with ``/``)."""
    return f"{STORAGE_DIR}/{safe_name(study_uid)}/{safe_name(series_uid)}/{safe_name(sop_uid)}.dcm"


def fsync_dir(path: Path) -> None:
    """Make a rename into ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_file(root: Path, name_hint: str) -> Path:
    """A unique temporary path in ``incoming/``: ``<pid>-<owner token>-<random>-<hint>.part``. The process holds
    a lock on ``<tmp>/dicomtui-<uid>/<pid>-<owner token>.lock`` for as long as it lives, so that a temp file is
    stale exactly when no process holds its owner's lock (:func:`stale_temp_files`): no guess from ages or from
    pids, which the system reuses."""
    return root / INCOMING_DIR / f"{_owner()}-{os.urandom(6).hex()}-{name_hint[:40]}.part"


LOCK_SUFFIX = ".lock"
_OWNERS: dict[int, tuple[str, int]] = {}  # pid -> (owner name, fd holding its lock)


def lock_dir(uid: int) -> Path:
    """Where the processes of user ``uid`` keep their owner locks: outside ``incoming/``, which stays empty
    between imports, and found from a temp file's owner (its ``st_uid``)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"dicomtui-{uid}"


def _owner() -> str:
    """This process's owner name, its lock taken on first use and held until the process ends (a worker forked
    from an owner takes its own: the key is the pid)."""
    held = _OWNERS.get(os.getpid())
    if held is None:
        folder = lock_dir(os.getuid())
        folder.mkdir(mode=0o755, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(4).hex()}"
        held = _OWNERS[os.getpid()] = (name, _lock(folder / f"{name}{LOCK_SUFFIX}"))
    return held[0]


def _lock(path: Path) -> int:
    """Create ``path`` and hold an exclusive lock on it; the fd is returned (kept open: closing it unlocks).

    A cleaner may find the new file unlocked between create and lock, think its owner dead and unlink it: the
    lock is taken again until the path names the locked file."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _owner_alive(lock: Path) -> bool:
    """Whether a process holds the owner lock ``lock``. A name without a lock file (made before locks, or not
    ours) has no live owner; a lock we may not open is taken as held (not ours to judge)."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


BELOW_FLOOR = "below the free-space floor"  # how the error of a copy the floor kept out begins


def floor_problem(root: Path, floor: int, need: int = 0) -> str:
    """Why ``need`` more bytes may not be written into the database folder ``root`` ("" when they may): fewer
    than ``floor`` bytes (``LocalNode.min_free_bytes``; 0: no floor) would be left free on its file system.
    Stopping at a floor keeps room for the index, its journal and the files being written (issue 20)."""
    if floor <= 0:
        return ""
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return ""
    return _floor_sentence(root, free, floor, need)


def _floor_sentence(root: Path, free: int, floor: int, need: int) -> str:
    if free - need >= floor:
        return ""
    writing = f", and {need / 2**20:,.1f} MiB to write would go" if free >= floor else ","
    return (f"{free / 2**20:,.0f} MiB free in {root}{writing} below the floor of {floor / 2**20:,.0f} MiB "
            f"(min_free_bytes in [local] of nodes.toml)")


def below_floor(root: Path, floor: int) -> str:
    """Why an instance received into the database folder ``root`` is refused for lack of disk ("" when it is not):
    less than ``floor`` bytes are free (:func:`floor_problem`). Answered with 0xA700, Refused: Out of Resources
    (PS3.4 B.2.3), before the disk is full and the index cannot be written."""
    problem = floor_problem(root, floor)
    return f"out of disk space: {problem}; refusing new instances" if problem else ""


class _Floor:
    """The free space of a database folder as copies go in: asked once, then counted down by what was written,
    asked again only when the count says the next file would go under ``floor`` (one ``statvfs`` a batch)."""

    def __init__(self, root: Path, floor: int):
        self.root, self.floor, self.free = root, floor, -1

    def refuses(self, source: str) -> OSError | None:
        """The error that keeps ``source`` out (ENOSPC, its text beginning with :data:`BELOW_FLOOR`), or None."""
        if self.floor <= 0:
            return None
        try:
            need = os.path.getsize(source)
        except OSError:
            return None  # the copy says why
        if self.free - need < self.floor:
            try:
                self.free = shutil.disk_usage(self.root).free
            except OSError:
                return None  # the copy says why
            if problem := _floor_sentence(self.root, self.free, self.floor, need):
                return OSError(errno.ENOSPC, f"{BELOW_FLOOR}: {problem}")
        self.free -= need
        return None


def copy_batch(root: Path, pairs: list[tuple[str, str]],
               heads: Sequence[tuple[bytes, int] | None] | None = None, min_free: int = 0) -> list[OSError | None]:
    """Copy many files into storage: each complete and durable before it is visible in ``dicom/``.

    All copies are written to ``incoming/``, made durable with one ``syncfs`` of the database's file system,
    renamed into place, and the renames made durable with a second one: two syncs per batch instead of two
    fsyncs per file. ``heads[i]``, when given, is (bytes written first, bytes of the source left out): a file
    stored with a new header (a PS3.10 file meta for a bare data set). A copy that would leave less than
    ``min_free`` bytes free is not made (:func:`floor_problem`), nor any after it: the error (ENOSPC) begins with
    :data:`BELOW_FLOOR`. Returns, per pair, None or the error that kept that file from being stored.
    """
    errors: list[OSError | None] = [None] * len(pairs)
    temps: list[tuple[int, Path, Path]] = []
    full: OSError | None = None  # once the disk is full, copying stops: the rest get the same error
    floor = _Floor(root, min_free)
    for i, (source, rel) in enumerate(pairs):
        if full is None:
            full = floor.refuses(source)
        if full is not None:
            errors[i] = full
            continue
        dest = root / rel
        tmp = temp_file(root, dest.name)
        head = heads[i] if heads is not None else None
        try:
            if head is None:
                shutil.copyfile(source, tmp)
            else:
                _copy_with_head(source, tmp, *head)
            temps.append((i, tmp, dest))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            errors[i] = exc
            full = exc if is_disk_full(exc) else None
    if not temps:
        return errors
    sync_filesystem(root)
    for i, tmp, dest in temps:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            errors[i] = exc
    sync_filesystem(root)
    return errors


def is_disk_full(exc: OSError) -> bool:
    """Whether an error means no room is left: the file system is full (ENOSPC) or the user's quota (EDQUOT)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def reserve_space(root: Path, size: int = RESERVE_BYTES) -> Path | None:
    """Set ``size`` bytes aside in ``incoming/`` (a temp file, cleaned like the others after a kill), or half the
    free space when that is less; None when there is no room at all. Release with :func:`release_space`."""
    st = os.statvfs(root)
    size = min(size, st.f_bavail * st.f_frsize // 2)
    if size <= 0:
        return None
    path = temp_file(root, "reserve")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        return None
    os.close(fd)
    return path


def release_space(reserve: Path | None) -> bool:
    """Give back space set aside by :func:`reserve_space`; whether there was any."""
    if reserve is None or not reserve.exists():
        return False
    reserve.unlink(missing_ok=True)
    return True


def _copy_with_head(source: str, dest: Path, head: bytes, skip: int) -> None:
    with open(source, "rb") as src, open(dest, "wb") as out:
        out.write(head)
        src.seek(skip)
        shutil.copyfileobj(src, out, 1 << 20)


def _load_syncfs():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux
        return None


_SYNCFS = _load_syncfs()


def sync_filesystem(path: Path) -> None:
    """Flush the file system that holds ``path`` (Linux ``syncfs``), not every disk of the machine as ``sync`` does."""
    if _SYNCFS is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def remove_stored(root: Path, rel: str) -> None:
    """Delete a managed file and the folders it leaves empty, never going above ``dicom/``. Raises ValueError for
    a path that does not name a file inside ``dicom/`` (a damaged row: absolute, ``..``, outside storage).

    The check is on the path as recorded (every stored row is ``dicom/…`` without ``..``, :func:`relative_path`),
    not on the resolved path: resolving cost two ``realpath`` walks per file (a quarter of an edit's index
    time), and the folders inside ``dicom/`` are ours, never links (``dicom/`` itself may be one: it is only
    named, not resolved)."""
    parts = rel.split("/")
    if len(parts) < 2 or parts[0] != STORAGE_DIR or any(p in ("", ".", "..") for p in parts[1:]):
        raise ValueError(f"refusing to delete {root / rel}: not inside {root / STORAGE_DIR}")
    path = os.path.join(root, rel)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    for depth in range(len(parts) - 1, 1, -1):  # the folders under dicom/, deepest first
        try:
            os.rmdir(os.path.join(root, *parts[:depth]))
        except OSError:  # not empty (or already gone)
            break


def stale_temp_files(root: Path) -> list[Path]:
    """Files in ``incoming/`` whose owner process no longer runs (no process holds its lock), sorted."""
    incoming = root / INCOMING_DIR
    if not incoming.is_dir():
        return []
    alive: dict[str, bool] = {}
    stale = []
    for entry in incoming.iterdir():
        owner = "-".join(entry.name.split("-", 2)[:2])
        if owner not in alive:
            try:
                uid = entry.lstat().st_uid
            except FileNotFoundError:  # its owner finished with it meanwhile
                continue
            alive[owner] = _owner_alive(lock_dir(uid) / f"{owner}{LOCK_SUFFIX}")
        if not alive[owner]:
            stale.append(entry)
    return sorted(stale)


def clean_incoming(root: Path) -> list[Path]:
    """Remove the files left in ``incoming/`` by processes that no longer run (:func:`stale_temp_files`);
    returns what was removed, and the lock files of this user's processes that ended."""
    removed = stale_temp_files(root)
    for entry in removed:
        entry.unlink(missing_ok=True)
    _clean_locks(lock_dir(os.getuid()))
    return removed


def _clean_locks(folder: Path) -> None:
    """Remove the owner locks of this user's processes that ended (each unlinked while we hold it: an owner
    that just created it takes it again, see :func:`_lock`)."""
    import fcntl

    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for lock in entries:
        try:
            fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.unlink(missing_ok=True)
        except OSError:  # held: its process runs
            pass
        finally:
            os.close(fd)

