"""Settings: defaults, a round trip through the file, and every invalid value named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.config import Settings, load_settings, remember_database, save_settings
from dicomtui.core.errors import SettingsError
from dicomtui.core.paths import config_file, default_database


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.toml")
    assert settings == Settings() and settings.database == default_database()
    assert settings.import_mode == "link" and settings.renderer == "auto"


def test_round_trip(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "db", import_mode="copy", split_by_time=True, regularize=True,
                        renderer="sixel", keymap={"quit": "ctrl+q"})
    remember_database(settings, tmp_path / "a")
    remember_database(settings, tmp_path / "b")
    remember_database(settings, tmp_path / "a")
    path = save_settings(settings, tmp_path / "c.toml")
    assert load_settings(path) == settings
    assert settings.recent_databases == [tmp_path / "a", tmp_path / "b"]


def test_the_default_file_is_in_the_user_config_folder() -> None:
    path = save_settings(Settings())
    assert path == config_file() and load_settings() == Settings()


@pytest.mark.parametrize(("text", "key"), [
    ('import_mode = "move"', "import_mode"),
    ("database = 3", "database"),
    ('recent_databases = "x"', "recent_databases"),
    ('split_by_time = "yes"', "split_by_time"),
    ("regularize = 1", "regularize"),
    ('renderer = "ascii"', "renderer"),
    ('keymap = { quit = "" }', "keymap"),
    ("colour = 1", "colour"),
])
def test_an_invalid_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text + "\n")
    with pytest.raises(SettingsError, match=key) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("database = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(path)
