"""The core never imports a UI library: every dicomtui.core module is imported in a fresh interpreter."""

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


def test_import_linter_contract_holds() -> None:
    """The same rule as an import-linter contract (pyproject.toml), which also sees imports inside functions."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), str(root / "pyproject.toml")], capture_output=True, text=True,
                         cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout
