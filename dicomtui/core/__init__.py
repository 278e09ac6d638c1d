"""The dicomtui core: the database, import, examine/load, volume writing and DICOM networking, without any UI.

The front door below names the use cases both faces (``dicomtui.cli``, ``dicomtui.tui``) call; the modules hold
the rest (docs/architecture.md has the map). Names resolve lazily (PEP 562): importing one submodule — the import
workers import ``dicomtui.core.header`` thousands of files a second — must not pull in the database, numpy's
volume code or the network stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_FRONT_DOOR = {
    "DicomtuiError": "errors",
    "DicomDatabase": "database",
    "Level": "levels",
    "ImportMode": "levels",
    "run_import": "indexer",
    "ImportReport": "indexer",
    "examine_series": "examine",
    "choose": "examine",
    "load": "examine",
    "load_loadables": "examine",
    "examine_and_load": "examine",
    "write_volume": "volume_io",
}

__all__ = [  # the keys of _FRONT_DOOR, written out for linters and type checkers
    "DicomDatabase", "DicomtuiError", "ImportMode", "ImportReport", "Level", "choose", "examine_and_load",
    "examine_series", "load", "load_loadables", "run_import", "write_volume",
]


def __getattr__(name: str) -> Any:
    module = _FRONT_DOOR.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    from .database import DicomDatabase
    from .errors import DicomtuiError
    from .examine import choose, examine_and_load, examine_series, load, load_loadables
    from .indexer import ImportReport, run_import
    from .levels import ImportMode, Level
    from .volume_io import write_volume
