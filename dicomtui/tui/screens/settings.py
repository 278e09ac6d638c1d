"""Settings: the TOML file under the user config folder, edited as a form."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from ...config import RENDERERS, Settings, SettingsError, config_file, save_settings
from ...core.levels import ImportMode
from .forms import FIELD_KEYS, field


class SettingsScreen(ModalScreen[Settings | None]):
    """Dismissed with the saved settings, or None when cancelled."""

    BINDINGS = [Binding("escape", "close", "Cancel", id="settings_close"),
                Binding("ctrl+s", "save", "Save", id="settings_save"), *FIELD_KEYS]

    def __init__(self, settings: Settings, path: Path | None = None, binding_ids: set[str] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.path = path or config_file()
        self.binding_ids = binding_ids  # the key map's ids are checked against these (None: not checked)

    def compose(self) -> ComposeResult:
        s = self.settings
        # scrolls on a short terminal (80×24), to the focused field; not a stop of Tab itself
        with VerticalScroll(classes="dialog wide", id="settings-form", can_focus=False):
            yield Label(f"Settings ({self.path})", classes="pane-title")
            yield field("Default database folder", Input(str(s.database), id="set-database"))
            with Horizontal(classes="row"):
                yield field("Import mode", Select([(m.value, m.value) for m in ImportMode], value=s.import_mode,
                                                  allow_blank=False, id="set-import-mode"))
                yield field("Image renderer", Select([(r, r) for r in RENDERERS], value=s.renderer,
                                                     allow_blank=False, id="set-renderer"))
            with Horizontal(classes="row"):
                yield field("Split sub-series by time", Switch(s.split_by_time, id="set-split-by-time"))
                yield field("Regularize uneven series on load", Switch(s.regularize, id="set-regularize"))
            yield field("Key map: id=keys; … (alternative keys by commas; ? lists the ids)",
                        Input("; ".join(f"{k}={v}" for k, v in s.keymap.items()),
                              placeholder="quit=ctrl+q,q; load=l", id="set-keymap"))
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="settings-save")
                yield Button("Cancel", id="settings-cancel")
            yield Static("The renderer applies from the next start.", id="settings-error")

    def form(self) -> Settings:
        keymap = {}
        for part in self.query_one("#set-keymap", Input).value.split(";"):
            if part.strip():
                key, eq, value = part.partition("=")
                if not eq or not key.strip() or not value.strip():
                    raise SettingsError(f"key map entry {part.strip()!r} is not id=keys")
                if self.binding_ids is not None and key.strip() not in self.binding_ids:
                    raise SettingsError(f"key map: no binding has the id {key.strip()!r} (? lists them)")
                keymap[key.strip()] = value.strip()
        s = self.settings
        return Settings(
            database=Path(self.query_one("#set-database", Input).value.strip() or str(s.database)).expanduser(),
            import_mode=self.query_one("#set-import-mode", Select).value,
            recent_databases=list(s.recent_databases),
            split_by_time=self.query_one("#set-split-by-time", Switch).value,
            regularize=self.query_one("#set-regularize", Switch).value,
            renderer=self.query_one("#set-renderer", Select).value,
            keymap=keymap,
        )

    @on(Button.Pressed, "#settings-save")
    def action_save(self) -> None:
        try:
            settings = self.form()
            save_settings(settings, self.path)
        except (SettingsError, OSError) as exc:
            self.query_one("#settings-error", Static).update(f"[b]Not saved[/b]: {exc}")
            return
        self.dismiss(settings)

    @on(Button.Pressed, "#settings-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
