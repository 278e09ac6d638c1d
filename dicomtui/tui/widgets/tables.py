"""The fast tables (browser, query results, examine, metadata): rows keyed by id, marks (space toggles the row
under the cursor, shift+up/down marks a range, ctrl+a all), the cursor kept on the same record across refills.

Drawn line by line (Textual's line API): only the rows on screen are rendered, and a refill measures each cell
once. Textual's DataTable measured, laid out and rendered every row it held on each refill: with 2,000 patients a
filter keystroke took a third of a second in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...core.text import has_control, printable

MARK = "●"
MAX_WIDTH = 40  # a column is never wider (longer values are cut with …), unless the table says otherwise
MIN_SQUEEZED = 16  # a fitted column is not squeezed below its heading or this many cells (its values if fewer):
#                   a description keeps ~16 characters; a trailing count column is hidden before it is cut more


def fit_widths(natural: Sequence[int], least: Sequence[int], room: int) -> list[int]:
    """Column widths that fit ``room`` cells: ``natural`` when they fit; else the widest columns squeezed first,
    none below its ``least``; when even those do not fit, the last columns hidden (width 0) whole, so that no
    column is ever shown as a stump of one or two characters. The first column is always kept (cut to ``room``
    when it has to be)."""
    if not natural:
        return []
    for n in range(len(natural), 1, -1):
        if sum(least[:n]) > room - 2 * (n - 1):
            continue
        widths = list(natural[:n])
        budget = room - 2 * (n - 1)  # less the gaps between the columns shown
        while sum(widths) > budget:
            squeezable = [c for c in range(n) if widths[c] > least[c]]
            if not squeezable:
                break
            widest = max(squeezable, key=lambda c: widths[c])
            widths[widest] -= 1
        return widths + [0] * (len(natural) - n)
    return [max(min(natural[0], room), 1)] + [0] * (len(natural) - 1)


@dataclass(frozen=True)
class MarkColumn:
    """How the first column shows marks: its heading, and the text of a marked and of an unmarked row."""

    heading: str = ""
    on: str = MARK
    off: str = ""


class MarkTable(ScrollView, can_focus=True):
    """A table of result rows (dicts with an "id"); ``marked`` holds the keys the user picked. ``mark=None``: a
    list without marks (no mark column; space, shift+arrows and ctrl+a are left to the screen). ``max_width``:
    the widest a column gets (None: as wide as its longest value; the table scrolls sideways). ``fit``: the
    columns fit the table's width (``fit_widths``: the widest squeezed, trailing ones hidden whole) instead of
    scrolling sideways."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="row_up"),
        Binding("down", "cursor(1)", "Down", show=False, id="row_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="page_down"),
        Binding("home", "jump(0)", "First row", show=False, id="first_row"),
        Binding("end", "jump(-1)", "Last row", show=False, id="last_row"),
        Binding("enter", "select", "Open", show=False, id="row_select"),
        Binding("space", "toggle_mark", "Mark", id="mark", tooltip="Mark or unmark the row under the cursor"),
        Binding("shift+down", "extend(1)", "Mark down", show=False, id="mark_down"),
        Binding("shift+up", "extend(-1)", "Mark up", show=False, id="mark_up"),
        Binding("ctrl+a", "mark_all", "Mark all", show=False, id="mark_all", tooltip="Mark every row (again: none)"),
    ]
    COMPONENT_CLASSES = {"marktable--header", "marktable--cursor", "marktable--even", "marktable--mark"}
    DEFAULT_CSS = """
    MarkTable {
        background: $surface;
        color: $foreground;
        & > .marktable--header { text-style: bold; background: $panel; color: $foreground; }
        & > .marktable--even { background: $surface-lighten-1 50%; }
        & > .marktable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .marktable--mark { color: $accent; text-style: bold; }
        &:focus > .marktable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class Highlighted(Message):
        """The cursor moved to another row (not sent for the moves of a refill)."""

        def __init__(self, table: MarkTable, key: str | None) -> None:
            super().__init__()
            self.table, self.key = table, key

        @property
        def control(self) -> MarkTable:
            return self.table

    class Selected(Highlighted):
        """Enter on a row."""

    class MarksChanged(Message):
        def __init__(self, table: MarkTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> MarkTable:
            return self.table

    def __init__(self, columns: Sequence[tuple[str, str]], mark: MarkColumn | None = MarkColumn(),
                 max_width: int | None = MAX_WIDTH, fit: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns_spec = list(columns)  # (label, row dict key)
        self.mark = mark
        self.max_width = max_width
        self.fit = fit
        self._mark_width = max(cell_len(mark.heading), cell_len(mark.on), cell_len(mark.off), 1) if mark else 0
        self.marked: set[str] = set()
        self.rows_by_key: dict[str, dict[str, Any]] = {}
        self._keys: list[str] = []
        self._cells: list[list[str]] = []
        self._widths = [cell_len(label) for label, _ in self.columns_spec]
        self._natural = list(self._widths)  # before fitting: what each column wants
        self._cursor = 0

    # ---- data ------------------------------------------------------------------------------------------------

    def fill(self, rows: list[dict[str, Any]], fmt: Callable[[str, Any], Any] | None = None) -> None:
        """Replace the rows, keeping the cursor on the same record (and marks on records still there)."""
        before = self.cursor_key
        fmt = fmt or _text
        self._keys = [str(r["id"]) for r in rows]
        self.rows_by_key = dict(zip(self._keys, rows, strict=True))
        self._cells = [[str(fmt(key, r.get(key))) for _, key in self.columns_spec] for r in rows]
        if has_control(" ".join(" ".join(row) for row in self._cells)):  # one search per fill: most have none
            self._cells = [[printable(cell) for cell in row] for row in self._cells]  # never sent raw to a terminal
        widest = self.max_width or 10**6
        self._natural = [min(max([cell_len(label)] + [cell_len(row[c]) for row in self._cells]), widest)
                         for c, (label, _) in enumerate(self.columns_spec)]
        self.marked &= set(self.rows_by_key)
        self._cursor = self._keys.index(before) if before in self.rows_by_key else 0
        self._layout_columns()
        self._scroll_to_cursor()
        self.refresh()

    def _row_width(self, widths: Sequence[int]) -> int:
        """Cells of a row with these column widths: a leading space, the mark, two cells between columns."""
        shown = [w for w in widths if w]
        return 1 + (self._mark_width + 2 * len(shown) if self.mark else 2 * max(len(shown) - 1, 0)) + sum(shown)

    @property
    def natural_width(self) -> int:
        """The cells a row wants, every column as wide as its values (up to ``max_width``)."""
        return self._row_width(self._natural)

    def fitted_widths(self, room: int) -> list[int]:
        """The column widths in a row of ``room`` cells (``fit_widths``)."""
        fixed = 1 + (self._mark_width + 2 if self.mark else 0)  # fit_widths counts the gaps between columns
        least = [min(w, max(cell_len(label), MIN_SQUEEZED))
                 for w, (label, _) in zip(self._natural, self.columns_spec, strict=True)]
        return fit_widths(self._natural, least, room - fixed)

    def fitted_width(self, room: int) -> int:
        """The cells a row uses in a table ``room`` cells wide (less when trailing columns are hidden)."""
        return self._row_width(self.fitted_widths(room))

    def _layout_columns(self) -> None:
        room = self.scrollable_content_region.width
        self._widths = self.fitted_widths(room) if self.fit and room > 0 else list(self._natural)
        self.virtual_size = Size(self._row_width(self._widths), len(self._keys) + 1)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self._cursor] if self._keys else None

    def get_row_at(self, index: int) -> list[str]:
        """The shown texts of a row: the mark (when the table has marks), then the columns."""
        if self.mark is None:
            return list(self._cells[index])
        return [self.mark.on if self._keys[index] in self.marked else self.mark.off, *self._cells[index]]

    def selection(self) -> list[int]:
        """The marked rows' ids in row order, or else the row under the cursor."""
        if self.marked:
            return [int(k) for k in self._keys if k in self.marked]
        key = self.cursor_key
        return [int(key)] if key is not None else []

    # ---- cursor ----------------------------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        row = min(max(row, 0), len(self._keys) - 1)
        if row != self._cursor:
            self._cursor = row
            self._scroll_to_cursor()
            self.refresh()
            self.post_message(self.Highlighted(self, self.cursor_key))

    def _scroll_to_cursor(self) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)  # less the header line
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self._cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._cursor + direction * max(self.scrollable_content_region.height - 2, 1))

    def action_jump(self, where: int) -> None:
        self.move_cursor(0 if where == 0 else len(self._keys) - 1)

    def action_select(self) -> None:
        if self._keys:
            self.post_message(self.Selected(self, self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(int(self.scroll_y) + offset.y - 1)

    # ---- marks -----------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # without marks the key goes on to the screen's bindings
        return not (self.mark is None and action in ("toggle_mark", "extend", "mark_all"))

    def action_toggle_mark(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.marked ^= {key}
            self.refresh()
            self.post_message(self.MarksChanged(self))

    def action_extend(self, step: int) -> None:
        if self._keys:
            self.marked.add(self._keys[self._cursor])
            self.move_cursor(self._cursor + step)
            self.marked.add(self._keys[self._cursor])
            self.refresh()
            self.post_message(self.MarksChanged(self))

    def action_mark_all(self) -> None:
        self.marked = set() if len(self.marked) == len(self._keys) else set(self._keys)
        self.refresh()
        self.post_message(self.MarksChanged(self))

    # ---- drawing ---------------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("marktable--header")
            texts = [label for label, _ in self.columns_spec]
            mark, marked = (self.mark.heading if self.mark else ""), False
        else:
            row = int(self.scroll_y) + y - 1
            if row >= len(self._keys):
                return Strip.blank(width, base)
            style = base
            if row % 2:
                style += self.get_component_rich_style("marktable--even")
            if row == self._cursor:
                style += self.get_component_rich_style("marktable--cursor")
            texts = self._cells[row]
            marked = self._keys[row] in self.marked
            mark = (self.mark.on if marked else self.mark.off) if self.mark else ""
        # the mark's colour only: on the cursor row the mark keeps the cursor's background
        mark_style = style + self.get_component_rich_style("marktable--mark", partial=True) if marked else style
        segments = [Segment(" ", style)]
        if self.mark is not None:
            segments.append(Segment(_fit(mark, self._mark_width), mark_style))
        for n, (text, w) in enumerate(zip(texts, self._widths, strict=True)):
            if not w:
                continue  # hidden by fit: too narrow a table
            gap = "  " if n or self.mark is not None else ""  # without marks, as a DataTable: " a  b  c"
            segments.append(Segment(gap + _fit(text, w), style))
        strip = Strip(segments).crop(int(self.scroll_x), int(self.scroll_x) + width)
        return strip.extend_cell_length(width, style).apply_style(Style())

    def on_resize(self, _event: events.Resize) -> None:
        if self.fit:
            self._layout_columns()
        self._scroll_to_cursor()


def _fit(text: str, width: int) -> str:
    """``text`` padded or cut (with …) to ``width`` cells."""
    length = cell_len(text)
    if length <= width:
        return text + " " * (width - length)
    while cell_len(text) > width - 1:
        text = text[:-1]
    return text + "…" + " " * (width - 1 - cell_len(text))


def _text(_key: str, value: Any) -> str:
    return "" if value is None else str(value)
