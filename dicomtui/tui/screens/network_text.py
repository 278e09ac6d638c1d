"""What the network screen shows, as text: result rows and cells, the doctor's and the retrieve's outcome, the
words for each exchange (DIMSE or DICOMweb), and the WADO-RS progress message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.levels import Level, column, format_value, series_label
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
