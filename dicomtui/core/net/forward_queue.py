"""The persistent forward queue: one row per (instance, destination node), in its own SQLite file in the database
folder, ``forward-queue.sqlite`` (WAL), beside the index and apart from its schema.

A row is ``pending`` (due at ``next_try``), ``sent`` (the peer answered the C-STORE with success or a warning, or
STOW-RS stored it) or ``failed`` (``max_tries`` tries failed; ``last_error`` says why). Rows outlive the listener:
the forwarder resumes pending rows at start (:mod:`.forwarder`). A study rule's rows are due ``idle_s`` after the
study's latest arrival: each new instance of the study pushes the due time of its pending untried rows to that
destination (storescp ``--exec-on-eostudy``).

Written by the listener's index thread (enqueue) and its forwarder thread (marks), read by ``route queue`` and
``status``; ``route retry`` sets failed rows pending again. Every change is its own short transaction (WAL,
``synchronous=NORMAL``: a commit survives the process being killed; a power cut may lose the last ones).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..database.schema import retry_locked
from ..forward import QUEUE_FILE

PENDING, SENT, FAILED = "pending", "sent", "failed"
ERROR_MAX = 500  # characters of a reason kept (a peer's error text can be long)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forwards (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,             -- node name in nodes.toml
    SOPInstanceUID TEXT NOT NULL,
    SOPClassUID TEXT NOT NULL,
    TransferSyntaxUID TEXT NOT NULL,
    StudyInstanceUID TEXT NOT NULL,
    path TEXT NOT NULL,                    -- absolute
    calling_ae TEXT,                       -- who sent it to us (NULL: not known)
    state TEXT NOT NULL,                   -- pending / sent / failed
    tries INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,                -- seconds since the epoch
    idle_s REAL NOT NULL DEFAULT 0,        -- > 0: a study rule's row, due idle_s after the study's last arrival
    deidentify INTEGER NOT NULL DEFAULT 0, -- 1: a de-identified copy goes (the rule's --deidentify)
    last_error TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    sent_at REAL,
    deid_options TEXT NOT NULL DEFAULT '', -- the rule's --profile-option names, comma-separated
    UNIQUE (SOPInstanceUID, destination)
);
CREATE INDEX IF NOT EXISTS forwards_due ON forwards (state, next_try);
CREATE INDEX IF NOT EXISTS forwards_study ON forwards (StudyInstanceUID, destination, state);
"""


def queue_path(root: Path) -> Path:
    """The queue file of the database folder ``root``."""
    return Path(root) / QUEUE_FILE


@dataclass
class Forward:
    """One queued forward, as :meth:`ForwardQueue.due` hands it to the forwarder and ``route queue`` lists it."""

    id: int
    destination: str
    SOPInstanceUID: str
    SOPClassUID: str
    TransferSyntaxUID: str
    StudyInstanceUID: str
    path: str
    calling_ae: str | None
    state: str
    tries: int
    next_try: float
    idle_s: float
    deidentify: bool
    last_error: str
    received_at: float
    sent_at: float | None
    deid_options: str = ""  # the Basic Profile options of the copy (``deidentify --profile-option`` names, a,b)

    def __post_init__(self) -> None:
        self.deidentify = bool(self.deidentify)  # SQLite gives 0 / 1

    def file(self) -> dict[str, Any]:
        """The row as :func:`.send.send` and :func:`.web_stow.stow` take an instance file."""
        return {"path": self.path, "SOPInstanceUID": self.SOPInstanceUID, "SOPClassUID": self.SOPClassUID,
                "TransferSyntaxUID": self.TransferSyntaxUID}


_COLUMNS = ", ".join(Forward.__dataclass_fields__)


class ForwardQueue:
    """The queue file of one database folder, opened (created if need be), for one thread (or guarded by a lock,
    with ``check_same_thread=False``). Raises sqlite3.Error when the file cannot be opened."""

    def __init__(self, root: Path, check_same_thread: bool = True):
        self.conn = sqlite3.connect(queue_path(root), timeout=30.0, isolation_level=None,
                                    check_same_thread=check_same_thread)
        # the listener's forwarders and a CLI job may open a new queue file at once: the switch to WAL does not
        # wait for the busy timeout
        retry_locked(lambda: self.conn.execute("PRAGMA journal_mode=WAL"), 30.0)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(forwards)")}
        if "deid_options" not in columns:  # a queue file of the first version (before per-rule profile options)
            self.conn.execute("ALTER TABLE forwards ADD COLUMN deid_options TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ForwardQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------------------

    def enqueue(self, items: Iterable[tuple[dict[str, Any], str, str | None, float] |
                                      tuple[dict[str, Any], str, str | None, float, bool] |
                                      tuple[dict[str, Any], str, str | None, float, bool, Iterable[str]]], *,
                again: bool = True, now: float | None = None) -> int:
        """Queue forwards, one transaction: each item is (instance: SOPInstanceUID, SOPClassUID,
        TransferSyntaxUID, StudyInstanceUID and the absolute ``path``; destination node; calling AE or None;
        ``idle_s``: 0 for at once, else a study rule's idle time; optionally whether a de-identified copy goes,
        default False, and then its profile option names, default none). An instance already queued to that
        destination is queued again when ``again`` (received once more: a sent or failed row becomes pending,
        untried) and left as it is otherwise (indexed again after a crash). A study rule's item pushes the due
        time of the pending untried rows of its study and destination to ``now + idle_s``. Returns the rows added
        or renewed."""
        now = time.time() if now is None else now
        done = 0
        conflict = ("ON CONFLICT (SOPInstanceUID, destination) DO UPDATE SET state = 'pending', tries = 0, "
                    "next_try = excluded.next_try, idle_s = excluded.idle_s, deidentify = excluded.deidentify, "
                    "deid_options = excluded.deid_options, "
                    "last_error = '', path = excluded.path, "
                    "calling_ae = excluded.calling_ae, received_at = excluded.received_at, sent_at = NULL"
                    if again else "ON CONFLICT DO NOTHING")
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for row, destination, calling_ae, idle_s, *deid in items:
                due = now + idle_s
                options = ",".join(cast("Iterable[str]", deid[1])) if len(deid) > 1 and deid[0] else ""
                cursor = self.conn.execute(
                    "INSERT INTO forwards (destination, SOPInstanceUID, SOPClassUID, TransferSyntaxUID, "
                    "StudyInstanceUID, path, calling_ae, state, next_try, idle_s, deidentify, received_at, "
                    f"deid_options) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) {conflict}",
                    (destination, row["SOPInstanceUID"], row["SOPClassUID"], row.get("TransferSyntaxUID") or "",
                     row["StudyInstanceUID"], str(row["path"]), calling_ae, due, idle_s, bool(deid and deid[0]),
                     now, options))
                done += cursor.rowcount
                if idle_s > 0:
                    self.conn.execute("UPDATE forwards SET next_try = ? WHERE StudyInstanceUID = ? AND "
                                      "destination = ? AND state = 'pending' AND tries = 0 AND idle_s > 0",
                                      (due, row["StudyInstanceUID"], destination))
        return done

    def mark_sent(self, forward_id: int, now: float | None = None) -> None:
        """The peer stored it (its success or warning status): never sent again. Committed before returning."""
        self.conn.execute("UPDATE forwards SET state = 'sent', tries = tries + 1, sent_at = ?, last_error = '' "
                          "WHERE id = ?", (time.time() if now is None else now, forward_id))

    def mark_failed_try(self, forward_id: int, error: str, retry_after: float | None, now: float | None = None
                        ) -> None:
        """One more try failed with ``error``: pending again ``retry_after`` seconds from now, or ``failed`` when
        ``retry_after`` is None (no tries left)."""
        now = time.time() if now is None else now
        state, due = (FAILED, now) if retry_after is None else (PENDING, now + retry_after)
        self.conn.execute("UPDATE forwards SET state = ?, tries = tries + 1, next_try = ?, last_error = ? "
                          "WHERE id = ?", (state, due, error[:ERROR_MAX], forward_id))

    def retry(self, destinations: Iterable[str] | None = None, now: float | None = None) -> int:
        """Failed rows (of ``destinations``, default all) pending again, untried and due now; returns how many."""
        now = time.time() if now is None else now
        if destinations is None:
            cursor = self.conn.execute("UPDATE forwards SET state = 'pending', tries = 0, next_try = ? "
                                       "WHERE state = 'failed'", (now,))
        else:
            names = list(destinations)
            marks = ", ".join("?" * len(names))
            cursor = self.conn.execute("UPDATE forwards SET state = 'pending', tries = 0, next_try = ? "
                                       f"WHERE state = 'failed' AND destination IN ({marks})", (now, *names))
        return cursor.rowcount

    def forget_sent(self, before: float) -> int:
        """Delete the sent rows sent before ``before`` (seconds since the epoch); returns how many. An instance
        received again after that is simply queued anew."""
        return self.conn.execute("DELETE FROM forwards WHERE state = 'sent' AND sent_at < ?", (before,)).rowcount

    # ---- reading -------------------------------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 500) -> list[Forward]:
        """Pending rows due now, the oldest due first (at most ``limit``)."""
        now = time.time() if now is None else now
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM forwards WHERE state = 'pending' AND next_try <= ? "
                                 "ORDER BY next_try, id LIMIT ?", (now, limit)).fetchall()
        return [Forward(*r) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest pending row is due (None: nothing pending)."""
        return self.conn.execute("SELECT MIN(next_try) FROM forwards WHERE state = 'pending'").fetchone()[0]

    def listing(self, states: Iterable[str] = (PENDING, FAILED), limit: int = 1000) -> list[Forward]:
        """Rows in ``states``, failed first, then by due time (what ``route queue`` prints)."""
        names = list(states)
        marks = ", ".join("?" * len(names))
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM forwards WHERE state IN ({marks}) "
                                 "ORDER BY state = 'pending', next_try, id LIMIT ?", (*names, limit)).fetchall()
        return [Forward(*r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Destination → state → rows (states with no row left out)."""
        return _counts(self.conn)


def queue_counts(root: Path) -> dict[str, dict[str, int]]:
    """:meth:`ForwardQueue.counts` of the database folder ``root``, without creating the file ({} when there is
    none): for ``status``, which writes nothing."""
    path = queue_path(root)
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        return _counts(conn)
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def _counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for destination, state, n in conn.execute(
            "SELECT destination, state, COUNT(*) FROM forwards GROUP BY destination, state ORDER BY 1, 2"):
        found.setdefault(destination, {})[state] = n
    return found
