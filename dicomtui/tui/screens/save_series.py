"""Save as DICOM series: the viewer's shown volume written as a new series into the open database
(``core.export.volume_series.write_volume_series``), joining the patient and study of the series it was loaded from.

The form: SeriesDescription (proposed "<name> (derived)"), SeriesNumber (1001 by default), the UID root of the
new Series and SOP Instance UIDs (pydicom's by default; checked as PS3.5 9.1 says), a folder the files are also
written to (optional; never over a file there), Enhanced (one multi-frame Legacy Converted Enhanced CT/MR image
instead of one file per slice) and the reference — the
source series, found from the volume's per-slice SOPInstanceUIDs in the database (a volume read from a file has
none: it is written as a new patient and study). The writing runs in a worker with its own connection, as the
tag editor's; the summary (UIDs, where, the rescale used) is shown in the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from ...core.database import DicomDatabase
from ...core.errors import DicomtuiError
from ...core.export.volume_series import (
    DEFAULT_SERIES_NUMBER,
    DEFAULT_UID_ROOT,
    SeriesOptions,
    check_uid_root,
    write_volume_series,
)
from ...core.net.nodes import copy_floor
from ...core.text import printable
from ...core.volume import Volume
from ..messages import Stopped
from .confirm import ShowsWorkerErrors


def source_series_uid(db: DicomDatabase, volume: Volume) -> str | None:
    """The SeriesInstanceUID of ``db`` that holds the volume's first slice instance (Volume.instance_uids), or
    None when the volume has none (read from NIfTI/NRRD) or the instance is not in ``db`` (deleted since)."""
    for uid in volume.instance_uids[:1]:
        instance = db.find("instance", uid)
        series = db.get("series", instance["series_fk"]) if instance else None
        if series:
            return str(series["SeriesInstanceUID"])
    return None


@dataclass
class SeriesSaved(Message):
    """The new series was written; ``summary`` is the report's."""

    summary: str


class SaveSeriesScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Write ``volume`` (the viewer's shown volume) as a new series into the database at ``db_path``, derived from
    ``reference`` (a SeriesInstanceUID of that database, or None: a new patient and study)."""

    BINDINGS = [Binding("escape", "close", "Close", id="save_series_close")]

    def __init__(self, db_path: Path, volume: Volume, name: str, reference: str | None) -> None:
        super().__init__()
        self.db_path = db_path
        self.volume = volume
        self.name_ = name
        self.reference = reference

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Save {escape(printable(self.name_))} as a new DICOM series in the database")
            yield Label("SeriesDescription")
            yield Input(f"{self.name_ or 'volume'} (derived)"[:64], id="series-description")
            yield Label("SeriesNumber")
            yield Input(str(DEFAULT_SERIES_NUMBER), id="series-number", type="integer")
            yield Label("UID root of the new Series and SOP Instance UIDs")
            yield Input(DEFAULT_UID_ROOT, id="series-uid-root")
            yield Label("Also write the files to this folder (empty: the database only)")
            yield Input("", placeholder="a folder; created when missing, no file there overwritten",
                        id="series-folder")
            yield Label("Derived from series " + (escape(self.reference) if self.reference else
                                                  "(none in this database: a new patient and study)"),
                        id="series-reference")
            yield Checkbox("Enhanced: one multi-frame Legacy Converted Enhanced CT/MR image", id="series-enhanced")
            yield Button("Save series", variant="primary", id="series-go")
            yield Static("", id="series-result", markup=False)

    def on_mount(self) -> None:
        self.query_one("#series-description", Input).focus()

    def say(self, text: str) -> None:
        self.query_one("#series-result", Static).update(text)

    @on(Input.Submitted)
    @on(Button.Pressed, "#series-go")
    def save(self) -> None:
        number = self.query_one("#series-number", Input).value.strip()
        if not number.lstrip("-").isdigit() or not 0 <= int(number) < 2**31:
            self.say("Nothing written: SeriesNumber is a whole number from 0 (IS, PS3.5 6.2).")
            return
        try:
            root = check_uid_root(self.query_one("#series-uid-root", Input).value.strip())
        except DicomtuiError as exc:
            self.say(f"Nothing written: {printable(str(exc))}")
            return
        typed = self.query_one("#series-folder", Input).value.strip()
        folder = Path(typed).expanduser() if typed else None
        description = self.query_one("#series-description", Input).value.strip()
        self.say("Writing…")
        enhanced = self.query_one("#series-enhanced", Checkbox).value
        self.write(SeriesOptions(description=description, series_number=int(number), uid_root=root,
                                 source=self.name_, enhanced=enhanced,
                                 min_free=copy_floor("copy", self.app.nodes_path)), folder)

    @work(thread=True, exclusive=True, group="save series", exit_on_error=False)
    def write(self, options: SeriesOptions, folder: Path | None = None) -> None:
        try:
            with DicomDatabase.open(self.db_path, create=False) as db:
                report = write_volume_series(self.volume, options, db=db, like=self.reference, folder=folder)
        except (DicomtuiError, OSError) as exc:
            self.post_message(Stopped(str(exc)))
            return
        self.post_message(SeriesSaved(report.summary()))

    @on(SeriesSaved)
    def _saved(self, message: SeriesSaved) -> None:
        self.say(printable(message.summary, multiline=True) + "\nEscape closes.")
        self.app.browser.reload()

    @on(Stopped)
    def _not_written(self, message: Stopped) -> None:
        self.say(f"Not written: {printable(message.text)}")

    def action_close(self) -> None:
        self.dismiss(None)
