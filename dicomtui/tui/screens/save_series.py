"""Save as DICOM series: the viewer's item written as a new series into the open database
(``core.export.volume_series.write_volume_series``), joining the patient and study of the series it was loaded from.

An item of several volumes on one grid (a 4D sequence: time points, echoes, b-values; a series of mosaics) is
written whole by default — ONE series, every slice position once per volume, as scanners store it, each volume's
images carrying the attribute the loader told it apart by (``core.export.volume_sequence``) — or only the volume
shown, when chosen. Volumes of different grids (a per-frame item) can only be written one at a time, and Enhanced
(Legacy Converted Enhanced CT/MR: MONOCHROME, one frame per position) only for one grey volume: the form says so
and offers what the core writes, rather than failing after the user pressed Save.

The form: SeriesDescription (proposed "<name> (derived)"), SeriesNumber (1001 by default), the UID root of the
new Series and SOP Instance UIDs (pydicom's by default; checked as PS3.5 9.1 says), a folder the files are also
written to (optional; never over a file there), Enhanced (one multi-frame Legacy Converted Enhanced CT/MR image
instead of one file per slice) and the reference — the
source series, found from the volume's per-slice SOPInstanceUIDs in the database (a volume read from a file has
none: it is written as a new patient and study). The writing runs in a worker with its own connection, as the
tag editor's; the summary (UIDs, where, the rescale used) is shown in the form.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static
from textual.worker import get_current_worker

from ...core.database import DicomDatabase
from ...core.errors import DicomtuiError, VolumeWriteError
from ...core.export.volume_sequence import volumes_of
from ...core.export.volume_series import (
    DEFAULT_SERIES_NUMBER,
    DEFAULT_UID_ROOT,
    SeriesOptions,
    check_uid_root,
    write_volume_series,
)
from ...core.net.nodes import copy_floor
from ...core.text import printable
from ...core.volume import Volume
from ..messages import Progress, Stopped
from .confirm import ShowsWorkerErrors
from .forms import FIELD_KEYS, field


def source_series_uid(db: DicomDatabase, volume: Volume) -> str | None:
    """The SeriesInstanceUID of ``db`` that holds the volume's first slice instance (Volume.instance_uids), or
    None when the volume has none (read from NIfTI/NRRD) or the instance is not in ``db`` (deleted since)."""
    for uid in volume.instance_uids[:1]:
        instance = db.find("instance", uid)
        series = db.get("series", instance["series_fk"]) if instance else None
        if series:
            return str(series["SeriesInstanceUID"])
    return None


@dataclass
class SeriesSaved(Message):
    """The new series was written; ``summary`` is the report's."""

    summary: str


def volume_label(volumes: list[Volume], t: int) -> str:
    """Volume ``t`` (from 0) of ``volumes`` in the words of the viewer's overlay line: "t = 2 of 3:
    TemporalPositionIdentifier 2" (the loader's ``Volume.extra`` key, value and unit, when it named one)."""
    extra = volumes[t].extra
    parts = [extra.get(k) for k in ("key", "value", "unit")] if "key" in extra else []
    said = " ".join(str(part) for part in parts if part not in (None, ""))
    return f"t = {t + 1} of {len(volumes)}" + (f": {said}" if said else "")


ENHANCED_ONE_GREY = "Enhanced holds one grey volume (a MONOCHROME frame per slice position)"


_SEVERAL = re.compile(r" \(\d+ (volumes|images)\b[^)]*\)$")  # what examine names a 4D item after: "(3 volumes over …)"


class SaveSeriesScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Write ``volumes`` (the viewer item's: one volume, or a 4D sequence on one grid) as a new series into the
    database at ``db_path``, derived from ``reference`` (a SeriesInstanceUID of that database, or None: a new
    patient and study). ``shown``: the index of the volume on the screen, written alone when the user chooses
    "Only the shown volume", when the volumes do not share one grid, or when they are ``one_by_one`` (a per-frame
    item's images, each of its own size and place, as examine/frames_view.py loads them)."""

    BINDINGS = [Binding("escape", "close", "Cancel / close", id="save_series_close"), *FIELD_KEYS]

    def __init__(self, db_path: Path, volumes: Volume | list[Volume], name: str, reference: str | None,
                 shown: int = 0, one_by_one: bool = False) -> None:
        super().__init__()
        self.db_path = db_path
        self.volumes = [volumes] if isinstance(volumes, Volume) else list(volumes)
        self.shown = min(max(shown, 0), len(self.volumes) - 1)
        self.name_ = name
        self.reference = reference
        self.one_by_one = one_by_one and len(self.volumes) > 1
        self.one_grid = len(self.volumes) > 1 and not self.one_by_one and _one_grid(self.volumes)
        self.cancel = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        # one-line fields (forms.field) and a scrolling dialog: the 4D choice and the summary fit 80×24
        with VerticalScroll(classes="dialog wide", id="series-form", can_focus=False):
            yield Label(f"Save {escape(printable(self.name_))} as a new DICOM series in the database")
            yield from self._volume_choice()
            yield field("SeriesDescription", Input(self._proposed(one=not self.one_grid), id="series-description"))
            yield field("SeriesNumber", Input(str(DEFAULT_SERIES_NUMBER), id="series-number", type="integer"))
            yield field("UID root of the new Series and SOP Instance UIDs", Input(DEFAULT_UID_ROOT,
                                                                                 id="series-uid-root"))
            yield field("Also write the files to this folder (empty: the database only)",
                        Input("", placeholder="a folder; created when missing, no file there overwritten",
                              id="series-folder"))
            yield Label("Derived from series " + (escape(self.reference) if self.reference else
                                                  "(none in this database: a new patient and study)"),
                        id="series-reference")
            yield Checkbox("Enhanced: one multi-frame Legacy Converted Enhanced CT/MR image", id="series-enhanced",
                           compact=True)
            yield Static("", id="series-enhanced-note", markup=False)
            yield Button("Save series", variant="primary", id="series-go")
            yield Static("", id="series-result", markup=False)

    def _volume_choice(self) -> ComposeResult:
        """Several volumes: all of them (one series, the default) or the shown one; images one by one, or volumes
        of different grids: a sentence saying only the shown one is written."""
        n, shown = len(self.volumes), volume_label(self.volumes, self.shown)
        if self.one_by_one:  # as w (screens/save.py) saves such an item: its images have no common grid or place
            yield Static(f"Only the shown image ({self.shown + 1} of {n}) is written: this item shows images one by "
                         "one, not one 4D volume.", id="series-volumes-note", markup=False)
        elif self.one_grid:
            with RadioSet(id="series-volumes", compact=True):
                yield RadioButton(f"All {n} volumes (one series, as the scanner stored them)", value=True,
                                  id="series-all")
                yield RadioButton(f"Only the shown volume ({escape(printable(shown))})", id="series-shown")
        elif n > 1:
            yield Static(f"Only the shown volume ({printable(shown)}) is written: the {n} volumes differ in size "
                         "or place, and one series holds volumes of one grid.", id="series-volumes-note",
                         markup=False)

    def on_mount(self) -> None:
        self.query_one("#series-description", Input).focus()
        self._enhanced_allowed()

    def _proposed(self, one: bool) -> str:
        """The SeriesDescription proposed (LO: 64 characters): "<name> (derived)"; ``one``: only the shown volume
        of several is written, so the name's "(3 volumes over …)" is replaced by which one."""
        name = self.name_ or "volume"
        if one and len(self.volumes) > 1:
            what = "image" if self.one_by_one else "volume"
            name = _SEVERAL.sub("", name) + f" ({what} {self.shown + 1} of {len(self.volumes)})"
        return f"{name} (derived)"[:64]

    def chosen(self) -> list[Volume]:
        """The volumes the form writes now: all of them, or the shown one."""
        if self.one_grid and self.query_one("#series-all", RadioButton).value:
            return self.volumes
        return [self.volumes[self.shown]]

    @on(RadioSet.Changed, "#series-volumes")
    def _enhanced_allowed(self) -> None:
        """Enhanced is offered for one grey volume only (what volume_series writes): otherwise it is unticked,
        disabled, and the note says why."""
        chosen = self.chosen()
        description = self.query_one("#series-description", Input)
        if description.value == self._proposed(one=len(chosen) > 1):  # the other choice's proposal, untouched
            description.value = self._proposed(one=len(chosen) == 1)
        why = ("a colour volume" if chosen[0].is_rgb else
               f"{len(chosen)} volumes" if len(chosen) > 1 else "")
        box = self.query_one("#series-enhanced", Checkbox)
        box.disabled = bool(why)
        if why:
            box.value = False
        self.query_one("#series-enhanced-note", Static).update(f"{ENHANCED_ONE_GREY}: not for {why}." if why else "")

    def say(self, text: str) -> None:
        result = self.query_one("#series-result", Static)
        result.update(text)
        result.scroll_visible(animate=False)

    @on(Input.Submitted)
    @on(Button.Pressed, "#series-go")
    def save(self) -> None:
        if self.running:
            return
        number = self.query_one("#series-number", Input).value.strip()
        if not number.lstrip("-").isdigit() or not 0 <= int(number) < 2**31:
            self.say("Nothing written: SeriesNumber is a whole number from 0 (IS, PS3.5 6.2).")
            return
        try:
            root = check_uid_root(self.query_one("#series-uid-root", Input).value.strip())
        except DicomtuiError as exc:
            self.say(f"Nothing written: {printable(str(exc))}")
            return
        volumes = self.chosen()
        enhanced = self.query_one("#series-enhanced", Checkbox).value
        if enhanced and (len(volumes) > 1 or volumes[0].is_rgb):
            self.say(f"Nothing written: {ENHANCED_ONE_GREY}; untick it, or choose only the shown grey volume.")
            return
        typed = self.query_one("#series-folder", Input).value.strip()
        folder = Path(typed).expanduser() if typed else None
        description = self.query_one("#series-description", Input).value.strip()
        self.running = True
        self.cancel.clear()
        self.say("Writing…  Escape cancels")
        self.write(volumes, SeriesOptions(description=description, series_number=int(number), uid_root=root,
                                          source=self.name_, enhanced=enhanced,
                                          min_free=copy_floor("copy", self.app.nodes_path)), folder)

    @work(thread=True, exclusive=True, group="save series", exit_on_error=False)
    def write(self, volumes: list[Volume], options: SeriesOptions, folder: Path | None = None) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is quitting: stop before the next image
                self.cancel.set()
            self.post_message(Progress(done, total))

        try:
            with DicomDatabase.open(self.db_path, create=False) as db:
                report = write_volume_series(volumes if len(volumes) > 1 else volumes[0], options, db=db,
                                             like=self.reference, folder=folder, progress=progress,
                                             cancel=self.cancel)
        except (DicomtuiError, OSError) as exc:
            self.post_message(Stopped(str(exc)))
            return
        self.post_message(SeriesSaved(report.summary()))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        if self.running:
            self.say(f"Writing image {message.done} of {message.total}…  Escape cancels")

    @on(SeriesSaved)
    def _saved(self, message: SeriesSaved) -> None:
        self.running = False
        self.say(printable(message.summary, multiline=True) + "\nEscape closes.")
        self.app.browser.reload()

    @on(Stopped)
    def _not_written(self, message: Stopped) -> None:
        self.running = False
        self.say(f"Not written: {printable(message.text)}")

    def worker_failed(self, _worker) -> None:
        self.running = False
        self.say("Not written (see the message).")

    def action_close(self) -> None:
        if self.running:
            self.cancel.set()  # stops before the next image; the files already written are removed
        else:
            self.dismiss(None)


def _one_grid(volumes: list[Volume]) -> bool:
    """Whether ``volumes`` can be one series (core.export.volume_sequence.volumes_of: one shape and affine)."""
    try:
        volumes_of(volumes)
    except VolumeWriteError:
        return False
    return True
