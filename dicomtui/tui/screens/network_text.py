"""What the network screen shows, as text: result rows and cells, the doctor's and the retrieve's outcome, the
words for each exchange (DIMSE or DICOMweb), and the WADO-RS progress message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.levels import Level, column, format_value, series_label
from ...core.plural import counted
from ..messages import Coalescing

if TYPE_CHECKING:
    from ...core.net.doctor import DoctorReport
    from ...core.net.retrieve import RetrieveReport

_DATE = column(Level.STUDY, "StudyDate")


def result_cell(key: str, value: object) -> str:
    """A result cell's text, as the browser shows it: dates as YYYY-MM-DD, nothing for a missing value."""
    if key == "StudyDate":
        return format_value(_DATE, value)
    return "" if value is None else str(value)


def result_row(n: int, level: str, answer: dict[str, str]) -> dict[str, str | int]:
    """One C-FIND answer in the result table's columns (study and series answers side by side)."""
    row = {"id": n, **answer}
    if level == "study":
        row["Description"] = answer.get("StudyDescription", "")
        row["Modality"] = answer.get("ModalitiesInStudy", "")
        row["Images"] = answer.get("NumberOfStudyRelatedInstances", "")
        row["uid"] = answer.get("StudyInstanceUID", "")
    else:
        row["Description"] = series_label(answer)
        row["Images"] = answer.get("NumberOfSeriesRelatedInstances", "")
        row["NumberOfStudyRelatedSeries"] = ""
        row["uid"] = answer.get("SeriesInstanceUID", "")
    return row


MARKS = {True: "✓", False: "✗", None: "·"}  # a check passed, failed, was not tried


def doctor_text(report: DoctorReport) -> str:
    """The doctor's checks as the screen shows them: one line each, marked ✓ ✗ or · (the CLI's ``summary()``
    writes ok / FAIL / -- in columns, under a heading)."""
    return "\n".join(f"{MARKS[c.ok]} {c.name}: {c.detail}" for c in report.checks)


def retrieve_text(report: RetrieveReport) -> str:
    """The retrieve's outcome as the screen shows it: "Done:" or "Cancelled:" and the counts (the CLI's
    ``summary()`` names the method and the node instead), then its problems, one a line."""
    head = "Cancelled" if report.cancelled else "Done"
    counts = (f"{head}: {report.completed} retrieved, {report.already_here} already here, {report.failed} failed,"
              f" {report.warning} warnings (of {report.requested})")
    received = getattr(report, "bytes_received", None)  # WADO-RS counts the bytes too
    if received is not None:
        counts += f", {size_text(received)}"
    return "\n".join([counts, *report.problems()])


def size_text(n: int) -> str:
    """Bytes received, in decimal units as the listener's table shows them: ``812 kB``, ``53.1 MB``."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def protocol_words(web: bool) -> dict[str, str]:
    """What the screen calls each exchange with a node: DIMSE services or their DICOMweb counterparts."""
    if web:
        return {"echo": "QIDO-RS (one study)", "query": "QIDO-RS", "retrieve": "WADO-RS",
                "doctor": "network, TLS, QIDO-RS, WADO-RS, STOW-RS"}
    return {"echo": "C-ECHO", "query": "C-FIND", "retrieve": "", "doctor": "network, echo, query, a C-MOVE back to us"}


@dataclass
class WebProgress(Coalescing):
    """WADO-RS progress: ``done`` of ``total`` instances and the bytes received so far."""

    done: int
    total: int
    received: int


def disk_text(n: int) -> str:
    """Bytes of disk in binary units, as ``status`` and the listener's floor sentence: ``812 MiB``, ``11.4 GiB``."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def other_listeners(found: list[dict], own_pid: int) -> list[dict]:
    """The listeners of :func:`dicomtui.core.status.listeners` that run in another process than ``own_pid``
    (a service, a ``dicomtui listen`` in a terminal): the TUI's own listener holds an identity file too."""
    return [entry for entry in found if entry.get("pid") != own_pid]


def service_text(entry: dict) -> str:
    """One listener serving this database from another process: pid, AE title, address, since when, and the
    open associations when ``status`` reports them (``open_associations`` or ``associations``: a count or a list)."""
    since = str(entry.get("since") or "")
    since = f" since {since[:16].replace('T', ' ')}" if since else ""
    open_now = entry.get("open_associations", entry.get("associations"))
    if isinstance(open_now, list | tuple):
        open_now = len(open_now)
    busy = f"  ·  {counted(int(open_now), 'association')} open" if isinstance(open_now, int) else ""
    return (f"Served by the service listener (pid {entry.get('pid', '?')}): {entry.get('ae_title', '?')} on "
            f"{entry.get('bind', '') or '*'}:{entry.get('port', '?')}{since}{busy}  ·  l does not start a second one")


def status_line(status: dict) -> str:
    """What ``dicomtui status`` says about receiving, in one line: instances received today, free disk against the
    floor and whether new instances are refused; pending and failed forwards, summed over the destinations
    (``status``'s ``forwards``: {node: {"pending": n, "failed": n, "sent": n}})."""
    disk = status.get("disk", {})
    floor = int(disk.get("min_free", 0) or 0)
    parts = [f"received today: {status.get('received_today', 0):,}",
             f"disk: {disk_text(int(disk.get('free', 0)))} free"
             + (f", floor {disk_text(floor)}" if floor else ", no floor")]
    if disk.get("refusing"):
        parts.append("REFUSING new instances (below the floor: free space, or lower min_free_bytes)")
    by_node = [v for v in (status.get("forwards") or {}).values() if isinstance(v, dict)]
    pending, failed = (sum(int(v.get(state, 0)) for v in by_node) for state in ("pending", "failed"))
    if pending or failed:
        parts.append(f"forwards: {pending} pending, {failed} failed")
    return "  ·  ".join(parts)


@dataclass
class StatusRead(Coalescing):
    """What :func:`dicomtui.core.status.status` said about this database (None and ``problem`` when it could not
    be read)."""

    status: dict | None
    problem: str = ""
