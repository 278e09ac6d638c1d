"""Examine (advanced): every plugin's loadables for the selection; the user toggles and loads."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Label, Static

from ...core.examine import Loadable, choose, referenced_by_line
from ...core.examine.confidence import SCALE, confidence_sentence, why_not_selected
from ..widgets.keys_footer import KeysFooter
from ..widgets.tables import MarkColumn, MarkTable

COLUMNS = [("Series", "series"), ("Name", "name"), ("Plugin", "plugin"), ("Confidence", "confidence"),
           ("Images", "images"), ("Warnings", "warnings")]
LOAD = MarkColumn("Load", "[x]", "[ ]")  # the table's marks are the loadables selected for loading


class ExamineScreen(Screen):
    BINDINGS = [
        Binding("space", "toggle", "Toggle", id="examine_toggle", tooltip="Select or unselect the loadable",
                priority=True),  # before the table's own space (Mark): the same toggle, under its own name
        Binding("enter,l", "load", "Load selected", id="examine_load", priority=True),
        Binding("escape", "back", "Back", id="examine_back"),
    ]

    def __init__(self, loadables: list[Loadable], series_labels: dict[str, str]) -> None:
        super().__init__()
        self.loadables = loadables
        self.series_labels = series_labels
        self.referenced_by: dict[str, str] = {}  # series UID → "referenced by 2 segmentations" (stored refs)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Loadables: the default selection is marked; space toggles, Enter loads", classes="pane-title")
        yield Static(SCALE, id="confidence-scale")
        yield MarkTable(COLUMNS, mark=LOAD, id="loadables")
        yield Static("", id="loadable-warnings", markup=False)  # names and warnings hold text from files
        yield KeysFooter()

    def on_mount(self) -> None:
        db = getattr(self.app, "db", None)
        if db is not None:  # one indexed query per series (only rows that refer to something are read)
            self.referenced_by = {uid: referenced_by_line(db, uid) for uid in {i.series_uid for i in self.loadables}}
        table = self.query_one("#loadables", MarkTable)
        table.fill([{"id": n, "series": self.series_labels.get(item.series_uid, item.series_uid), "name": item.name,
                     "plugin": item.plugin, "confidence": f"{item.confidence:.2f}", "images": len(item.instances),
                     "warnings": len(item.warnings) if item.warnings else ""}
                    for n, item in enumerate(self.loadables)])
        table.marked = {str(n) for n, item in enumerate(self.loadables) if item.selected}
        table.focus()
        self._show_warnings(0)

    @on(MarkTable.Highlighted, "#loadables")
    def _highlighted(self, event: MarkTable.Highlighted) -> None:
        self._show_warnings(event.table.cursor_row)

    def _show_warnings(self, row: int) -> None:
        """The highlighted loadable: its confidence in words, why it is (not) loaded by default, its warnings."""
        text = ""
        if 0 <= row < len(self.loadables):
            item = self.loadables[row]
            warnings = "\n".join(f"⚠ {w}" for w in item.warnings) or "No warnings."
            text = (f"Confidence {confidence_sentence(item.confidence)}. {why_not_selected(item, self.loadables)}"
                    f"\n{warnings}")
            if line := self.referenced_by.get(item.series_uid):
                text += f"\nThis series is {line}."
        self.query_one("#loadable-warnings", Static).update(text)

    def action_toggle(self) -> None:
        self.query_one("#loadables", MarkTable).action_toggle_mark()

    def action_load(self) -> None:
        marked = self.query_one("#loadables", MarkTable).marked
        for n, item in enumerate(self.loadables):
            item.selected = str(n) in marked
        chosen = choose(self.loadables)
        if chosen:
            self.app.load_loadables(chosen)

    def action_back(self) -> None:
        self.app.pop_screen()
