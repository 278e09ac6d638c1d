"""Where dicomtui keeps its user files (platformdirs, so XDG on Linux): settings, nodes, the default database;
and the one atomic TOML writer for the two settings files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

APP = "dicomtui"


def config_dir() -> Path:
    """The user's settings folder (``$XDG_CONFIG_HOME/dicomtui``, by default ``~/.config/dicomtui``)."""
    import platformdirs  # imported when first needed: opening a database given by path never needs it

    return platformdirs.user_config_path(APP)


def data_dir() -> Path:
    """The user's data folder (``$XDG_DATA_HOME/dicomtui``, by default ``~/.local/share/dicomtui``)."""
    import platformdirs

    return platformdirs.user_data_path(APP)


def config_file() -> Path:
    """The settings file, ``config.toml`` in :func:`config_dir`."""
    return config_dir() / "config.toml"


def nodes_file() -> Path:
    """Our AE and the remote nodes, ``nodes.toml`` beside the settings file."""
    return config_dir() / "nodes.toml"


def default_database() -> Path:
    """The database folder used when neither ``--db`` nor the settings name one: ``db`` in :func:`data_dir`."""
    return data_dir() / "db"


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as TOML to ``path`` atomically: a temporary file in the same folder, fsync'd, renamed over
    it, so that a reader sees the old file or the new one, never half of one. Creates the folder; returns ``path``.
    Raises OSError (folder not writable, disk full)."""
    import tomli_w

    text = tomli_w.dumps(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
