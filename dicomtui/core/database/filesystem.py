"""Where a database folder lives: a network file system (NFS, SMB/CIFS, sshfs and other FUSE mounts) or not.

SQLite's locking and WAL's shared-memory index rely on POSIX locks and ``mmap`` behaving as on a local disk; over a
network file system they do not (sqlite.org/wal.html: "WAL does not work over a network filesystem";
sqlite.org/lockingv3.html section 6: "file locking … is broken on many NFS implementations"), which can corrupt the
index when two processes write. So a database there is opened with ``journal_mode=DELETE`` and a warning that names
the fix: keep the index on a local path (storage may stay remote).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("dicomtui.database")

MOUNTS_FILE = "/proc/self/mounts"

# Kernel file-system types (field 3 of /proc/mounts) that reach another machine.
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "coda", "9p", "ceph", "glusterfs", "lustre", "gpfs",
    "beegfs", "ocfs2", "gfs2", "davfs", "sshfs",
})
# FUSE file systems show as "fuse.<program>"; these few are local disks, every other one is treated as remote
# (sshfs, rclone, s3fs, gcsfuse, davfs2…): their locking is whatever the program implements.
LOCAL_FUSE_TYPES = frozenset({"fuseblk", "fuse.ntfs-3g", "fuse.lxcfs", "fuse.portal", "fuse.gvfsd-fuse"})

_warned: set[str] = set()  # folders already warned about in this process (the listener opens per association)


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field


def filesystem_type(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The file-system type (``ext4``, ``nfs4``, ``fuse.sshfs``…) of the mount holding ``path``: the mount point
    that is the longest prefix of its resolved path. ``mounts``: the text of ``/proc/self/mounts`` (read when
    None). None when the table cannot be read (not Linux)."""
    if mounts is None:
        try:
            mounts = Path(MOUNTS_FILE).read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fstype = _unescape(fields[1]), fields[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # a later mount over the same point hides the earlier one
            best, best_type = point, fstype
    return best_type


def network_filesystem(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The type of the network file system holding ``path`` (``nfs4``, ``cifs``, ``fuse.sshfs``…), or None on a
    local disk (or when it cannot be told)."""
    fstype = filesystem_type(path, mounts)
    if fstype is None:
        return None
    if fstype in NETWORK_FS_TYPES or (fstype.startswith("fuse.") and fstype not in LOCAL_FUSE_TYPES):
        return fstype
    return None


def network_notice(root: Path, fstype: str) -> str:
    """The sentence that says why a database on ``fstype`` is opened without WAL and what to do about it."""
    return (f"the database folder {root} is on a network file system ({fstype}): SQLite's locking and WAL are not "
            f"safe there, so it is opened without WAL (journal_mode=DELETE) and concurrent writers may still damage "
            f"it; keep the index on a local disk (--db or the `database` setting; storage may stay remote)")


def warn_once(root: Path, fstype: str) -> str:
    """Log the network notice for ``root`` once per process; return it (the faces show it too)."""
    notice = network_notice(root, fstype)
    if str(root) not in _warned:
        _warned.add(str(root))
        log.warning(notice)
    return notice
