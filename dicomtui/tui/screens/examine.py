"""Examine (advanced): every plugin's loadables for the selection; the user toggles and loads."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from ...core.examine.loadable import Loadable

CHECK = {True: Text("[x]", style="bold $success"), False: "[ ]"}


class ExamineScreen(Screen):
    BINDINGS = [
        Binding("space", "toggle", "Toggle", id="examine_toggle", tooltip="Select or unselect the loadable"),
        Binding("enter,l", "load", "Load selected", id="examine_load", priority=True),
        Binding("escape", "back", "Back", id="examine_back"),
    ]

    def __init__(self, loadables: list[Loadable], series_labels: dict[str, str]) -> None:
        super().__init__()
        self.loadables = loadables
        self.series_labels = series_labels

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Loadables: the default selection is marked; space toggles, Enter loads", classes="pane-title")
        yield DataTable(id="loadables", cursor_type="row", zebra_stripes=True)
        yield Static("", id="loadable-warnings")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#loadables", DataTable)
        table.add_column("Load", key="selected")
        table.add_columns("Series", "Name", "Plugin", "Confidence", "Images", "Warnings")
        for n, item in enumerate(self.loadables):
            table.add_row(CHECK[item.selected], self.series_labels.get(item.series_uid, item.series_uid),
                          item.name, item.plugin, f"{item.confidence:.2f}", str(len(item.instances)),
                          str(len(item.warnings)) if item.warnings else "", key=str(n))
        table.focus()
        self._show_warnings(0)

    @on(DataTable.RowHighlighted, "#loadables")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_warnings(event.cursor_row)

    def _show_warnings(self, row: int) -> None:
        text = ""
        if 0 <= row < len(self.loadables):
            item = self.loadables[row]
            text = "\n".join(f"⚠ {w}" for w in item.warnings) or "No warnings."
        self.query_one("#loadable-warnings", Static).update(text)

    def action_toggle(self) -> None:
        table = self.query_one("#loadables", DataTable)
        row = table.cursor_row
        if 0 <= row < len(self.loadables):
            item = self.loadables[row]
            item.selected = not item.selected
            table.update_cell(str(row), "selected", CHECK[item.selected])

    def action_load(self) -> None:
        chosen = [item for item in self.loadables if item.selected]
        if chosen:
            self.app.load_loadables(chosen)

    def action_back(self) -> None:
        self.app.pop_screen()
