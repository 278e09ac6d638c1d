"""The de-identification part of the export and send screens (issue 17): a switch, the PS3.15 Basic Profile's
options, the files that may show identity in their pixels (each sent or exported only once ticked), and a preview
of what changes in one file (:mod:`.deid_preview`). The core does the work
(:class:`dicomtui.core.export.deidentify.Deidentifier`, the mapping of the database folder)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, SelectionList, Static, Switch

from ...core.export.deidentify import PROFILE_OPTIONS, Deidentifier, DeidOptions, burned_in_files
from ...core.plural import counted
from ...core.text import printable
from .forms import field

__all__ = ["DeidPanel", "option_labels"]


def option_labels() -> list[tuple[str, str]]:
    """(PS3.16 CID 7050 code meaning, CLI name) of each profile option, in PS3.16 order."""
    labels = []
    for name, attribute in PROFILE_OPTIONS.items():
        code = DeidOptions(**{attribute: True}).codes()[-1]
        labels.append((str(code.meaning), name))
    return labels


@dataclass
class BurnedInFound(Message):
    """The files of the selection that may show identity in their pixels (rows with "path", "SOPInstanceUID")."""

    rows: list[dict[str, Any]]


class DeidPanel(Vertical):
    """The de-identify switch, options, burned-in files to tick and the preview button, for ``rows`` (dicts with
    "path" and "SOPInstanceUID", or a function giving them, called in the app's thread when the switch is first
    turned on) of the database in ``db_folder`` (where the mapping is kept)."""

    DEFAULT_CSS = """
    DeidPanel { height: auto; }
    DeidPanel > Horizontal { height: auto; }
    DeidPanel > Horizontal > Button { margin: 1 1 0 1; }
    DeidPanel SelectionList { height: auto; max-height: 8; margin: 0 1; }
    DeidPanel #deid-burned-text { height: auto; padding: 0 1; }
    """

    def __init__(self, rows: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
                 db_folder: Path | None) -> None:
        super().__init__(id="deid-panel")
        self._rows, self.db_folder = rows, db_folder
        self.burned: list[dict[str, Any]] | None = None  # None: not found yet
        self.looking = False
        self.stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield field("De-identify (PS3.15 Basic Profile)", Switch(False, id="deid-on"))
            yield Button("Preview changes", id="deid-preview", disabled=True, compact=True)
        yield SelectionList[str](*option_labels(), id="deid-options", compact=True, disabled=True)
        yield Static("", id="deid-burned-text", markup=False)
        yield SelectionList[str](id="deid-burned", compact=True)

    def on_mount(self) -> None:
        self.query_one("#deid-options").display = False
        self.query_one("#deid-burned").display = False

    def on_unmount(self) -> None:
        self.stop.set()

    @property
    def rows(self) -> list[dict[str, Any]]:
        if callable(self._rows):
            self._rows = self._rows()  # once, on first use: a dialog opened without de-identifying never reads them
        return self._rows

    @property
    def is_on(self) -> bool:
        return self.query_one("#deid-on", Switch).value

    @on(Switch.Changed, "#deid-on")
    def _switched(self, event: Switch.Changed) -> None:
        options = self.query_one("#deid-options", SelectionList)
        options.disabled = not event.value
        options.display = event.value
        self.query_one("#deid-preview", Button).disabled = not event.value or not self.rows
        if event.value and not self.looking:
            self.looking = True
            self._look(self.rows)
        self._show_burned()

    @work(thread=True, exclusive=True, group="deid-burned", exit_on_error=False)
    def _look(self, rows: list[dict[str, Any]]) -> None:
        self.post_message(BurnedInFound(burned_in_files(rows, self.stop)))

    @on(BurnedInFound)
    def _found(self, message: BurnedInFound) -> None:
        self.burned = message.rows
        burned = self.query_one("#deid-burned", SelectionList)
        burned.clear_options()
        burned.add_options([(printable(Path(r["path"]).name), str(r["SOPInstanceUID"])) for r in message.rows])
        self._show_burned()

    def _show_burned(self) -> None:
        text = self.query_one("#deid-burned-text", Static)
        burned = self.query_one("#deid-burned", SelectionList)
        shown = self.is_on and bool(self.burned)
        burned.display = shown
        if not self.is_on:
            text.update("")
        elif self.burned is None:
            text.update("Looking for files that may show identity in their pixels …")
        elif self.burned:
            text.update(f"{counted(len(self.burned), 'file')} may show identity in the pixels (burned-in "
                        f"annotation): each is left out unless ticked after checking it.")
        else:
            text.update("No file may show identity in its pixels (no burned-in annotation).")

    def options(self) -> DeidOptions:
        chosen = self.query_one("#deid-options", SelectionList).selected
        return DeidOptions.from_names(chosen)

    def deidentifier(self) -> Deidentifier | None:
        """The transform the switch and options ask for (the mapping of the database folder, read now), or None
        when de-identification is off. Raises MappingError."""
        if not self.is_on:
            return None
        from ...core.export.deid_mapping import DeidMapping, database_mapping

        mapping = database_mapping(self.db_folder) if self.db_folder is not None else DeidMapping()
        ticked = frozenset(self.query_one("#deid-burned", SelectionList).selected)
        return Deidentifier(self.options(), mapping, accepted=ticked)

    @on(Button.Pressed, "#deid-preview")
    def preview(self) -> None:
        from .deid_preview import DeidPreviewScreen

        if self.is_on and self.rows:
            self.app.push_screen(DeidPreviewScreen([r["path"] for r in self.rows], self.options(), self.db_folder))
