"""Shared fixtures: an isolated user environment, generated DICOM data, and real peer programs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.synth import SeriesSpec, write_series

REQUIRE_PEERS = os.environ.get("DICOMTUI_REQUIRE_PEERS") == "1"


def require_program(name: str, package: str) -> str:
    """The path of peer program ``name``; skip the test when it is missing, fail instead in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package}: apt-get install {package})"
        if REQUIRE_PEERS:
            pytest.fail(f"DICOMTUI_REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and the default database live in a temp folder, never in the real user's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


@pytest.fixture
def db(tmp_path: Path):
    database = DicomDatabase.open(tmp_path / "db")
    yield database
    database.close()


@pytest.fixture
def series_folder(tmp_path: Path) -> Path:
    """One patient, one study, two series of 10 and 5 slices (64×64)."""
    folder = tmp_path / "input"
    write_series(folder / "a", SeriesSpec(series_number=1, slices=10))
    write_series(folder / "b", SeriesSpec(series_number=2, slices=5, modality="CT", series_description="Coronal"))
    return folder
