"""Help: every key of every screen, as the keyboard shows it (``?``, ``,``, ``[``), with its id (what the key map
in settings remaps).

The list is generated, never kept by hand: every class of ``dicomtui.tui.screens`` and ``dicomtui.tui.widgets``
that declares ``BINDINGS`` is a group, so a key added to a screen appears here (and in the settings' id check).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..widgets.tables import MarkTable

# Names and order of the groups users look for first; any other class with keys follows under a derived name.
GROUP_NAMES = {"BrowserScreen": "browser", "MarkTable": "tables", "ViewerScreen": "viewer", "SliceView": "viewer",
               "ExamineScreen": "examine", "MetadataScreen": "metadata", "ImportScreen": "import",
               "SaveScreen": "save", "DatabasesScreen": "databases", "SettingsScreen": "settings",
               "NetworkScreen": "network", "NodeForm": "node form", "SendScreen": "send", "ExportScreen": "export",
               "DeidPreviewScreen": "de-identify preview",
               "ConfirmScreen": "confirm", "SaveSeriesScreen": "save series",
               "TagEditorScreen": "tag editor", "PatcherScreen": "patcher", "MessageScreen": "message",
               "HelpScreen": "help"}
PACKAGES = ("dicomtui.tui.screens", "dicomtui.tui.widgets")
KEY_NAMES = {"enter": "Enter", "escape": "Esc", "space": "Space", "tab": "Tab", "backspace": "Backspace",
             "delete": "Del", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "insert": "Ins"}
# the id before the long text: it stays in view at 120 columns; the text is cut (whole below the list)
COLUMNS = [("Screen", "screen"), ("Keys", "keys"), ("Id", "binding_id"), ("Does", "does")]


def group_name(cls: type) -> str:
    """The name a class's keys are listed under: "browser", or from the class name ("FooBarScreen" → "foo bar")."""
    if cls.__name__ in GROUP_NAMES:
        return GROUP_NAMES[cls.__name__]
    words = re.findall(r"[A-Z][a-z0-9]*", cls.__name__.removesuffix("Screen")) or [cls.__name__]
    return " ".join(w.lower() for w in words)


def keyed_classes() -> list[type]:
    """Every class of the TUI's screens and widgets that declares its own ``BINDINGS``, the known ones first (in
    ``GROUP_NAMES``' order), then the others by name."""
    found: dict[str, type] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module_info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{module_info.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and "BINDINGS" in vars(cls):
                    found[cls.__qualname__] = cls
    order = list(GROUP_NAMES)
    return sorted(found.values(), key=lambda c: (order.index(c.__name__) if c.__name__ in order else len(order),
                                                 c.__name__))


def key_label(keys: str) -> str:
    """Keys as the keyboard shows them: "question_mark" → "?", "comma" → ",", "left_square_bracket" → "[",
    "ctrl+s" → "ctrl+s", "shift+tab" → "shift+Tab"; alternatives ("escape,q") joined by spaces."""
    labels = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        shown = KEY_NAMES.get(name) or format_key(name)
        labels.append("+".join([*modifiers, shown]))
    return " ".join(labels)


def _numbered(binding: Binding) -> tuple[str, int] | None:
    """("window_preset_", 3) for a binding whose id ends in a number, else None."""
    match = re.fullmatch(r"(.*?)(\d+)", binding.id or "")
    return (match.group(1), int(match.group(2))) if match else None


def _runs(bindings: Iterable[Binding]) -> list[list[Binding]]:
    """Bindings in runs: consecutive numbered ones (id ``prefix_N``) that do the same thing are one run (the W/L
    presets 1 to 9: one line), every other binding a run of its own."""
    runs: list[list[Binding]] = []
    for b in bindings:
        if not isinstance(b, Binding):
            continue
        last = runs[-1][-1] if runs else None
        here, there = _numbered(b), (_numbered(last) if last is not None else None)
        if (last is not None and here and there and here[0] == there[0] and here[1] == there[1] + 1
                and (b.description, b.tooltip) == (last.description, last.tooltip)):
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def binding_rows(groups: list[tuple[str, list[Binding]]],
                 keymap: dict[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """(screen, keys, what it does, id) per line: the keys as the keyboard shows them (remapped ones as
    remapped); a run of numbered bindings (presets 1 to 9) one line, its keys and ids as a range ("1…9",
    "window_preset_1…9")."""
    keymap = keymap or {}
    rows = []
    for screen, bindings in groups:
        for run in _runs(bindings):
            first, last = run[0], run[-1]
            keys = [key_label(keymap.get(b.id, b.key) if b.id else b.key) for b in run]
            does = first.tooltip or first.description or first.action
            if len(run) == 1:
                rows.append((screen, keys[0], does, first.id or ""))
            else:
                prefix, start = _numbered(first) or ("", 0)
                end = (_numbered(last) or ("", 0))[1]
                shown = f"{keys[0]}…{keys[-1]}" if all(len(k) == 1 for k in keys) else " ".join(keys)
                rows.append((screen, shown, does, f"{prefix}{start}…{end}"))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key; the highlighted line's full text below the list (a long one is cut in the table)."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help_close")]

    def __init__(self, groups: list[tuple[str, list[Binding]]], keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.keymap = keymap
        self.rows = binding_rows(groups, keymap)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full tall"):
            yield Label("Keys: remap any of them in settings (,) by its id; ctrl+p opens the command palette",
                        classes="pane-title")
            yield MarkTable(COLUMNS, mark=None, max_width=None, fit=True, id="help-table")
            yield Static("", id="help-detail", markup=False)  # keys such as [ are not markup

    def on_mount(self) -> None:
        table = self.query_one("#help-table", MarkTable)
        table.fill([dict(zip(("screen", "keys", "does", "binding_id"), row, strict=True), id=n)
                    for n, row in enumerate(self.rows)])
        table.focus()
        self._detail(0)

    @on(MarkTable.Highlighted, "#help-table")
    def _highlighted(self, event: MarkTable.Highlighted) -> None:
        self._detail(event.table.cursor_row)

    def _detail(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            screen, keys, does, binding_id = self.rows[row]
            self.query_one("#help-detail", Static).update(f"{screen}: {keys}  ({binding_id})\n{does}", layout=False)

    def action_close(self) -> None:
        self.dismiss(None)
