"""A DataTable with marks (space toggles the row under the cursor, shift+up/down marks a range) that shows long
results a page at a time: Textual measures and lays out every row it holds, about 50 µs a row, so 2,000
patients would cost a tenth of a second per keystroke. More rows are added as the cursor nears the end."""

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
PAGE = 200  # rows added at a time
NEAR_END = 20  # the next page comes when the cursor is this close to the last row shown


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
        self.rows_by_key: dict[str, dict[str, Any]] = {}  # every row of the result, shown or not yet
        self._rows: list[dict[str, Any]] = []
        self._fmt: Callable[[str, Any], Any] = _text
        self._adding = False  # add_row moves the cursor too: the watcher must not add rows meanwhile

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
        self._rows = []  # while clearing, the cursor watcher has nothing to add
        self.clear()
        self._rows, self._fmt = rows, fmt or _text
        self.rows_by_key = {str(r["id"]): r for r in rows}
        self.marked &= set(self.rows_by_key)
        keys = list(self.rows_by_key)
        at = keys.index(before) if before in self.rows_by_key else -1
        self._show_up_to(max(PAGE, at + PAGE))
        if at >= 0:
            self.move_cursor(row=at, animate=False, scroll=True)

    def _show_up_to(self, count: int) -> None:
        """Add rows until ``count`` are shown (or all of them)."""
        fmt, spec = self._fmt, self.columns_spec
        self._adding = True
        try:
            for r in self._rows[self.row_count:count]:
                key = str(r["id"])
                self.add_row(MARK if key in self.marked else "", *[fmt(k, r.get(k)) for _, k in spec], key=key)
        finally:
            self._adding = False

    @property
    def all_shown(self) -> bool:
        return self.row_count >= len(self._rows)

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if not self._adding and new.row >= self.row_count - NEAR_END and not self.all_shown:
            self._show_up_to(self.row_count + PAGE)

    def action_scroll_bottom(self) -> None:
        self._show_up_to(len(self._rows))
        super().action_scroll_bottom()

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
        if self._row_locations.get(key) is not None:  # a row not shown yet gets its mark when it is added
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
