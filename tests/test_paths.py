"""User paths in one place; TOML files written atomically."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dicomtui.core import paths
from dicomtui.core.net import nodes


def test_user_paths_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.config_file() == tmp_path / "config" / "dicomtui" / "config.toml"
    assert paths.nodes_file() == tmp_path / "config" / "dicomtui" / "nodes.toml"
    assert paths.default_database() == tmp_path / "data" / "dicomtui" / "db"
    assert nodes.nodes_file() == paths.nodes_file()


def test_write_toml_replaces_the_file_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "new" / "x.toml"
    assert paths.write_toml(target, {"a": 1, "t": {"b": "c"}}) == target
    paths.write_toml(target, {"a": 2})
    assert tomllib.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.toml"]


def test_write_toml_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.toml"
    paths.write_toml(target, {"a": 1})
    with pytest.raises(TypeError):
        paths.write_toml(target, {"a": object()})  # not TOML: nothing is written
    assert tomllib.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.toml"]


def test_nodes_round_trip_through_the_one_writer(tmp_path: Path) -> None:
    saved = nodes.Nodes(nodes.LocalNode(ae_title="ME", port=4242),
                        {"pacs": nodes.RemoteNode("pacs", "ORTHANC", "127.0.0.1", 4242, retrieve="get")})
    path = nodes.save_nodes(saved, tmp_path / "nodes.toml")
    assert nodes.load_nodes(path) == saved
