"""Help: every binding of every screen, with its id (what the key map in settings remaps)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


def binding_rows(groups: list[tuple[str, list[Binding]]],
                 keymap: dict[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """(screen, keys, what it does, id) for each binding, keys as Textual names them, remapped ones as remapped."""
    keymap = keymap or {}
    rows = []
    for screen, bindings in groups:
        for b in bindings:
            if isinstance(b, Binding):
                keys = keymap.get(b.id, b.key) if b.id else b.key
                rows.append((screen, keys.replace(",", " "), b.tooltip or b.description or b.action, b.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help_close")]

    def __init__(self, groups: list[tuple[str, list[Binding]]], keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label("Keys (remap any of them in settings by its id; ctrl+p opens the command palette)",
                        classes="pane-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_columns("Screen", "Keys", "Does", "Id")
        table.add_rows(binding_rows(self.groups, self.keymap))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
