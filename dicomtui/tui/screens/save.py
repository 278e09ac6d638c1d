"""Save: write the viewer's item (all its volumes, for 4D) to NIfTI (.nii, .nii.gz) or NRRD (.nrrd).

The proposed file is named from the series (``core.naming``: ``PatientID_SeriesNumber_Description.nii.gz``, safe)
in the default folder (the working directory, or the home folder when that is dicomtui's source tree). An existing
file is never overwritten without asking: No keeps it and proposes the next free name (dcm2niix's letter suffix).
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ...core.errors import VolumeWriteError
from ...core.naming import free_path
from ...core.text import printable
from ..messages import Stopped, Written
from ..widgets.slice_view import ViewerItem
from .confirm import ConfirmScreen, ShowsWorkerErrors


class SaveScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Write ``item`` to the path in the field (proposed: ``folder / stem.nii.gz``)."""

    BINDINGS = [Binding("escape", "close", "Close", id="save_close")]

    def __init__(self, item: ViewerItem, stem: str, folder: Path) -> None:
        super().__init__()
        self.item = item
        self.proposed = folder / f"{stem}.nii.gz"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Save {escape(printable(self.item.name))} as NIfTI (.nii / .nii.gz) or NRRD (.nrrd)")
            yield Input(str(self.proposed), id="save-path")
            yield Button("Save", variant="primary", id="save-go")
            yield Static("", id="save-result", markup=False)  # paths may hold [ ]

    def on_mount(self) -> None:
        self.query_one("#save-path", Input).focus()

    def say(self, text: str) -> None:
        self.query_one("#save-result", Static).update(text)

    @on(Input.Submitted, "#save-path")
    @on(Button.Pressed, "#save-go")
    def save(self) -> None:
        text = self.query_one("#save-path", Input).value.strip()
        if not text:
            self.say("Nothing written: type the file to write (.nii, .nii.gz or .nrrd).")
            return
        path = Path(text).expanduser()
        try:
            free = free_path(path)
        except VolumeWriteError as exc:
            self.say(f"Not written: {exc}")
            return
        if free == path:
            self.write(path)
            return

        def answer(overwrite: bool | None) -> None:
            if overwrite:
                self.write(path)
            else:
                self.query_one("#save-path", Input).value = str(free)
                self.say(f"Not overwritten. The next free name is in the field: Enter writes {free.name}.")

        self.app.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?",
                                           f"No keeps it and proposes {free.name}.", yes="Overwrite"), answer)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def write(self, path: Path) -> None:
        from ...core.volume_io import write_volume

        try:
            written = write_volume(self.item.volumes, path)  # a list of one is written as 3D
        except (VolumeWriteError, OSError) as exc:
            self.post_message(Stopped(str(exc)))
            return
        self.post_message(Written(written))

    @on(Written)
    def _written(self, message: Written) -> None:
        self.say("Written: " + ", ".join(str(p) for p in message.paths) + "\nEscape closes.")

    @on(Stopped)
    def _not_written(self, message: Stopped) -> None:
        self.say(f"Not written: {message.text}")

    def action_close(self) -> None:
        self.dismiss(None)
