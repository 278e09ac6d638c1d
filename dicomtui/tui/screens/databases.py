"""Databases: open another database folder, create a new one, or pick a recent one."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...core.database import DB_FILE
from .import_ import DirectorySuggester


class DatabasesScreen(ModalScreen[Path | None]):
    """Dismissed with the folder to open (the app opens or creates it), or None."""

    BINDINGS = [Binding("escape", "close", "Close", id="databases_close")]

    def __init__(self, current: Path, recent: list[Path]) -> None:
        super().__init__()
        self.current = current
        self.recent = [p for p in recent if p != current]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Current database: {self.current}")
            yield Label("Recent databases (Enter opens):")
            yield OptionList(*[Option(f"{p}" + ("" if (p / DB_FILE).exists() else "  (missing)"),
                                      id=str(p)) for p in self.recent] or [Option("(none yet)", disabled=True)],
                             id="recent-list")
            yield Label("Open or create a database folder (a new or empty folder becomes a new database):")
            yield Input(placeholder="folder", id="database-path", suggester=DirectorySuggester())
            with Horizontal(classes="buttons"):
                yield Button("Open / create", variant="primary", id="database-open")
                yield Button("Cancel", id="database-cancel")
            yield Static("", id="database-error")

    def on_mount(self) -> None:
        if self.recent:
            options = self.query_one("#recent-list", OptionList)
            options.highlighted = 0
            options.focus()
        else:
            self.query_one("#database-path", Input).focus()

    @on(OptionList.OptionSelected, "#recent-list")
    def _recent(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id))

    @on(Input.Submitted, "#database-path")
    @on(Button.Pressed, "#database-open")
    def _open(self) -> None:
        text = self.query_one("#database-path", Input).value.strip()
        if text:
            self.dismiss(Path(text).expanduser())

    @on(Button.Pressed, "#database-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
