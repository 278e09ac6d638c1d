"""The TUI. For now one screen: the patients of the database (the full browser comes with the TUI issue)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from ..core.database import DatabaseError, DicomDatabase

PATIENT_COLUMNS = [("Patient name", "PatientName"), ("Patient ID", "PatientID"), ("Birth date", "PatientBirthDate"),
                   ("Sex", "PatientSex"), ("Studies", "num_studies"), ("Last study", "last_study_date")]


class DicomTuiApp(App):
    """dicomtui's Textual application."""

    TITLE = "dicomtui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Read the database again"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave dicomtui"),
    ]

    def __init__(self, db_path: Path):
        super().__init__()
        self.db_path = Path(db_path)
        self.db: DicomDatabase | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="patients", cursor_type="row", zebra_stripes=True)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = str(self.db_path)
        table = self.query_one("#patients", DataTable)
        for label, key in PATIENT_COLUMNS:
            table.add_column(label, key=key)
        try:
            self.db = DicomDatabase.open(self.db_path)
        except DatabaseError as exc:
            self.query_one("#status", Static).update(f"Cannot open the database: {exc}")
            return
        self.action_refresh()

    def action_refresh(self) -> None:
        if self.db is None:
            return
        table = self.query_one("#patients", DataTable)
        table.clear()
        rows = self.db.patients()
        for row in rows:
            table.add_row(*[("" if row[key] is None else str(row[key])) for _, key in PATIENT_COLUMNS],
                          key=str(row["id"]))
        stats = self.db.stats()
        self.query_one("#status", Static).update(
            f"{self.db_path}  ·  {stats['patients']} patients, {stats['studies']} studies, "
            f"{stats['series']} series, {stats['instances']} instances"
            + ("" if rows else "  ·  empty: import with `dicomtui import PATH`")
        )

    def on_unmount(self) -> None:
        if self.db is not None:
            self.db.close()
