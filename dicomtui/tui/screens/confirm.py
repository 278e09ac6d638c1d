"""A yes/no question as a modal that returns a bool (Escape or n = no)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.worker import Worker, WorkerState


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, question: str, details: str = "", yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.details, self.yes, self.no = question, details, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question")
            if self.details:
                yield Static(self.details, classes="details")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class MessageScreen(ModalScreen[None]):
    """A message the user acknowledges (an error with what to do about it)."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="message_close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="question")
            yield Static(self.text, classes="details")
            yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ShowsWorkerErrors:
    """Mixed into screens that run workers: a worker that fails puts up a message saying what went wrong
    (Textual's Worker.StateChanged does not bubble to the app)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.worker_failed(event.worker)
            self.app.push_screen(MessageScreen(f"{(event.worker.group or 'work').capitalize()} failed",
                                               f"{type(error).__name__}: {error}"))

    def worker_failed(self, worker: Worker) -> None:
        """Hook: reset what the screen shows while the worker ran."""
