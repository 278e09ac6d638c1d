"""Settings: a TOML file under ``platformdirs.user_config_path("dicomtui")``, validated strictly.

What the faces need today: the default database folder and import mode, the recent databases list, and the
examine/load defaults (split sub-series by time, regularize irregular geometry).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .core.database import default_path
from .core.storage import LINK, MODES


class SettingsError(Exception):
    """The settings file exists but is not valid; the message names the file and the key."""


@dataclass
class Settings:
    database: Path = field(default_factory=default_path)
    import_mode: str = LINK
    recent_databases: list[Path] = field(default_factory=list)
    split_by_time: bool = False
    regularize: bool = False


def config_file() -> Path:
    return platformdirs.user_config_path("dicomtui") / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    path = path or config_file()
    settings = Settings()
    if not path.exists():
        return settings
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"database", "import_mode", "recent_databases", "split_by_time", "regularize"}
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "database" in data:
        if not isinstance(data["database"], str):
            raise SettingsError(f"{path}: 'database' must be a folder path (a string)")
        settings.database = Path(data["database"]).expanduser()
    if "import_mode" in data:
        if data["import_mode"] not in MODES:
            raise SettingsError(f"{path}: 'import_mode' must be one of {', '.join(MODES)}")
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
    return settings
