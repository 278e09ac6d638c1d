"""The core never imports a UI library (every dicomtui.core module is imported in a fresh interpreter), and the
import-linter contracts of the layers hold."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dicomtui.core


def _core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(dicomtui.core.__path__, "dicomtui.core."))


def test_core_modules_import_no_ui_library() -> None:
    modules = _core_modules()
    assert "dicomtui.core.database" in modules and "dicomtui.core.indexer" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'textual_image'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"dicomtui.core pulled in UI modules: {out.stdout.strip()}"


def test_import_linter_contracts_hold() -> None:
    """The layers of docs/architecture.md as import-linter contracts (pyproject.toml, each with its intent): the
    core is headless and layered, the faces speak to the core only, the SCU and the SCP are independent. It also
    sees imports inside functions. Only the exit code is asserted; the output names any broken import."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache", str(root / "pyproject.toml")], capture_output=True, text=True,
                         cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_front_door_names_the_use_cases_and_loads_nothing_until_asked() -> None:
    """``dicomtui.core`` resolves its use cases lazily: an import worker that imports ``dicomtui.core.header`` does
    not pull in the database or the network, and every front-door name resolves."""
    code = (
        "import sys, dicomtui.core.header\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('dicomtui.core.database', 'dicomtui.core.net',\n"
        "                                                      'dicomtui.core.examine', 'sqlite3')))\n"
        "import dicomtui.core as core\n"
        "missing = [n for n in core.__all__ if getattr(core, n, None) is None]\n"
        "assert sorted(core.__all__) == sorted(core._FRONT_DOOR)\n"
        "print(','.join(heavy), '|', ','.join(missing))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "|", out.stdout
