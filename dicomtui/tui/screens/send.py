"""Send the browser's selection to a node: C-STORE over one association, with progress, per-instance results,
and Escape to cancel between instances."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, ProgressBar, Static
from textual.worker import get_current_worker

from ...core.errors import NetworkError, NodeError
from ...core.net.nodes import Nodes, RemoteNode
from ...core.plural import counted
from ..messages import Progress, Sent, Stopped
from .confirm import ShowsWorkerErrors

if TYPE_CHECKING:  # the operation is imported when first used: time a start does not need
    from ...core.net.send import SendReport

CANCELLED = "Cancelled: the association was released; instances sent until then stay at the peer."


def send_text(report: SendReport) -> str:
    """The send's outcome as the dialog shows it: the peer and the counts, why it stopped early and what was
    recovered from (the CLI's ``summary()`` lists the instances instead; the dialog has a table for those)."""
    if report.cancelled:
        return CANCELLED
    counts = report.counts
    return (f"{report.node}: {counts['success']} sent, {counts['warning']} with warnings, {counts['failure']} failed"
            + (f". {report.error}" if report.error else "") + "".join(f"\n{note}" for note in report.notes))


def send_problems(report: SendReport) -> list[tuple[str, str, str]]:
    """The instances not stored successfully: (file, category, status in words), for the dialog's table."""
    return [(item.path, item.category, item.meaning) for item in report.items if item.category != "success"]


class SendScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Send the browser's selection to a node (C-STORE over one association), with progress and per-instance
    results; Escape cancels between instances."""

    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel / close", id="send_close")]

    def __init__(self, files: list[dict[str, Any]], description: str, nodes: Nodes) -> None:
        super().__init__()
        self.files = files
        self.description = description
        self.nodes = nodes
        self.cancel = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="send-dialog"):
            yield Label(f"Send {self.description} ({counted(len(self.files), 'instance')}) to:")
            yield DataTable(id="send-nodes", cursor_type="row")
            yield ProgressBar(id="send-progress", show_eta=False)
            yield Static("Enter sends to the highlighted node.", id="send-summary")
            yield DataTable(id="send-failures", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#send-nodes", DataTable)
        table.add_columns("Name", "Address")
        for name, node in sorted(self.nodes.remotes.items()):
            table.add_row(name, node.address, key=name)
        if not self.nodes.remotes:
            self.query_one("#send-summary", Static).update("No node yet: add one in the network screen (n, then a).")
        self.query_one("#send-failures", DataTable).display = False
        table.focus()

    @on(DataTable.RowSelected, "#send-nodes")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if not self.running:
            self.running = True
            self.cancel.clear()  # a send cancelled before does not cancel this one
            node = self.nodes.remotes[event.row_key.value]
            self.query_one("#send-summary", Static).update(f"Sending to {escape(node.address)} …  Escape cancels")
            self._send(node)

    @work(thread=True, exclusive=True, group="send", exit_on_error=False)
    def _send(self, node: RemoteNode) -> None:
        from ...core.net.send import send

        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is quitting: the send stops before the next instance
                self.cancel.set()
            self.post_message(Progress(done, total))

        try:
            if node.web and not node.dimse:  # a DICOMweb-only node: STOW-RS, the same report
                from ...core.net.web_stow import stow

                report = stow(node, self.files, progress, self.cancel)
            else:
                report = send(self.files, node, self.nodes.local, progress, cancel=self.cancel)
        except (NetworkError, NodeError) as exc:  # NodeError: a secret file or variable cannot be read
            self.post_message(Stopped(f"✗ {exc}"))
            return
        self.post_message(Sent(node.address, report))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#send-progress", ProgressBar).update(total=message.total, progress=message.done)

    @on(Sent)
    def _sent(self, message: Sent) -> None:
        self._done(send_text(message.report), send_problems(message.report))

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self._done(message.text, [])

    def _done(self, text: str, problems: list[tuple[str, str, str]]) -> None:
        self.running = False
        self.query_one("#send-summary", Static).update(text + "\nEscape closes.")
        if problems:
            table = self.query_one("#send-failures", DataTable)
            table.add_columns("File", "Result", "Status")
            table.add_rows(problems)
            table.display = True

    def worker_failed(self, _worker) -> None:
        self._done("The send failed (see the message).", [])  # Escape closes again

    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
        else:
            self.dismiss(None)
