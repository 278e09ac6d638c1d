"""Import a folder: a path with directory completion, copy or link, progress, cancel with Escape, summary."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, RadioButton, RadioSet, Static
from textual.worker import get_current_worker

from ...core.database import DicomDatabase
from ...core.indexer import ImportProgress, ImportReport, run_import
from ...core.levels import ImportMode
from ...core.net.nodes import copy_floor
from ..messages import ImportFinished, ImportProgressed
from .confirm import ShowsWorkerErrors
from .forms import FIELD_KEYS


class DirectorySuggester(Suggester):
    """Completes the last part of a path with the first matching sub-folder (→ accepts it)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_directory(value)


def complete_directory(value: str) -> str | None:
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    parent, stem = (path, "") if value.endswith("/") else (path.parent, path.name)
    try:
        names = sorted(e.name for e in os.scandir(parent) if e.is_dir() and e.name.startswith(stem)
                       and (stem.startswith(".") or not e.name.startswith(".")))
    except OSError:
        return None
    if not names or (names[0] == stem):
        return None
    return value + names[0][len(stem):] + "/"


class ImportScreen(ShowsWorkerErrors, ModalScreen[ImportReport | None]):
    """The import modal; dismissed with the report (or None when closed before starting)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel / close", id="import_cancel"),
                Binding("ctrl+r", "patch", "Fix broken files first", id="import_patch",
                        tooltip="The DICOM patcher: fixed copies of a folder, then imported (copy mode)"), *FIELD_KEYS]

    def __init__(self, db_path: Path, mode: ImportMode | str = ImportMode.LINK, start: str = "") -> None:
        super().__init__()
        self.db_path = db_path
        self.mode = ImportMode(mode)
        self.start = start
        self.cancel_event = threading.Event()
        self.report: ImportReport | None = None
        self.running = False
        self.started = 0.0  # monotonic time the import began (for the rate)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="import-dialog"):
            yield Label("Import DICOM files (folders are searched recursively; a DICOMDIR is followed; "
                        "ctrl+r fixes broken files first)")
            yield Input(self.start or str(Path.cwd()) + "/", placeholder="folder or file", id="import-path",
                        suggester=DirectorySuggester())
            with Horizontal(id="import-options"):
                with RadioSet(id="import-mode"):
                    yield RadioButton("link (leave files where they are)", value=self.mode is ImportMode.LINK,
                                      id="mode-link")
                    yield RadioButton("copy into the database", value=self.mode is ImportMode.COPY, id="mode-copy")
                yield Button("Import", variant="primary", id="import-start")
            bar = ProgressBar(id="import-progress", show_eta=False)
            bar.display = False  # no "--%" before work: shown once the scan has counted the files (issue 14, 19)
            yield bar
            yield Static("", id="import-current")
            yield Static("", id="import-summary")
            yield DataTable(id="import-rejected", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#import-rejected", DataTable).display = False
        self.query_one("#import-path", Input).focus()

    @on(Input.Submitted, "#import-path")
    @on(Button.Pressed, "#import-start")
    def start_import(self) -> None:
        if self.running or self.report is not None:
            if self.report is not None:
                self.dismiss(self.report)
            return
        path = Path(os.path.expanduser(self.query_one("#import-path", Input).value.strip()))
        if not path.exists():
            self.query_one("#import-summary", Static).update(f"[b]{path}[/b] does not exist")
            return
        mode = ImportMode.COPY if self.query_one("#mode-copy", RadioButton).value else ImportMode.LINK
        self.running, self.started = True, time.monotonic()
        self.query_one("#import-start", Button).disabled = True
        self.query_one("#import-summary", Static).update(f"{mode}: scanning {path} …   Escape cancels")
        self.run_import(path, mode)

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def run_import(self, path: Path, mode: ImportMode) -> None:
        worker = get_current_worker()
        with DicomDatabase.open(self.db_path) as db:  # its own connection: the browser sees the commits
            floor = copy_floor(mode, self.app.nodes_path)  # the listener's free-space floor
            for event in run_import(db, [path], mode=mode, cancel=self.cancel_event, min_free=floor):
                if worker.is_cancelled:
                    self.cancel_event.set()
                if isinstance(event, ImportProgress):
                    self.post_message(ImportProgressed(event))
                elif isinstance(event, ImportReport):
                    self.post_message(ImportFinished(event))

    @on(ImportProgressed)
    def _progressed(self, message: ImportProgressed) -> None:
        self.show_progress(message.progress)

    @on(ImportFinished)
    def _finished(self, message: ImportFinished) -> None:
        self.show_report(message.report)

    def show_progress(self, event: ImportProgress) -> None:
        bar = self.query_one("#import-progress", ProgressBar)
        bar.display = event.phase != "scan"
        if event.phase == "scan":
            text = f"scanning: {event.scanned} files found"
        else:
            bar.update(total=max(event.total, 1), progress=event.done)
            text = f"{event.done} / {event.total} files"
        elapsed = time.monotonic() - self.started
        if event.done and elapsed > 0:
            text += f"  ·  {event.done / elapsed:,.0f} files/s"
        self.query_one("#import-summary", Static).update(text + "   Escape cancels")
        self.query_one("#import-current", Static).update(event.path[-100:] if event.path else "")

    def show_report(self, report: ImportReport) -> None:
        self.running = False
        self.report = report
        bar = self.query_one("#import-progress", ProgressBar)
        if not report.cancelled:  # after a cancel the bar stays where the import stopped, never 100 %
            bar.update(total=max(report.files_seen, 1), progress=report.files_seen)
        self.query_one("#import-current", Static).update("")
        self.query_one("#import-summary", Static).update(report.headline() + "\nEnter or Escape closes.")
        button = self.query_one("#import-start", Button)
        button.label, button.disabled = "Close", False
        button.focus()
        if report.rejected or report.warnings:
            table = self.query_one("#import-rejected", DataTable)
            table.add_columns("File", "Reason")
            for problem in report.rejected + report.warnings:
                table.add_row(problem.path, problem.reason)
            table.display = True

    def worker_failed(self, _worker) -> None:
        self.running = False
        button = self.query_one("#import-start", Button)
        button.label, button.disabled = "Close", False
        self.query_one("#import-summary", Static).update("The import failed (see the message); Escape closes.")

    def action_patch(self) -> None:
        """The patcher on the typed folder; the fixed copies it hands back are imported here, in copy mode."""
        from .patcher import PatcherScreen

        def patched(folder: Path | None) -> None:
            if folder is not None:
                self.query_one("#import-path", Input).value = str(folder)
                self.query_one("#mode-copy", RadioButton).value = True
                self.start_import()

        if not (self.running or self.report is not None):
            self.app.push_screen(PatcherScreen(self.query_one("#import-path", Input).value), patched)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.query_one("#import-summary", Static).update("cancelling: finishing the current batch …")
        else:
            self.dismiss(self.report)

