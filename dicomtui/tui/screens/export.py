"""Export the browser's selection to a folder (tree or flat names from the data), a ZIP or a DICOMDIR file-set:
the core's :mod:`dicomtui.core.export`, with progress, de-identified when asked (:mod:`.deid_options`: PS3.15 Basic
Profile, files and folders then named without the data's names); Escape cancels between files, then closes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, Static, Switch
from textual.worker import get_current_worker

from ...core.errors import DicomtuiError, ExportError
from ...core.export import ExportOptions, ExportReport, export_files, plan_export
from ...core.levels import Item
from ...core.naming import default_output_folder, safe_name
from ...core.plural import counted
from ...core.text import printable
from ..messages import Progress, Stopped
from .confirm import ShowsWorkerErrors
from .deid_options import DeidPanel
from .forms import FIELD_KEYS, field

LAYOUTS = [("tree: Patient/Study/Series/NNNN.dcm", "tree"), ("flat: PatientID_Series_NNNN.dcm in one folder", "flat")]


@dataclass
class Exported(Message):
    """The export ended (or was cancelled): its report."""

    report: ExportReport


def default_folder(description: str) -> Path:
    """Where the selection goes unless the user types another folder: the default output folder (the working
    directory, or home in the source tree) / the selection in words, made safe ("series_1_Axial")."""
    return default_output_folder() / safe_name(description, "dicom-export")


class ExportScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Export ``items`` (the browser's selection) of the database ``db``; the folder, layout, DICOMDIR, ZIP and
    overwrite are chosen in the form, ctrl+s (or Enter in the folder field) exports."""

    AUTO_FOCUS = "#x-folder"
    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel / close", id="export_close"),
                Binding("ctrl+s", "export", "Export", id="export_go"), *FIELD_KEYS]

    def __init__(self, db: Any, items: list[Item], description: str, folder: Path | None = None) -> None:
        super().__init__()
        self.db, self.items, self.description = db, items, description
        self.folder = folder or default_folder(description)
        self.files = len(db.instance_rows(items, "id"))
        self.cancel = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="export-form"):
            yield Label(f"Export {printable(self.description)} ({counted(self.files, 'file')})",
                        classes="pane-title", markup=False)
            yield field("Folder (with ZIP: the ZIP file, .zip added)", Input(str(self.folder), id="x-folder"))
            yield field("Layout", Select(LAYOUTS, value="tree", allow_blank=False, id="x-layout"))
            with Horizontal(classes="row"):
                yield field("DICOMDIR (PS3.10 names)", Switch(False, id="x-dicomdir"))
                yield field("ZIP", Switch(False, id="x-zip"))
                yield field("Overwrite existing files", Switch(False, id="x-overwrite"))
            # path and SOPInstanceUID of each file (what de-identification looks at), read when first asked
            yield DeidPanel(lambda: self.db.instance_files(self.items), getattr(self.db, "root", None))
            with Horizontal(classes="buttons"):
                yield Button("Export (ctrl+s)", variant="primary", id="x-go")
                yield Button("Close (Esc)", id="x-close")
            yield ProgressBar(id="x-progress", show_eta=False)
            yield Static("Nothing is overwritten unless asked.", id="x-summary", markup=False)
            yield DataTable(id="x-problems", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#x-problems", DataTable).display = False
        self.query_one("#x-progress", ProgressBar).display = False  # shown from the first export on

    def options(self) -> ExportOptions:
        return ExportOptions(layout=str(self.query_one("#x-layout", Select).value),
                             dicomdir=self.query_one("#x-dicomdir", Switch).value,
                             zip=self.query_one("#x-zip", Switch).value,
                             overwrite=self.query_one("#x-overwrite", Switch).value)

    def say(self, text: str) -> None:
        self.query_one("#x-summary", Static).update(text)

    @on(Button.Pressed, "#x-go")
    @on(Input.Submitted, "#x-folder")
    def action_export(self) -> None:
        if self.running:
            return
        folder = self.query_one("#x-folder", Input).value.strip()
        if not folder:
            self.say("Nothing exported: type the folder to write into.")
            return
        options = self.options()
        try:
            options.transform = self.query_one(DeidPanel).deidentifier()
        except DicomtuiError as exc:  # the mapping cannot be read
            self.say(f"Nothing exported: {exc}")
            return
        if options.transform is not None and options.dicomdir and \
                not options.transform.options.retain_modified_dates:
            self.say("Nothing exported: a DICOMDIR needs each study's StudyDate and StudyTime (PS3.3 F.5) and the "
                     "Basic Profile empties them: tick Retain Longitudinal Temporal Information Modified Dates "
                     "Option, or export without a DICOMDIR.")
            return
        plan = plan_export(self.db, self.items, options.layout)  # the database is read here, in the app's thread
        self.running = True
        progress = self.query_one("#x-progress", ProgressBar)
        progress.display = True
        progress.update(total=len(plan), progress=0)
        self.cancel.clear()  # an export cancelled before does not cancel this one
        self.say(f"Exporting {counted(len(plan), 'file')} …  Escape cancels")
        self._export(plan, Path(folder).expanduser(), options)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, plan: list, folder: Path, options: ExportOptions) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is quitting: stop before the next file
                self.cancel.set()
            self.post_message(Progress(done, total))

        try:
            if options.transform is not None:
                from ...core.export.deidentify import export_deidentified_files

                report = export_deidentified_files(plan, folder, options, progress, self.cancel)
                if options.transform.refused:
                    report.notes.append(f"{counted(len(options.transform.refused), 'file')} may show identity in "
                                        f"the pixels (burned-in annotation) and were left out: tick them to "
                                        f"export them")
            else:
                report = export_files(plan, folder, options, progress, self.cancel)
        except (ExportError, DicomtuiError) as exc:  # DicomtuiError: the mapping cannot be written
            self.post_message(Stopped(f"Not exported: {exc}"))
            return
        self.post_message(Exported(report))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#x-progress", ProgressBar).update(total=message.total, progress=message.done)

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        report = message.report
        self._done(report.summary().split("\n")[0] + "".join(f"\nNote: {note}" for note in report.notes))
        if report.problems:
            table = self.query_one("#x-problems", DataTable)
            table.clear(columns=True)
            table.add_columns("File", "Why not exported")
            table.add_rows([(printable(p.path), printable(p.reason)) for p in report.problems])
            table.display = True

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self._done(message.text)

    def _done(self, text: str) -> None:
        self.running = False
        self.say(text + "\nEscape closes.")

    def worker_failed(self, _worker) -> None:
        self._done("The export failed (see the message).")

    @on(Button.Pressed, "#x-close")
    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
        else:
            self.dismiss(None)
