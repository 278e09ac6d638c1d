"""The start screen: patients, studies and series side by side, each with a filter box.

Selecting patients (marked rows, or else the row under the cursor) narrows the studies; selecting studies narrows
the series. The browser polls the database's ``data_version`` every few seconds, so data that the listener or
another process adds appears without a keystroke, and the cursors stay on the records they were on.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from ..widgets.tables import MarkTable

POLL_S = 2.0
LEVELS = ("patient", "study", "series")
COLUMNS = {
    "patient": [("Patient name", "PatientName"), ("Patient ID", "PatientID"), ("Birth date", "PatientBirthDate"),
                ("Sex", "PatientSex"), ("Studies", "num_studies"), ("Last study", "last_study_date")],
    "study": [("Date", "StudyDate"), ("Description", "StudyDescription"), ("Modalities", "modalities"),
              ("Accession", "AccessionNumber"), ("Patient", "PatientName"), ("Series", "num_series"),
              ("Images", "num_instances")],
    "series": [("#", "SeriesNumber"), ("Modality", "Modality"), ("Description", "SeriesDescription"),
               ("Body part", "BodyPartExamined"), ("Images", "num_instances"), ("Size", "image_size"),
               ("Date", "SeriesDate")],
}
TITLES = {"patient": "Patients", "study": "Studies", "series": "Series"}
_DATES = {"PatientBirthDate", "last_study_date", "StudyDate", "SeriesDate"}


def cell(key: str, value: Any) -> str:
    """Display text of a database value: dates as YYYY-MM-DD, nothing for NULL."""
    if value is None:
        return ""
    text = str(value)
    if key in _DATES and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


class BrowserScreen(Screen):
    """Patient → study → series browser."""

    BINDINGS = [
        Binding("enter", "load", "Load", id="load", tooltip="Load the selection with the default loadables",
                priority=True),
        Binding("e", "examine", "Examine", id="examine", tooltip="List every loadable of the selection"),
        Binding("i", "import", "Import", id="import", tooltip="Import a folder into this database"),
        Binding("d", "delete", "Delete", id="delete", tooltip="Delete the selection from the database"),
        Binding("m", "metadata", "Metadata", id="metadata", tooltip="Show the tags of the selected series' files"),
        Binding("s", "send", "Send", id="send", tooltip="Send the selection to a DICOM node (C-STORE)"),
        Binding("n", "network", "Network", id="network", tooltip="Nodes, echo, query/retrieve, the listener"),
        Binding("v", "viewer", "Viewer", show=False, id="viewer", tooltip="Back to the loaded volumes"),
        # priority: the app moves the focus before it forwards the next keys (typed or pasted right after /)
        Binding("slash", "search", "Search", id="search", tooltip="Type in the filter box of the current pane",
                priority=True),
        Binding("escape", "leave_search", "Tables", show=False, id="leave_search"),
        Binding("r", "refresh", "Refresh", show=False, id="refresh", tooltip="Read the database again"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            yield self._pane("patient")
            with Vertical(id="right"):
                yield self._pane("study")
                yield self._pane("series")
        yield Static(id="status")
        yield Footer()

    def _pane(self, level: str) -> Vertical:
        return Vertical(
            Label(TITLES[level], classes="pane-title", id=f"{level}-title"),
            Input(placeholder=f"filter {TITLES[level].lower()} (words, * ?)", id=f"{level}-filter",
                  classes="filter"),
            MarkTable(COLUMNS[level], id=f"{level}-table"),
            id=f"{level}-pane", classes="pane",
        )

    def on_mount(self) -> None:
        self._version: int | None = None  # data_version the panes show
        self._totals: tuple[int | None, dict[str, int]] = (None, {})  # (data_version, counts) of the status line
        self.table("patient").focus()
        self.set_interval(POLL_S, self.poll)
        self.reload()

    # ---- helpers ---------------------------------------------------------------------------------------------

    def table(self, level: str) -> MarkTable:
        return self.query_one(f"#{level}-table", MarkTable)

    @property
    def db(self):
        return self.app.db

    def focused_level(self) -> str:
        focused = self.focused
        for level in LEVELS:
            if focused is not None and focused.id in (f"{level}-table", f"{level}-filter"):
                return level
        return "series"

    def selection(self, level: str | None = None) -> list[tuple[str, int]]:
        """(level, id) of what the user points at: marks, else the cursor row, in the focused pane."""
        level = level or self.focused_level()
        return [(level, row_id) for row_id in self.table(level).selection()]

    def selected_series(self) -> list[int]:
        return self.db.series_ids(self.selection()) if self.db is not None else []

    # ---- reading the database --------------------------------------------------------------------------------

    def reload(self, start: str = "patient") -> None:
        """Fill the panes from ``start`` down, each narrowed by the selection above it."""
        if self.db is None:
            self.update_status()
            return
        for level in LEVELS[LEVELS.index(start):]:
            self._fill(level)
        self._version = self.db.data_version()
        self.update_status()

    def _fill(self, level: str) -> None:
        text = self.query_one(f"#{level}-filter", Input).value.strip() or None
        if level == "patient":
            rows = self.db.patients(text)
        elif level == "study":
            rows = self.db.studies(self.table("patient").selection(), text)
        else:
            rows = self.db.series(self.table("study").selection(), text)
        self.table(level).fill(rows, cell)
        title = self.query_one(f"#{level}-title", Label)
        title.update(f"{TITLES[level]} ({len(rows)})", layout=False)  # one fixed line: no layout pass

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
            f"{stats['patients']} patients, {stats['studies']} studies, {stats['series']} series,"
            f" {stats['instances']} instances" + (f"  ·  {marks} marked" if marks else "")
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
            self.reload("study")
        elif table.id == "study-table":
            self.reload("series")
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

    def action_delete(self) -> None:
        items = self.selection()
        if items:
            self.app.delete_items(items, self._describe(items))

    def _describe(self, items: list[tuple[str, int]]) -> str:
        level = items[0][0]
        if len(items) > 1:
            return f"{len(items)} {TITLES[level].lower()}"
        row = self.table(level).rows_by_key.get(str(items[0][1]), {})
        if level == "patient":
            return f"patient {row.get('PatientName') or ''} ({row.get('PatientID')})"
        if level == "study":
            return f"study {cell('StudyDate', row.get('StudyDate'))} {row.get('StudyDescription') or ''}".rstrip()
        return f"series {row.get('SeriesNumber') or ''} {row.get('SeriesDescription') or ''}".rstrip()
