"""The DICOM patcher: a source folder, a destination, the rules as checkboxes; ctrl+s writes the fixed copies
(the core's :func:`dicomtui.core.patcher.patch`) with progress, Escape cancels between files; the report lists
every change and every skipped file; ctrl+o imports the result (copy mode) through the import screen."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from ...core.errors import PatchError
from ...core.patcher import PatchReport, check_patch, patch, rule_titles
from ...core.text import printable
from ..messages import Progress
from .confirm import ShowsWorkerErrors
from .forms import FIELD_KEYS, field
from .import_ import DirectorySuggester

ROWS = 2000  # report rows shown (changes, then skipped files); the CLI's --json has them all


@dataclass
class Patched(Message):
    """The patch ended (or was cancelled): its report."""

    report: PatchReport


def default_destination(source: str) -> str:
    """Where the fixed copies go unless the user types another folder: beside the source, "-patched" added."""
    source = source.strip().rstrip("/")
    return f"{source}-patched" if source else ""


class PatcherScreen(ShowsWorkerErrors, ModalScreen[Path | None]):
    """The patcher modal; dismissed with the destination folder when the user asks to import it, else None."""

    AUTO_FOCUS = "#p-source"
    DEFAULT_CSS = """
    PatcherScreen #p-rules { height: auto; margin: 1 0 0 0; }
    PatcherScreen #p-rules Checkbox, PatcherScreen #p-dry-run { margin: 0 1; }
    PatcherScreen #p-report { height: 12; }
    """
    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel / close", id="patcher_close"),
                Binding("ctrl+s", "patch", "Patch", id="patcher_go", tooltip="Write the fixed copies"),
                Binding("ctrl+o", "import_result", "Import the result", id="patcher_import",
                        tooltip="Import the fixed copies into the database (copy mode)"), *FIELD_KEYS]

    def __init__(self, source: str = "") -> None:
        super().__init__()
        self.source = source.strip()
        self.cancel = threading.Event()
        self.running = False
        self.report: PatchReport | None = None
        self.destination_typed = False  # the user's own destination is never replaced by the derived one

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="patch-form"):
            yield Label("Fix broken DICOM files: fixed copies go to another folder; the source is never changed",
                        classes="pane-title")
            yield field("Source folder", Input(self.source, id="p-source", suggester=DirectorySuggester()))
            yield field("Destination (a new or empty folder)",
                        Input(default_destination(self.source), id="p-dest"))
            with Vertical(id="p-rules"):
                for name, title in rule_titles().items():
                    yield Checkbox(f"{name}: {title}", True, id=f"p-rule-{name}", compact=True)
            yield Checkbox("dry run: read and fix, write nothing", False, id="p-dry-run", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Patch (ctrl+s)", variant="primary", id="p-go")
                yield Button("Import the result (ctrl+o)", id="p-import", disabled=True)
                yield Button("Close (Esc)", id="p-close")
            yield Static("Nothing is written until ctrl+s.", id="p-summary", markup=False)
            for hidden in (ProgressBar(id="p-progress", show_eta=False), DataTable(id="p-report", cursor_type="row")):
                hidden.display = False  # shown once a patch runs, and once it has a report
                yield hidden

    @on(Input.Changed, "#p-source")
    def _source_changed(self, event: Input.Changed) -> None:
        if not self.destination_typed:
            with self.prevent(Input.Changed):
                self.query_one("#p-dest", Input).value = default_destination(event.value)

    @on(Input.Changed, "#p-dest")
    def _destination_changed(self, event: Input.Changed) -> None:
        self.destination_typed = event.value != default_destination(self.query_one("#p-source", Input).value)

    def rules(self) -> list[str]:
        return [name for name in rule_titles() if self.query_one(f"#p-rule-{name}", Checkbox).value]

    def say(self, text: str) -> None:
        self.query_one("#p-summary", Static).update(text)

    @on(Button.Pressed, "#p-go")
    @on(Input.Submitted)
    def action_patch(self) -> None:
        if self.running:
            return
        source = os.path.expanduser(self.query_one("#p-source", Input).value.strip())
        destination = os.path.expanduser(self.query_one("#p-dest", Input).value.strip())
        if not source or not destination:
            self.say("Nothing patched: type the source folder and the destination.")
            return
        rules = self.rules()
        if not rules:
            self.say("Nothing patched: choose at least one rule.")
            return
        try:
            check_patch(source, destination, rules)  # here, at once: a folder that will not do is said in words
        except PatchError as exc:
            self.say(f"Not patched: {exc}")
            return
        self.running, self.report = True, None
        self.query_one("#p-import", Button).disabled = True
        self.query_one("#p-report", DataTable).display = False
        bar = self.query_one("#p-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.cancel.clear()
        self.say(f"Patching {source} …  Escape cancels")
        self._patch(source, destination, rules, self.query_one("#p-dry-run", Checkbox).value)

    @work(thread=True, exclusive=True, group="patch", exit_on_error=False)
    def _patch(self, source: str, destination: str, rules: list[str], dry_run: bool) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is quitting: stop before the next file
                self.cancel.set()
            self.post_message(Progress(done, total))

        self.post_message(Patched(patch(source, destination, rules, dry_run=dry_run, progress=progress,
                                        cancel=self.cancel)))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#p-progress", ProgressBar).update(total=message.total, progress=message.done)

    @on(Patched)
    def _patched(self, message: Patched) -> None:
        report = self.report = message.report
        self.running = False
        importable = bool(report.files) and not report.dry_run
        self.query_one("#p-import", Button).disabled = not importable
        self.say(report.summary() + ("\nctrl+o imports the result (copy mode); " if importable else "\n")
                 + "Escape closes.")
        table = self.query_one("#p-report", DataTable)
        table.clear(columns=True)
        table.add_columns("File", "Rule", "Change")
        rows = [(f.source, rule, change) for f in report.changed for rule, change in f.changes]
        rows += [(s.path, "skipped", s.reason) for s in report.skipped]
        table.add_rows([tuple(printable(v) for v in row) for row in rows[:ROWS]])
        table.display = bool(rows)

    def worker_failed(self, _worker) -> None:
        self.running = False
        self.say("The patch failed (see the message); Escape closes.")

    @on(Button.Pressed, "#p-import")
    def action_import_result(self) -> None:
        if self.report is not None and self.report.files and not self.running:
            self.dismiss(Path(self.report.destination))

    @on(Button.Pressed, "#p-close")
    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
            self.say("Cancelling: finishing the current file …")
        else:
            self.dismiss(None)
