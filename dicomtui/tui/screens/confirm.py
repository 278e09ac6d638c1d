"""The dialogs: a yes/no question that returns a bool (Escape or n = no), a message to acknowledge, and the
message a failed worker puts up (a user error as its sentence, anything else as a bug with its traceback)."""

from __future__ import annotations

import traceback

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.worker import Worker, WorkerState

from ...core.errors import DicomtuiError
from ...core.text import printable


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
            yield Static(printable(self.question), classes="question", markup=False)  # names from files
            if self.details:
                yield Static(printable(self.details, multiline=True), classes="details", markup=False)
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
            yield Static(printable(self.title_text), classes="question", markup=False)
            # file names and tracebacks hold [ ] and values from files
            yield Static(printable(self.text, multiline=True), classes="details", markup=False)
            yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ShowsWorkerErrors:
    """Mixed into the app and the screens that run workers: a worker that fails puts up a message saying what
    went wrong (Textual's Worker.StateChanged does not bubble to the app)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)
            self.app.push_screen(error_message(event.worker.group or "work", event.worker.error))

    def worker_failed(self, worker: Worker) -> None:
        """Hook: reset what the screen shows while the worker ran."""


TRACEBACK_FRAMES = 6  # the innermost frames: where it broke, and the few calls that led there


def error_message(work: str, error: BaseException) -> MessageScreen:
    """The message for ``work`` (a worker group: "load", "import"…) that raised ``error``. A ``DicomtuiError``
    is a failure the user can act on: its sentence, as it is. Anything else is a bug in dicomtui: said so, with
    the exception's type, its message and the last frames of the traceback, to be reported."""
    if isinstance(error, DicomtuiError):
        return MessageScreen(f"{work.capitalize()} failed", str(error))
    frames = traceback.extract_tb(error.__traceback__)[-TRACEBACK_FRAMES:]
    where = "".join(traceback.format_list(frames)).rstrip()
    return MessageScreen(f"{work.capitalize()} failed: this is a bug in dicomtui",
                         f"{type(error).__name__}: {error}\n\n{where}\n\n"
                         "Please report it with these lines and what you did just before.")

