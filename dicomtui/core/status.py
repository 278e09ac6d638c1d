"""``dicomtui status`` (issue 20): is a listener serving this database, since when, what arrived today, how big the
database is and how much disk is left. Read-only: it opens the index read-only and writes nothing (except that
:func:`.net.identity.running` removes the identity file of a listener that died).

Sources: the listeners' identity files (:mod:`.net.identity`: port, AE title, bind address, pid; the file's
modification time is when the listener took its port), the index (``instances.imported_at``), ``statvfs`` of the
database folder (:func:`shutil.disk_usage`).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from .database import DicomDatabase
from .net import identity
from .net.forward_queue import queue_counts
from .net.nodes import load_nodes


def listeners(root: Path) -> list[dict[str, Any]]:
    """The listeners serving the database folder ``root`` now: port, ae_title, bind, pid and ``since`` (ISO 8601
    local time with offset; when the listener took its port), ``associations`` (open now: calling_ae, address,
    images so far, since as ISO 8601) and ``log_file`` (None: not logging to a file), one dict each. The last two
    come from the live state the listener publishes (:func:`.net.identity.live_state`) as associations start and
    end."""
    found = []
    for entry in identity.running(root):
        try:
            entry["since"] = _iso(identity.identity_file(root, int(entry["port"])).stat().st_mtime)
        except (OSError, KeyError, ValueError):
            entry["since"] = None
        state = identity.live_state(root, int(entry.get("port", 0)))
        entry["associations"] = [{**a, "since": _iso(a.get("since"))} for a in state.get("associations", [])
                                 if isinstance(a, dict)]
        entry["log_file"] = state.get("log_file")
        found.append(entry)
    return found


def _iso(seconds: object) -> str | None:
    if not isinstance(seconds, int | float):
        return None
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def start_of_today() -> float:
    """Local midnight of today, in seconds since the epoch."""
    today = dt.datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return today.timestamp()


def status(root: Path, since: float | None = None) -> dict[str, Any]:
    """Everything ``dicomtui status`` shows, as a JSON-ready dict: ``database`` (path), ``listeners`` (see
    :func:`listeners`), ``received_today`` (instances copied or received into storage since ``since``, default
    local midnight: the index does not tell a received instance from a copied import), ``added_today`` (all rows
    added since then, linked ones included), the counts and sizes of ``db info`` (``counts``), ``disk`` (total,
    used, free bytes of the file system holding the database; ``min_free`` the listener's floor and ``refusing``
    whether a listener refuses new instances now for lack of space, :meth:`.net.listener.Listener.low_on_space`),
    ``forwards`` (node → state → forwards in the queue, :func:`.net.forward_queue.queue_counts`; {} when none).
    Raises SettingsError (nodes.toml unreadable). Raises DatabaseError (no database there)."""
    root = Path(root).expanduser()
    since = start_of_today() if since is None else since
    with DicomDatabase.open(root, create=False, read_only=True) as db:
        counts = db.stats()
        received, added = db.conn.execute(
            "SELECT COALESCE(SUM(stored), 0), COUNT(*) FROM instances WHERE imported_at >= ?", (since,)).fetchone()
    disk = shutil.disk_usage(root)
    floor = load_nodes().local.min_free_bytes
    return {"database": str(root), "listeners": listeners(root), "received_today": received, "added_today": added,
            "counts": counts, "forwards": queue_counts(root),
            "disk": {"total": disk.total, "used": disk.used, "free": disk.free, "min_free": floor,
                     "refusing": floor > 0 and disk.free < floor}}
