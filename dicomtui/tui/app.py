"""dicomtui's Textual application: the browser first; import, delete, metadata, examine, viewer, databases and
settings on top. Every action calls the core; long work runs in thread workers with their own database
connection, so the UI never waits and the browser sees their commits like any other process's."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from ..config import Settings, SettingsError, load_settings, remember_database, save_settings
from ..core.database import DicomDatabase
from ..core.errors import DatabaseError, DicomtuiError, NodeError
from ..core.examine import (
    ExamineOptions,
    Loadable,
    LoadOptions,
    LoadProgress,
    choose,
    examine_series,
    load_loadables,
    nothing_selected,
)
from ..core.levels import Item, Level, series_label
from ..core.naming import default_output_folder, output_stem, safe_name
from ..core.plural import counted
from ..core.selection import delete_plan, instance_files
from .messages import Deleted, Examined, ListenerStopped, Status, VolumesLoaded
from .screens.browser import BrowserScreen
from .screens.confirm import ConfirmScreen, MessageScreen, ShowsWorkerErrors
from .screens.databases import DatabasesScreen
from .screens.examine import ExamineScreen
from .screens.help import HelpScreen, group_name, keyed_classes
from .screens.import_ import ImportScreen
from .screens.metadata import MetadataScreen
from .screens.network import NetworkScreen
from .screens.save import SaveScreen
from .screens.send import SendScreen
from .screens.settings import SettingsScreen
from .screens.viewer import ViewerScreen
from .widgets.overlay_layer import attach_overlays
from .widgets.slice_view import ViewerItem


class DicomTuiApp(ShowsWorkerErrors, App):
    """dicomtui's Textual application."""

    TITLE = "dicomtui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key, with its id for the key map"),
        Binding("o", "databases", "Databases", show=False, id="databases", tooltip="Open, create or switch database"),
        Binding("comma", "settings", "Settings", show=False, id="settings", tooltip="Edit the settings file"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave dicomtui"),
    ]

    def __init__(self, db_path: Path, settings: Settings | None = None, renderer: str | None = None,
                 settings_path: Path | None = None, nodes_path: Path | None = None) -> None:
        super().__init__()
        self.db_path = Path(db_path).expanduser().absolute()
        self.settings_path = settings_path
        self.nodes_path = nodes_path  # None: the user's nodes.toml (as the CLI's `nodes`)
        self.listener = None  # our C-STORE listener, while started from the network screen
        self.settings = settings if settings is not None else _settings_or_default(settings_path)
        self.renderer = renderer or self.settings.renderer
        self.db: DicomDatabase | None = None
        self.db_error = ""
        self.loaded: list[ViewerItem] = []  # the viewer's Loaded data list
        # each item's file name from its series (core.naming), and the items of images one by one (w saves the
        # image shown): weak, so that closing an item (x) gives its volumes' memory back
        self.output_stems: weakref.WeakKeyDictionary[ViewerItem, str] = weakref.WeakKeyDictionary()
        self.one_by_one: weakref.WeakSet[ViewerItem] = weakref.WeakSet()
        try:  # before the browser mounts; a failure is shown there and `o` opens another database
            self.db = DicomDatabase.open(self.db_path)
            self.sub_title = str(self.db.root)
            remember_database(self.settings, self.db.root)  # saved with the next change of settings
        except DatabaseError as exc:
            self.db_error = str(exc)

    def get_default_screen(self) -> Screen:
        return BrowserScreen()

    def on_mount(self) -> None:
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        # The objects of start-up (modules, widgets, styles) live as long as the app: kept out of the cyclic
        # garbage collector, its full passes no longer walk them (they showed as 100 ms stalls of a slice step).
        gc.freeze()

    def on_unmount(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.db is not None:
            self.db.close()

    @property
    def browser(self) -> BrowserScreen:
        return next(s for s in self.screen_stack if isinstance(s, BrowserScreen))

    # ---- databases -------------------------------------------------------------------------------------------

    def open_database(self, path: Path) -> bool:
        """Switch to the database in ``path`` (created when new), remembered in the recent list."""
        try:
            db = DicomDatabase.open(path)
        except DatabaseError as exc:
            self.push_screen(MessageScreen("Cannot open that database", str(exc)))
            return False
        if self.db is not None:
            self.db.close()
        moving = self.listener is not None
        if moving:  # the listener receives into the open database: it moves with it
            self.listener.stop()
            self.listener = None
        self.db, self.db_path, self.db_error = db, db.root, ""
        if moving:
            self.notify(self.toggle_listener())
        self.sub_title = str(db.root)
        self.browser.forget_totals()
        remember_database(self.settings, db.root)
        self._save_settings()
        self.browser.reload()
        return True

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings, self.settings_path)
        except OSError as exc:
            self.notify(f"settings not saved: {exc}", severity="warning")

    def action_databases(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_database(path)

        self.push_screen(DatabasesScreen(self.db_path, self.settings.recent_databases), chosen)

    def action_settings(self) -> None:
        def saved(settings: Settings | None) -> None:
            if settings is not None:
                self.settings = settings
                self.set_keymap(settings.keymap)
                self.notify("Settings saved")

        known = {b.id for _name, bindings in self.binding_groups() for b in bindings if b.id}
        self.push_screen(SettingsScreen(self.settings, self.settings_path, known), saved)

    def binding_groups(self) -> list[tuple[str, list[Binding]]]:
        """Every screen's and widget's bindings (found by ``keyed_classes``, not listed by hand), the app's first,
        for the help and for checking the key map's ids."""
        return [("everywhere", list(type(self).BINDINGS)),
                *[(group_name(cls), list(cls.BINDINGS)) for cls in keyed_classes()]]

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_groups(), self.settings.keymap))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Import a folder", "Import DICOM files into this database", self.action_import)
        yield SystemCommand("Open database", "Open, create or switch database", self.action_databases)
        yield SystemCommand("Settings", "Edit the settings file", self.action_settings)
        yield SystemCommand("Viewer", "The loaded volumes", self.action_viewer)
        yield SystemCommand("Network", "Nodes, echo, query/retrieve, the listener", self.action_network)
        yield SystemCommand("Help: keys", "Every key binding", self.action_help)
        if isinstance(screen, BrowserScreen):
            yield SystemCommand("Load selection", "Load with the default loadables", screen.action_load)
            yield SystemCommand("Examine selection", "List every loadable", screen.action_examine)
            yield SystemCommand("Metadata", "Tags of the selected series", screen.action_metadata)
            yield SystemCommand("Delete selection", "Delete from the database", screen.action_delete)
            yield SystemCommand("Send selection", "C-STORE to a node", screen.action_send)

    # ---- import / delete -------------------------------------------------------------------------------------

    def action_import(self) -> None:
        if self.db is None:
            return

        def done(report) -> None:
            if report is not None:
                self.notify(report.headline(), timeout=8)
                self.browser.reload()

        self.push_screen(ImportScreen(self.db_path, self.settings.import_mode), done)

    def delete_items(self, items: list[Item], description: str) -> None:
        details = delete_plan(self.db, items).details()

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete(items)

        self.push_screen(ConfirmScreen(f"Delete {description} from the database?", details), answer)

    @work(thread=True, exclusive=True, group="delete", exit_on_error=False)
    def _delete(self, items: list[Item]) -> None:
        with DicomDatabase.open(self.db_path, create=False) as db:
            self.post_message(Deleted(db.delete(items)))

    @on(Deleted)
    def _deleted(self, message: Deleted) -> None:
        report = message.report
        self.notify(report.headline(), severity="warning" if report.errors else "information")
        self.browser.reload()

    # ---- network ---------------------------------------------------------------------------------------------

    def action_network(self) -> None:
        if not isinstance(self.screen, NetworkScreen):
            self.push_screen(NetworkScreen())

    def send_items(self, items: list[Item], description: str) -> None:
        from ..core.net.nodes import load_nodes

        try:
            nodes = load_nodes(self.nodes_path)
        except NodeError as exc:
            self.push_screen(MessageScreen("Cannot read the nodes", str(exc)))
            return
        files = instance_files(self.db, items)
        if files:
            self.push_screen(SendScreen(files, description, nodes, self.db.root))

    def toggle_listener(self) -> str:
        """Start our listener into the open database, or stop it; returns what happened, in words."""
        from ..core.forward import load_routes, routes_file
        from ..core.net.forwarder import Forwarding
        from ..core.net.listener import Listener
        from ..core.net.nodes import load_nodes

        if self.listener is not None:
            listener, self.listener = self.listener, None
            self._stop_listener(listener)
            return "Stopping the listener (its open associations finish their writes) …"
        try:
            local = load_nodes(self.nodes_path).local
            # the forwarding rules (routes.toml) apply to what the TUI's listener receives too, as to `listen`'s
            forward = Forwarding(load_routes(), local, nodes=lambda: load_nodes(self.nodes_path),
                                 routes_path=routes_file())
            listener = Listener(self.db_path, local, forward=forward)
            listener.start()
        except (DicomtuiError, OSError) as exc:
            return f"✗ the listener did not start: {exc}"
        self.listener = listener
        return f"Listening as {listener.local.ae_title} on port {listener.port}"

    @work(thread=True, group="listener", exit_on_error=False)
    def _stop_listener(self, listener) -> None:
        listener.stop()  # waits for open associations: not on the UI thread
        self.post_message(ListenerStopped(listener.indexed))

    @on(ListenerStopped)
    def _listener_stopped(self, message: ListenerStopped) -> None:
        self.notify(f"Listener stopped ({counted(message.indexed, 'instance')} received)")

    # ---- metadata --------------------------------------------------------------------------------------------

    def show_metadata(self, series_id: int) -> None:
        files = [Path(f["path"]) for f in instance_files(self.db, [Item(Level.SERIES, series_id)])]
        if files:
            row = self.db.get(Level.SERIES, series_id) or {}
            self.push_screen(MetadataScreen(f"Series {series_label(row)}".rstrip(), files))

    # ---- examine / load --------------------------------------------------------------------------------------

    def examine_series(self, series_ids: list[int]) -> None:
        if series_ids and not self._loading():
            self._examine(series_ids, show=True)

    def load_series(self, series_ids: list[int]) -> None:
        if series_ids and not self._loading():
            self._examine(series_ids, show=False)

    def _loading(self) -> bool:
        """True (and the user told) while an examine or load runs: a second Enter does not load twice."""
        busy = any(not w.is_finished for w in self.workers if w.group in ("examine", "load"))
        if busy:
            self.notify("Still loading the previous selection", severity="warning")
        return busy

    @on(Status)
    def _status(self, message: Status) -> None:
        """What a worker is doing, in the browser's status line."""
        self.browser.busy(message.text)

    def worker_failed(self, _worker) -> None:
        self.browser.update_status()

    @work(thread=True, exclusive=True, group="examine", exit_on_error=False)
    def _examine(self, series_ids: list[int], show: bool) -> None:
        self.post_message(Status(f"examining {len(series_ids)} series …"))
        worker = get_current_worker()
        with DicomDatabase.open(self.db_path, create=False) as db:
            options = ExamineOptions(split_by_time=self.settings.split_by_time)
            loadables = examine_series(db, series_ids, options=options)
            labels = {}
            for sid in series_ids:
                if worker.is_cancelled:
                    return
                row = db.get(Level.SERIES, sid) or {}
                labels[row.get("SeriesInstanceUID")] = series_label(row)
        self.post_message(Examined(loadables, labels, show))

    @on(Examined)
    def _examined(self, message: Examined) -> None:
        if message.show:
            self.push_screen(ExamineScreen(message.loadables, message.labels))
        else:
            self.load_loadables(choose(message.loadables), nothing_selected(message.loadables))

    def load_loadables(self, loadables: list[Loadable], why: str = "") -> None:
        """Load, asking first when a loadable has warnings (as Slicer does). ``why``: why there is nothing to load
        when ``loadables`` is empty (``core.examine.nothing_selected``: what the objects without pixels are)."""
        self.browser.update_status()
        if not loadables:
            said = why and why != nothing_selected([])  # [] gives the sentence that explains nothing
            self.notify(f"Nothing loadable in the selection: {why}" if said else "Nothing loadable in the selection",
                        severity="warning", timeout=10)
            return
        warned = [item for item in loadables if item.warnings]
        if not warned:
            self._load(loadables)
            return
        details = "\n".join(f"{item.name}: {w}" for item in warned for w in item.warnings)

        def answer(yes: bool | None) -> None:
            if yes:
                self._load(loadables)

        self.push_screen(ConfirmScreen("The data has warnings. Load anyway?", details, yes="Load"), answer)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, loadables: list[Loadable]) -> None:
        worker = get_current_worker()
        cancel = threading.Event()  # set when the worker is cancelled (the app quits): the load stops at a slice
        shown = [0.0]  # when progress was last posted: ten updates a second are enough (the rest would coalesce)

        def progress(step: LoadProgress) -> None:
            if worker.is_cancelled:
                cancel.set()
            if time.monotonic() - shown[0] > 0.1 or step.done == step.total:
                shown[0] = time.monotonic()
                self.post_message(Status(step.text()))

        with DicomDatabase.open(self.db_path, create=False) as db:
            report = load_loadables(db, loadables, LoadOptions(regularize=self.settings.regularize),
                                    progress=progress, cancel=cancel)
            items = []
            for loaded in report.loaded:  # one item per loadable: a sequence's volumes, or a per-frame item's images
                item = ViewerItem(loaded.loadable.name, loaded.volumes,
                                  reference_only=not any(loaded.loadable is c for c in report.chosen))
                self.output_stems[item] = output_stem(db, loaded.loadable.series_uid, loaded.loadable.name)
                if loaded.one_by_one:
                    self.one_by_one.add(item)
                items.append(item)
        found = [f"{loaded.loadable.name}: {w}" for loaded in report.loaded for w in loaded.found_warnings]
        self.post_message(VolumesLoaded(items, found))

    @on(VolumesLoaded)
    def _volumes_loaded(self, message: VolumesLoaded) -> None:
        if message.warnings:  # what loading found (a file left out, what regularize did): said once, here
            self.notify("\n".join(message.warnings), title="Loaded with warnings", severity="warning", timeout=15)
        self._loaded(message.items)

    def _loaded(self, items: list[ViewerItem]) -> None:
        self.browser.update_status()
        items, unplaced, show = attach_overlays(self.loaded, items)  # label volumes and doses onto their image
        if unplaced:
            self.notify("\n".join(unplaced), title="Overlays", severity="warning", timeout=10)
        self.loaded.extend(items)
        if isinstance(self.screen, (BrowserScreen, ExamineScreen, ViewerScreen)):
            self.action_viewer(next((n for n, item in enumerate(self.loaded) if item is show), None))
        else:  # the user opened something else meanwhile (import, settings…): not taken away from them
            self.notify(f"Loaded {', '.join(i.name for i in items)}: v opens the viewer")

    def save_item(self, item: ViewerItem) -> None:
        """The save dialog for a viewer item: named from its series, in the default output folder; of an item of
        images one by one (sizes may differ: not one 4D file), the image shown, its number after the name."""
        stem = self.output_stems.get(item) or safe_name(item.name, "volume")
        if item in self.one_by_one:
            number = item.state.time + 1 if item.state else 1
            stem, item = f"{stem}_{number}", ViewerItem(f"{item.name}, {item.volume.name}", [item.volume])
        self.push_screen(SaveScreen(item, stem, default_output_folder()))

    def action_viewer(self, select: int | None = None) -> None:
        if not self.loaded:
            self.notify("Nothing loaded yet: select series and press Enter", severity="warning")
            return
        viewer = next((s for s in self.screen_stack if isinstance(s, ViewerScreen)), None)
        if viewer is None:
            while not isinstance(self.screen, BrowserScreen):
                self.pop_screen()
            self.push_screen(ViewerScreen(self.renderer, select))
        else:
            while self.screen is not viewer:
                self.pop_screen()
            viewer.refresh_list(select)



def _settings_or_default(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except SettingsError:
        return Settings()  # the CLI reports a bad settings file before the TUI starts
