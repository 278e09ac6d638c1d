"""The start screen: patients, studies and series side by side, each with a filter box.

Keys move between the tables, never into a filter box: Tab / shift+Tab go to the next / previous table, 1 2 3 to
the patients, studies or series table, and only / opens the filter box of the current pane (Enter or Escape leave
it). The focused pane is always marked: its border and its title in the accent colour, the others dim.

Selecting patients (marked rows, or else the row under the cursor) narrows the studies; selecting studies narrows
the series. The browser polls the database's ``data_version`` every few seconds, so data that the listener or
another process adds appears without a keystroke, and the cursors stay on the records they were on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Static

from ...core.database.filters import FILTER_HELP
from ...core.levels import BROWSER_COLUMNS, HIERARCHY, Item, Level, browser_columns, column, format_value
from ...core.plural import counted
from ...core.selection import describe, marked
from ..widgets.keys_footer import KeysFooter
from ..widgets.tables import MarkTable

POLL_S = 2.0
LEVELS = HIERARCHY[:3]  # the panes: patients, studies, series


def title(level: Level) -> str:
    """A pane's title: "Patients", "Studies", "Series"."""
    return level.plural.capitalize()


def pane_title(level: Level, count: int | None = None) -> str:
    """"1 Patients (2)": the key that focuses the pane, its title and its row count."""
    number = LEVELS.index(level) + 1
    return f"{number} {title(level)}" + ("" if count is None else f" ({count})")


def pane_widths(total: int, left: int, right: int, least: int = 24) -> int:
    """The patients pane's width of ``total`` cells when the patients table wants ``left`` cells and the wider of
    the studies and series tables ``right`` (borders included). Both fit: each gets what it wants and the spare
    cells in proportion. They do not: each gets a share in proportion to what it wants, neither side below
    ``least`` (or half the screen, when that is less)."""
    want = max(left + right, 1)
    if want <= total:
        return left + (total - want) * left // want
    share = total * left // want
    floor = min(least, left, total // 2)
    return max(min(share, total - min(least, total // 2)), floor)


def cell_format(level: Level) -> Callable[[str, Any], str]:
    """The text of a cell of ``level``'s pane (``MarkTable.fill``'s ``fmt``), by the level's column model: dates
    as YYYY-MM-DD, nothing for NULL. The columns are looked up once per pane, not once per cell."""
    columns = {key: column(level, key) for key in BROWSER_COLUMNS[level]}
    return lambda key, value: format_value(columns[key], value)


_FORMATS = {level: cell_format(level) for level in LEVELS}


class BrowserScreen(Screen):
    """Patient → study → series browser."""

    AUTO_FOCUS = "#patient-table"  # not Textual's default, the first focusable widget: that is a filter box

    BINDINGS = [
        Binding("enter", "load", "Load", id="load", tooltip="Load the selection with the default loadables",
                priority=True),
        Binding("e", "examine", "Examine", id="examine", tooltip="List every loadable of the selection"),
        Binding("i", "import", "Import", id="import", tooltip="Import a folder into this database"),
        Binding("d", "delete", "Delete", id="delete", tooltip="Delete the selection from the database"),
        Binding("t", "tags", "Tags", show=False, id="tags", tooltip="Edit the tags of the selection"),
        Binding("m", "metadata", "Metadata", id="metadata", tooltip="Show the tags of the selected series' files"),
        Binding("s", "send", "Send", id="send", tooltip="Send the selection to a DICOM node (C-STORE)"),
        Binding("x", "export", "Export", show=False, id="export",
                tooltip="Export the selection to a folder, a ZIP or a DICOMDIR file-set"),
        Binding("n", "network", "Network", id="network", tooltip="Nodes, echo, query/retrieve, the listener"),
        Binding("v", "viewer", "Viewer", show=False, id="viewer", tooltip="Back to the loaded volumes"),
        # priority: the app moves the focus before it forwards the next keys (typed or pasted right after /)
        Binding("slash", "search", "Search", id="search", tooltip="Type in the filter box of the current pane",
                priority=True),
        Binding("escape", "leave_search", "Tables", show=False, id="leave_search",
                tooltip="Leave the filter box for its table (the filter stays)"),
        Binding("r", "refresh", "Refresh", show=False, id="refresh", tooltip="Read the database again"),
        # priority: also from a filter box, Tab leaves it for the next table (one-letter commands stay commands)
        Binding("tab", "pane(1)", "Next table", show=False, id="pane_next", priority=True,
                tooltip="Patients → studies → series → patients"),
        Binding("shift+tab", "pane(-1)", "Previous table", show=False, id="pane_previous", priority=True),
        *[Binding(str(n), f"focus_pane({n - 1})", f"{title(level)} table", show=False, id=f"pane_{level}",
                  tooltip=f"Focus the {level.plural} table") for n, level in enumerate(LEVELS, 1)],
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            yield self._pane(Level.PATIENT)
            with Vertical(id="right"):
                yield self._pane(Level.STUDY)
                yield self._pane(Level.SERIES)
        yield Static(id="status")
        yield KeysFooter()

    def _pane(self, level: Level) -> Vertical:
        return Vertical(
            Label(pane_title(level), classes="pane-title", id=f"{level}-title"),
            Input(placeholder=f"/ filter {level.plural}: {FILTER_HELP}", id=f"{level}-filter", classes="filter"),
            MarkTable(browser_columns(level), fit=True, id=f"{level}-table"),
            id=f"{level}-pane", classes="pane",
        )

    def on_mount(self) -> None:
        self._share: tuple[int, int, int] | None = None  # (screen width, left, right) of the last share_width
        self._version: int | None = None  # data_version the panes show
        self._totals: tuple[int | None, dict[str, int]] = (None, {})  # (data_version, counts) of the status line
        if self.focused is None:  # a Tab typed before the screen mounted has already moved on from patients
            self.set_focus(self.table(Level.PATIENT))
        self.set_interval(POLL_S, self.poll)
        self.reload()

    # ---- helpers ---------------------------------------------------------------------------------------------

    def table(self, level: Level | str) -> MarkTable:
        return self.query_one(f"#{level}-table", MarkTable)

    @property
    def db(self):
        return self.app.db

    def focused_level(self) -> Level:
        focused = self.focused
        for level in LEVELS:
            if focused is not None and focused.id in (f"{level}-table", f"{level}-filter"):
                return level
        return Level.SERIES

    def selection(self, level: Level | None = None) -> list[Item]:
        """The items the user points at: marks, else the cursor row, in the focused pane."""
        level = level or self.focused_level()
        return marked(level, self.table(level).selection())

    def selected_series(self) -> list[int]:
        return self.db.series_ids(self.selection()) if self.db is not None else []

    # ---- reading the database --------------------------------------------------------------------------------

    def reload(self, start: Level | str = Level.PATIENT) -> None:
        """Fill the panes from ``start`` down, each narrowed by the selection above it."""
        if self.db is None:
            self.update_status()
            return
        for level in LEVELS[LEVELS.index(Level(start)):]:
            self._fill(level)
        self._version = self.db.data_version()
        self.update_status()

    def _fill(self, level: Level) -> None:
        text = self.query_one(f"#{level}-filter", Input).value.strip() or None
        if level is Level.PATIENT:
            rows = self.db.patients(text)
        elif level is Level.STUDY:
            rows = self.db.studies(self.table(Level.PATIENT).selection(), text)
        else:
            rows = self.db.series(self.table(Level.STUDY).selection(), text)
        self.table(level).fill(rows, _FORMATS[level])
        label = self.query_one(f"#{level}-title", Label)
        label.update(pane_title(level, len(rows)), layout=False)  # one fixed line: no layout pass
        self.share_width()

    def share_width(self) -> None:
        """Give the patients pane and the right column widths by their tables' content (``pane_widths``); the
        patients pane gives back the cells of columns it has to hide."""
        total = self.size.width or self.app.size.width
        patients_table = self.table(Level.PATIENT)
        frame = 2 + patients_table.styles.scrollbar_size_vertical  # the border, a scroll bar when it overflows
        left = patients_table.natural_width + frame
        right = max(self.table(Level.STUDY).natural_width, self.table(Level.SERIES).natural_width) + frame
        if self._share == (total, left, right):
            return
        self._share = (total, left, right)
        patients = pane_widths(total, left, right)
        patients = min(patients, patients_table.fitted_width(patients - frame) + frame)
        self.query_one("#patient-pane").styles.width = patients
        self.query_one("#right").styles.width = total - patients

    def on_resize(self) -> None:
        self.share_width()

    def poll(self) -> None:
        """Re-read when another connection committed (listener, CLI import, a worker of ours)."""
        if self.db is not None and self.db.data_version() != self._version:
            self.reload()

    def update_status(self) -> None:
        status = self.query_one("#status", Static)
        if self.db is None:
            status.update(f"{self.app.db_path}: {self.app.db_error or 'no database'}  ·  o: open another")
            return
        if self._totals[0] != self._version:  # counted again only when the data changed
            self._totals = (self._version, self.db.totals())
        stats = self._totals[1]
        marks = sum(len(self.table(level).marked) for level in LEVELS)
        status.update(  # counts first: a long database path is what gets cut on a narrow terminal; one fixed line
            ", ".join(counted(stats[level.plural], level.value) for level in HIERARCHY)
            + (f"  ·  {marks} marked" if marks else "")
            + ("" if stats["instances"] else "  ·  empty: press i to import a folder") + f"  ·  {self.db.root}",
            layout=False,
        )

    def forget_totals(self) -> None:
        """Another database: its counts are read anew (a fresh connection may start at the same data_version)."""
        self._totals = (None, {})

    def busy(self, text: str) -> None:
        """What a worker is doing, in the status line until the next update."""
        self.query_one("#status", Static).update(text, layout=False)

    @on(MarkTable.Highlighted)
    @on(MarkTable.MarksChanged)
    def _selection_moved(self, event) -> None:
        table = event.control
        if table.id == "patient-table":
            self.reload(Level.STUDY)
        elif table.id == "study-table":
            self.reload(Level.SERIES)
        elif isinstance(event, MarkTable.MarksChanged):
            self.update_status()

    @on(Input.Changed, ".filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.reload(event.input.id.removesuffix("-filter"))

    @on(Input.Submitted, ".filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.table(event.input.id.removesuffix("-filter")).focus()

    # ---- actions ---------------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_pane(self, step: int) -> None:
        """Tab / shift+Tab: the next / previous table (from a filter box too), round the three panes."""
        here = self.focused_level() if self.focused is not None else Level.PATIENT  # at start: the patients
        self.action_focus_pane((LEVELS.index(here) + step) % len(LEVELS))

    def action_focus_pane(self, index: int) -> None:
        self.table(LEVELS[index]).focus()

    def action_search(self) -> None:
        self.set_focus(self.query_one(f"#{self.focused_level()}-filter", Input))

    def action_leave_search(self) -> None:
        if isinstance(self.focused, Input):
            self.table(self.focused_level()).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Enter in a filter box submits it; / is typed into it
        return not (action in ("load", "search") and isinstance(self.focused, Input))

    def action_load(self) -> None:
        self.app.load_series(self.selected_series())

    def action_examine(self) -> None:
        self.app.examine_series(self.selected_series())

    def action_import(self) -> None:
        self.app.action_import()

    def action_viewer(self) -> None:
        self.app.action_viewer()

    def action_metadata(self) -> None:
        series = self.selected_series()
        if series:
            self.app.show_metadata(series[0])

    def action_network(self) -> None:
        self.app.action_network()

    def action_send(self) -> None:
        items = self.selection()
        if items:
            self.app.send_items(items, self._describe(items))

    def action_export(self) -> None:
        from .export import ExportScreen

        items = self.selection()
        if items and self.db is not None:
            self.app.push_screen(ExportScreen(self.db, items, self._describe(items)))

    def action_delete(self) -> None:
        items = self.selection()
        if items:
            self.app.delete_items(items, self._describe(items))

    def action_tags(self) -> None:
        from .tag_editor import TagEditorScreen

        if items := self.selection():
            screen = TagEditorScreen(self.app.db_path, items, self._describe(items))
            self.app.push_screen(screen, lambda _: self.reload())

    def _describe(self, items: list[Item]) -> str:
        rows = self.table(items[0].level).rows_by_key  # the rows shown: not read again
        return describe(self.db, items, {item.id: rows[str(item.id)] for item in items if str(item.id) in rows})
