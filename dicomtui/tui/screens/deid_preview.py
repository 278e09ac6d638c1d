"""What de-identifying one file would change, as a diff (issue 17): the rows of
:func:`dicomtui.core.export.deid_preview.preview_file` (removed, changed, added attributes, into every sequence
item); nothing is written and no pseudonym is added to the mapping. ``n`` / ``p`` go to the next / previous file of
the selection; Escape closes."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from ...core.export.deidentify import DeidOptions
from ...core.text import printable

__all__ = ["DeidPreviewScreen"]

_KIND = {"-": "removed", "~": "changed", "+": "added"}
CELL = 20  # characters of a value shown: before and after both fit the 100-column dialog (a UID is cut, with "…")
ATTRIBUTE = 34  # characters of an attribute path (DeidentificationMethodCodeSequence; a deeper path is cut)


def _cell(value: str | None, width: int = CELL) -> str:
    shown = printable(value or "")
    return shown if len(shown) <= width else shown[:width - 1] + "…"


class DeidPreviewScreen(ModalScreen[None]):
    """The changes de-identifying ``paths[index]`` with ``options`` would make, with the mapping of the database
    folder ``db_folder`` (read, never changed)."""

    BINDINGS = [Binding("escape", "dismiss", "Close", id="deid_preview_close", tooltip="Back to the form"),
                Binding("n", "step(1)", "Next file", id="deid_preview_next",
                        tooltip="The changes in the next file of the selection"),
                Binding("p", "step(-1)", "Previous file", id="deid_preview_previous",
                        tooltip="The changes in the previous file of the selection")]

    def __init__(self, paths: list[str], options: DeidOptions, db_folder: Path | None, index: int = 0) -> None:
        super().__init__()
        self.paths, self.options, self.db_folder, self.index = paths, options, db_folder, index

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="deid-preview-dialog"):
            yield Label("", id="deid-preview-title", classes="pane-title", markup=False)
            yield DataTable(id="deid-changes", cursor_type="row", zebra_stripes=True)
            yield Static("", id="deid-preview-note", markup=False)

    def on_mount(self) -> None:
        self.query_one("#deid-changes", DataTable).add_columns("", "Attribute", "Before", "After")
        self.show()

    def action_step(self, by: int) -> None:
        self.index = (self.index + by) % len(self.paths)
        self.show()

    def show(self) -> None:
        """Read the file at ``index`` and fill the table (an unreadable file: its reason in the note)."""
        from ...core.export.deid_mapping import DeidMapping, MappingError, database_mapping
        from ...core.export.deid_preview import preview_file

        path = self.paths[self.index]
        table = self.query_one("#deid-changes", DataTable)
        table.clear()
        note = self.query_one("#deid-preview-note", Static)
        try:
            mapping = database_mapping(self.db_folder) if self.db_folder is not None else DeidMapping()
            changes, burned = preview_file(path, self.options, mapping)
        except (MappingError, OSError, ValueError) as exc:
            note.update(f"Cannot preview {Path(path).name}: {exc}")
            return
        self.query_one("#deid-preview-title", Label).update(
            f"De-identifying file {self.index + 1} of {len(self.paths)}: {len(changes)} changes "
            f"(n / p: other files, Escape closes)")
        for change in changes:
            kind = "-" if change.after is None else "+" if change.before is None else "~"
            table.add_row(_KIND[kind], _cell(change.path, ATTRIBUTE), _cell(change.before), _cell(change.after))
        pixels = ("It may show identity in its pixels (burned-in annotation): it is left out unless ticked."
                  if burned else "Pixel Data is not changed (Clean Pixel Data is not offered).")
        note.update(f"{printable(Path(path).name)}. {pixels}")
