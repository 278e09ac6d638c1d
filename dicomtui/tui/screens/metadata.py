"""Metadata: the tags of a series' files, a filter (substring or ``re:``), sequences that fold, file stepping."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from ...core import metadata
from ...core.text import printable
from ..widgets.keys_footer import KeysFooter
from ..widgets.tables import MarkTable

COLUMNS = [("Tag", "tag"), ("Keyword", "keyword"), ("VR", "vr"), ("Value", "value")]


class MetadataScreen(Screen):
    BINDINGS = [
        Binding("n,right_square_bracket", "file(1)", "Next file", id="metadata_next"),
        Binding("p,left_square_bracket", "file(-1)", "Previous file", id="metadata_previous"),
        Binding("enter", "fold", "Fold/unfold", id="metadata_fold", tooltip="Fold or unfold the sequence"),
        # priority: the focus moves before the keys typed right after / are forwarded (as in the browser)
        Binding("slash", "search", "Filter", id="metadata_filter", priority=True),
        # the filter box is not a stop of Tab: Tab (from the box too) is the table, one-letter keys stay commands
        Binding("tab,shift+tab", "table", "Table", show=False, id="metadata_table", priority=True,
                tooltip="The tag table (leaves the filter box)"),
        Binding("y", "copy", "Copy", id="metadata_copy", tooltip="Copy the shown tags (OSC 52 clipboard)"),
        Binding("escape", "back", "Back", id="metadata_back"),
    ]

    def __init__(self, title: str, files: list[Path]) -> None:
        super().__init__()
        self.title_text = title
        self.files = files
        self.index = 0
        self.rows: list[metadata.TagRow] = []
        self.shown: list[metadata.TagRow] = []
        self.folded: set[tuple] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="metadata-file", markup=False)  # a series label and a path: values from files
        yield Input(placeholder="filter: text, or re:regex", id="metadata-filter")
        yield MarkTable(COLUMNS, mark=None, max_width=None, id="metadata-table")  # values are shown whole
        yield Static("", id="metadata-status")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.read_file()
        self.query_one("#metadata-table", MarkTable).focus()

    def read_file(self) -> None:
        path = self.files[self.index]
        self.query_one("#metadata-file", Static).update(
            printable(f"{self.title_text}  ·  file {self.index + 1}/{len(self.files)}: {path}"))
        try:
            self.rows = metadata.tag_rows(path)
            error = ""
        except (metadata.MetadataError, OSError) as exc:
            self.rows, error = [], str(exc)
        self.show_rows(error)

    def show_rows(self, error: str = "") -> None:
        text = self.query_one("#metadata-filter", Input).value.strip()
        try:
            rows = metadata.filter_rows(self.rows, text) if text else self.rows
        except ValueError as exc:
            rows, error = self.rows, str(exc)
        if not text:  # folding applies to the whole tree, not to filter results
            rows = [r for r in rows if not any(r.path[:len(f)] == f and len(r.path) > len(f) for f in self.folded)]
        self.shown = rows
        table = self.query_one("#metadata-table", MarkTable)
        table.fill([{"id": n, "tag": "  " * row.depth + row.tag, "vr": row.vr, "value": row.value,
                     "keyword": (("▸ " if row.path in self.folded else "▾ ") if row.is_sequence else "") + row.keyword}
                    for n, row in enumerate(rows)])
        table.move_cursor(0)  # a new file or filter starts at the top
        self.query_one("#metadata-status", Static).update(error or f"{len(rows)} of {len(self.rows)} elements")

    @on(Input.Changed, "#metadata-filter")
    def _filter(self) -> None:
        self.show_rows()

    @on(Input.Submitted, "#metadata-filter")
    def _filter_done(self) -> None:
        self.query_one("#metadata-table", MarkTable).focus()

    @on(MarkTable.Selected, "#metadata-table")
    def _selected(self) -> None:
        self.action_fold()  # Enter on the table (the table takes Enter before the screen's binding)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (isinstance(self.focused, Input) and action in ("file", "fold", "copy", "search"))

    def action_file(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.files)
        self.read_file()

    def action_fold(self) -> None:
        table = self.query_one("#metadata-table", MarkTable)
        if 0 <= table.cursor_row < len(self.shown):
            row = self.shown[table.cursor_row]
            if row.is_sequence:
                self.folded ^= {row.path}
                cursor = table.cursor_row
                self.show_rows()
                table.move_cursor(row=cursor)

    def action_search(self) -> None:
        self.query_one("#metadata-filter", Input).focus()

    def action_table(self) -> None:
        self.query_one("#metadata-table", MarkTable).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(metadata.rows_as_text(self.shown))
        self.notify(f"{len(self.shown)} lines copied (where the terminal allows OSC 52)")

    def action_back(self) -> None:
        if isinstance(self.focused, Input):  # Escape in the filter box goes back to the table first
            self.query_one("#metadata-table", MarkTable).focus()
        else:
            self.app.pop_screen()
