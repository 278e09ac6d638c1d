"""The listener's log (``dicomtui listen --log-file``): plain text lines or JSON lines, in a file rotated by size.

``--log-format json`` writes one JSON object per line (JSON Lines): ``time`` (ISO 8601 with offset), ``level``,
``logger``, ``message``, and for the records that carry one (``extra={"event": {...}}``) the event's fields: one
object per association (``"event": "association"``: calling AE, address, images, bytes, refused, status, seconds)
and per forward round (``"event": "forward"``). Values from peers are escaped and truncated by the code that logs
them (:func:`.net.wire.peer_text`), before they reach a record; JSON escapes what remains.

Rotation: :class:`logging.handlers.RotatingFileHandler` (the file is renamed ``.1``, ``.2``, … once it would pass
``max_bytes``; ``keep`` old files are kept), which needs no outside tool (logrotate) and no signal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
from pathlib import Path

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            entry.update(event)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_handler(path: Path | None, fmt: str = "text", max_bytes: int = 10 << 20, keep: int = 5) -> logging.Handler:
    """The handler of the listener's log: a size-rotated file at ``path`` (created with its folder; ``max_bytes``
    0: never rotated), or stderr when ``path`` is None; ``fmt`` "text" (timestamped lines) or "json" (JSON Lines).
    Raises ValueError for another format, OSError when the file cannot be opened."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler()
    else:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler
