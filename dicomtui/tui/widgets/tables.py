"""A DataTable with marks: space toggles the row under the cursor, shift+up/down marks a range."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

MARK = Text("●", style="bold $accent")
MARK_COLUMN = "mark"


class MarkTable(DataTable):
    """Rows keyed by database id; ``marked`` holds the keys the user picked (in row order when read)."""

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark", id="mark", tooltip="Mark or unmark the row under the cursor"),
        Binding("shift+down", "extend(1)", "Mark down", show=False, id="mark_down"),
        Binding("shift+up", "extend(-1)", "Mark up", show=False, id="mark_up"),
        Binding("home", "scroll_top", "First row", show=False, id="first_row"),
        Binding("end", "scroll_bottom", "Last row", show=False, id="last_row"),
        Binding("ctrl+a", "mark_all", "Mark all", show=False, id="mark_all", tooltip="Mark every row (again: none)"),
    ]

    class MarksChanged(Message):
        def __init__(self, table: MarkTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> MarkTable:
            return self.table

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.columns_spec = list(columns)  # (label, row dict key)
        self.marked: set[str] = set()
        self.rows_by_key: dict[str, dict[str, Any]] = {}

    def on_mount(self) -> None:
        self.add_column(" ", key=MARK_COLUMN, width=1)
        for label, key in self.columns_spec:
            self.add_column(label, key=key)

    # ---- filling ---------------------------------------------------------------------------------------------

    def fill(self, rows: list[dict[str, Any]], fmt: Callable[[str, Any], Any] | None = None) -> None:
        """Replace the rows, keeping the cursor on the same record (and marks on records still shown). Quietly:
        the cursor moves of a refill post no RowHighlighted (the caller fills the panes below itself)."""
        with self.prevent(DataTable.RowHighlighted):
            self._fill(rows, fmt)

    def _fill(self, rows: list[dict[str, Any]], fmt: Callable[[str, Any], Any] | None) -> None:
        before = self.cursor_key
        self.rows_by_key = {str(r["id"]): r for r in rows}
        self.marked &= set(self.rows_by_key)
        self.clear()
        fmt = fmt or _text
        for r in rows:
            key = str(r["id"])
            self.add_row(MARK if key in self.marked else "", *[fmt(k, r.get(k)) for _, k in self.columns_spec],
                         key=key)
        if before is not None and before in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(before), animate=False, scroll=True)

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except (RowDoesNotExist, Exception):
            return None

    def selection(self) -> list[int]:
        """The marked rows' ids in row order, or else the row under the cursor."""
        if self.marked:
            return [int(k) for k in self.rows_by_key if k in self.marked]
        key = self.cursor_key
        return [int(key)] if key is not None else []

    # ---- marking ---------------------------------------------------------------------------------------------

    def _set_mark(self, key: str, on: bool) -> None:
        (self.marked.add if on else self.marked.discard)(key)
        self.update_cell(key, MARK_COLUMN, MARK if on else "")

    def action_toggle_mark(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        self._set_mark(key, key not in self.marked)
        self.post_message(self.MarksChanged(self))

    def action_extend(self, step: int) -> None:
        key = self.cursor_key
        if key is None:
            return
        self._set_mark(key, True)
        self.move_cursor(row=self.cursor_row + step)
        key = self.cursor_key
        if key is not None:
            self._set_mark(key, True)
        self.post_message(self.MarksChanged(self))

    def action_mark_all(self) -> None:
        on = len(self.marked) < len(self.rows_by_key)
        for key in self.rows_by_key:
            self._set_mark(key, on)
        self.post_message(self.MarksChanged(self))


def _text(_key: str, value: Any) -> str:
    return "" if value is None else str(value)
