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
from ...core.plural import counted
from .confirm import ConfirmScreen
from .forms import FIELD_KEYS
from .import_ import DirectorySuggester


def not_a_database(path: Path) -> str | None:
    """Why ``path`` can neither be opened nor become a database (a file, a folder holding other things), or None
    when it can be created (a new or empty folder)."""
    if not path.exists():
        return None
    if not path.is_dir():
        return f"{path} is a file, not a database folder."
    entries = sum(1 for _ in path.iterdir())
    if entries:
        return (f"{path} holds {counted(entries, 'entry')} and is not a dicomtui database: choose a database"
                " folder, or a new or empty folder for a new one.")
    return None


class DatabasesScreen(ModalScreen[Path | None]):
    """Dismissed with the folder to open (the app opens or creates it), or None."""

    BINDINGS = [Binding("escape", "close", "Close", id="databases_close"), *FIELD_KEYS]

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
            yield Label("Folder to open (a new or empty folder becomes a new database):")
            yield Input(placeholder="folder", id="database-path", suggester=DirectorySuggester())
            with Horizontal(classes="buttons"):
                yield Button("Open / create", variant="primary", id="database-open")
                yield Button("Cancel", id="database-cancel")
            yield Static("", id="database-error", markup=False)  # paths may hold [ ]

    def on_mount(self) -> None:
        if self.recent:
            options = self.query_one("#recent-list", OptionList)
            options.highlighted = 0
            options.focus()
        else:
            self.query_one("#database-path", Input).focus()

    @on(OptionList.OptionSelected, "#recent-list")
    def _recent(self, event: OptionList.OptionSelected) -> None:
        self.choose(Path(event.option.id))

    @on(Input.Submitted, "#database-path")
    @on(Button.Pressed, "#database-open")
    def _open(self) -> None:
        text = self.query_one("#database-path", Input).value.strip()
        if not text:
            self.say("Nothing opened: type the path of a database folder (→ completes it), or pick a recent one.")
            return
        self.choose(Path(text).expanduser().absolute())

    def say(self, text: str) -> None:
        self.query_one("#database-error", Static).update(text)

    def choose(self, path: Path) -> None:
        """Open ``path`` when it is a database; a new or empty folder after asking (the app creates the database
        there); anything else is said, not opened."""
        if (path / DB_FILE).is_file():
            self.dismiss(path)
            return
        why_not = not_a_database(path)
        if why_not:
            self.say(why_not)
            return
        details = "The folder is empty." if path.exists() else "The folder will be created."

        def answer(yes: bool | None) -> None:
            if yes:
                self.dismiss(path)
            else:
                self.say(f"Nothing created: {path} is not a database.")

        self.app.push_screen(ConfirmScreen(f"{path} is not a database yet. Create a new database there?", details,
                                           yes="Create", no="Cancel"), answer)

    @on(Button.Pressed, "#database-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
