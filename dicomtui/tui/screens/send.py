"""Send the browser's selection to a node: C-STORE over one association (STOW-RS to a DICOMweb node, or to a node
with both after ``w``), de-identified when asked (:mod:`.deid_options`), with progress, per-instance results, and
Escape to cancel between instances."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, ProgressBar, Static
from textual.worker import get_current_worker

from ...core.errors import DicomtuiError, NetworkError, NodeError
from ...core.net.nodes import Nodes, RemoteNode
from ...core.plural import counted
from ..messages import Progress, Sent, Stopped
from .confirm import ShowsWorkerErrors
from .deid_options import DeidPanel

if TYPE_CHECKING:  # the operation is imported when first used: time a start does not need
    from ...core.net.send import SendReport

CANCELLED = "Cancelled: the association was released; instances sent until then stay at the peer."


def send_text(report: SendReport) -> str:
    """The send's outcome as the dialog shows it: the peer and the counts, why it stopped early and what was
    recovered from (the CLI's ``summary()`` lists the instances instead; the dialog has a table for those)."""
    if report.cancelled:
        return CANCELLED
    counts = report.counts
    left_out = f", {len(report.left_out)} left out (burned-in annotation, not ticked)" if report.left_out else ""
    return (f"{report.node}: {counts['success']} sent, {counts['warning']} with warnings, {counts['failure']} failed"
            + left_out + (f". {report.error}" if report.error else "") + "".join(f"\n{note}" for note in report.notes))


def send_problems(report: SendReport) -> list[tuple[str, str, str]]:
    """The instances not stored successfully: (file, category, status in words), for the dialog's table."""
    return [(item.path, item.category, item.meaning) for item in report.items if item.category != "success"]


class SendScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Send the browser's selection to a node (C-STORE over one association), with progress and per-instance
    results; Escape cancels between instances."""

    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel / close", id="send_close"),
                Binding("w", "via", "DIMSE/web", id="send_via",
                        tooltip="For a node that speaks both: send over DICOMweb (STOW-RS) instead of DIMSE, or back")]

    def __init__(self, files: list[dict[str, Any]], description: str, nodes: Nodes,
                 db_folder: Path | None = None) -> None:
        super().__init__()
        self.files = files
        self.description = description
        self.nodes = nodes
        self.db_folder = db_folder  # where the de-identification mapping is kept
        self.cancel = threading.Event()
        self.running = False
        self.prefer_web = False  # a node with both a DIMSE address and a URL: sent to over STOW-RS (w)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="send-dialog"):
            yield Label(f"Send {self.description} ({counted(len(self.files), 'instance')}) to:")
            yield DataTable(id="send-nodes", cursor_type="row")
            yield DeidPanel(self.files, self.db_folder)
            yield ProgressBar(id="send-progress", show_eta=False)
            yield Static("Enter sends to the highlighted node.", id="send-summary")
            yield DataTable(id="send-failures", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#send-nodes", DataTable)
        table.add_columns("Name", "Address", "Via")
        self._fill()
        if not self.nodes.remotes:
            self.query_one("#send-summary", Static).update("No node yet: add one in the network screen (n, then a).")
        self.query_one("#send-failures", DataTable).display = False
        table.focus()

    def _fill(self) -> None:
        table = self.query_one("#send-nodes", DataTable)
        row = table.cursor_row
        table.clear()
        for name, node in sorted(self.nodes.remotes.items()):
            web = self.uses_web(node)
            table.add_row(name, node.url if web else node.address, "STOW-RS" if web else "C-STORE", key=name)
        if self.nodes.remotes:
            table.move_cursor(row=min(row, len(self.nodes.remotes) - 1))

    def uses_web(self, node: RemoteNode) -> bool:
        """Whether ``node`` is sent to over DICOMweb: its only protocol, or both and ``w`` chose DICOMweb (as the
        network screen asks it)."""
        return node.web and (self.prefer_web or not node.dimse)

    def action_via(self) -> None:
        if self.running:
            return
        self.prefer_web = not self.prefer_web
        self._fill()
        self.query_one("#send-summary", Static).update(
            "Nodes that speak both are sent to over " + ("DICOMweb (STOW-RS)" if self.prefer_web else
                                                         "DIMSE (C-STORE)") + "; w switches. Enter sends.")

    @on(DataTable.RowSelected, "#send-nodes")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if not self.running:
            node = self.nodes.remotes[event.row_key.value]
            try:
                deid = self.query_one(DeidPanel).deidentifier()
            except DicomtuiError as exc:  # the mapping cannot be read
                self.query_one("#send-summary", Static).update(f"✗ {escape(str(exc))}")
                return
            self.running = True
            self.cancel.clear()  # a send cancelled before does not cancel this one
            web = self.uses_web(node)
            where = escape(node.url if web else node.address)
            what = "de-identified copies " if deid else ""
            self.query_one("#send-summary", Static).update(f"Sending {what}to {where} …  Escape cancels")
            self._send(node, web, deid)

    @work(thread=True, exclusive=True, group="send", exit_on_error=False)
    def _send(self, node: RemoteNode, web: bool, deid: Any = None) -> None:
        from ...core.net.send import send

        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is quitting: the send stops before the next instance
                self.cancel.set()
            self.post_message(Progress(done, total))

        try:
            if web:  # STOW-RS, the same report
                from ...core.net.web_stow import stow

                report = stow(node, self.files, progress, self.cancel, transform=deid)
            else:
                report = send(self.files, node, self.nodes.local, progress, cancel=self.cancel, transform=deid)
        except (NetworkError, NodeError) as exc:  # NodeError: a secret file or variable cannot be read
            self.post_message(Stopped(f"✗ {exc}"))
            return
        finally:
            if deid is not None:
                deid.mapping.save()  # also after an error: what was sent uses it
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
