"""Settings: ``config.toml`` in the user's settings folder (``core.paths``), validated strictly.

What the faces need: the default database folder and import mode, the recent databases list, the examine/load
defaults (split sub-series by time, regularize irregular geometry), the TUI's image renderer and its key map
(binding id → keys, as Textual's ``App.set_keymap`` takes it).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import SettingsError
from .core.levels import ImportMode
from .core.paths import config_file, default_database, write_toml

__all__ = ["KEYS", "RECENT_MAX", "RENDERERS", "Settings", "SettingsError", "config_file", "load_settings",
           "remember_database", "save_settings"]



@dataclass
class Settings:
    database: Path = field(default_factory=default_database)
    import_mode: str = ImportMode.LINK.value
    recent_databases: list[Path] = field(default_factory=list)
    split_by_time: bool = False
    regularize: bool = False
    renderer: str = "auto"
    keymap: dict[str, str] = field(default_factory=dict)


RENDERERS = ("auto", "kitty", "sixel", "halfblock", "unicode")
KEYS = ("database", "import_mode", "recent_databases", "split_by_time", "regularize", "renderer", "keymap")
RECENT_MAX = 10


def load_settings(path: Path | None = None) -> Settings:
    """The settings in ``path`` (default: :func:`config_file`); defaults when it does not exist. Raises
    SettingsError naming the file and the key (invalid TOML, an unknown key, a value of the wrong type)."""
    path = path or config_file()
    settings = Settings()
    if not path.exists():
        return settings
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - set(KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "database" in data:
        if not isinstance(data["database"], str):
            raise SettingsError(f"{path}: 'database' must be a folder path (a string)")
        settings.database = Path(data["database"]).expanduser()
    if "import_mode" in data:
        if data["import_mode"] not in tuple(ImportMode):
            raise SettingsError(f"{path}: 'import_mode' must be one of {', '.join(ImportMode)}")
        settings.import_mode = data["import_mode"]
    if "recent_databases" in data:
        recent = data["recent_databases"]
        if not isinstance(recent, list) or not all(isinstance(p, str) for p in recent):
            raise SettingsError(f"{path}: 'recent_databases' must be a list of folder paths")
        settings.recent_databases = [Path(p).expanduser() for p in recent]
    for key in ("split_by_time", "regularize"):
        if key in data:
            if not isinstance(data[key], bool):
                raise SettingsError(f"{path}: '{key}' must be true or false")
            setattr(settings, key, data[key])
    if "renderer" in data:
        if data["renderer"] not in RENDERERS:
            raise SettingsError(f"{path}: 'renderer' must be one of {', '.join(RENDERERS)}")
        settings.renderer = data["renderer"]
    if "keymap" in data:
        keymap = data["keymap"]
        if not isinstance(keymap, dict) or not all(isinstance(v, str) and v for v in keymap.values()):
            raise SettingsError(f"{path}: 'keymap' must be a table of binding id = \"keys\" (e.g. quit = \"ctrl+q\")")
        settings.keymap = dict(keymap)
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings file atomically (a temporary file renamed over it); returns its path."""
    path = path or config_file()
    data = {
        "database": str(settings.database), "import_mode": settings.import_mode,
        "recent_databases": [str(p) for p in settings.recent_databases[:RECENT_MAX]],
        "split_by_time": settings.split_by_time, "regularize": settings.regularize, "renderer": settings.renderer,
    }
    if settings.keymap:
        data["keymap"] = dict(settings.keymap)
    return write_toml(path, data)


def remember_database(settings: Settings, folder: Path) -> None:
    """Put ``folder`` first in the recent databases list (each folder once, at most RECENT_MAX)."""
    folder = Path(folder).expanduser().absolute()
    settings.recent_databases = [folder] + [p for p in settings.recent_databases if p != folder][: RECENT_MAX - 1]
