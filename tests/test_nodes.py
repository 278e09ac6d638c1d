"""Node presets (nodes.toml): a node named on the command line, validation in words, bad files, TLS files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.errors import NodeError
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode, load_nodes, save_nodes, validate


def test_a_node_is_a_preset_name_or_an_address() -> None:
    pacs = RemoteNode("pacs", "ORTHANC", "10.0.0.5", 4242)
    nodes = Nodes(remotes={"pacs": pacs})
    assert nodes.resolve("pacs") is pacs
    literal = nodes.resolve("STORESCP@127.0.0.1:11113")
    assert (literal.ae_title, literal.host, literal.port, literal.retrieve) == ("STORESCP", "127.0.0.1", 11113, "move")
    assert literal.address == "STORESCP@127.0.0.1:11113"


def test_an_unknown_node_names_the_presets_and_the_address_form() -> None:
    with pytest.raises(NodeError, match=r"unknown node 'pcas': give a preset name \(pacs\) or AE@host:port"):
        Nodes(remotes={"pacs": RemoteNode("pacs", "ORTHANC", "10.0.0.5", 4242)}).resolve("pcas")
    with pytest.raises(NodeError, match="none yet"):
        Nodes().resolve("pacs")
    with pytest.raises(NodeError):  # an AE title longer than 16 characters is not an address
        Nodes().resolve("A_VERY_LONG_AE_TITLE@host:104")


@pytest.mark.parametrize(("node", "words"), [
    (RemoteNode("x", "", "h", 104), "AE title must be 1 to 16 characters"),
    (RemoteNode("x", "A" * 17, "h", 104), "AE title must be 1 to 16 characters"),
    (RemoteNode("x", "A\\B", "h", 104), "without backslash"),
    (RemoteNode("x", "AE", "h", 0), "port must be 1 to 65535"),
    (RemoteNode("x", "AE", "h", 65536), "port must be 1 to 65535"),
    (RemoteNode("x", "AE", "h", 104, retrieve="fetch"), "retrieve must be one of move, get"),
])
def test_validation_says_what_is_wrong(node: RemoteNode, words: str) -> None:
    with pytest.raises(NodeError, match=f"node x: .*{words}"):
        validate(node)


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    nodes = load_nodes(tmp_path / "nodes.toml")
    assert nodes.local == LocalNode() and nodes.remotes == {}
    assert (nodes.local.ae_title, nodes.local.port) == ("DICOMTUI", 11112)


@pytest.mark.parametrize("text", [
    "[nodes.pacs\nae_title = 'X'",  # not TOML
    "[nodes.pacs]\nae_title = 'X'\nhost = 'h'\nport = 104\ncolour = 'red'\n",  # a key nodes do not have
    "[local]\nae = 'ME'\n",
    "[nodes.pacs]\nae_title = 'X'\nhost = 'h'\nport = 99999\n",  # read, then validated
])
def test_a_bad_nodes_file_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NodeError) as info:
        load_nodes(path)
    assert str(path) in str(info.value) or "node pacs" in str(info.value)


def test_saved_presets_keep_tls_and_charset(tmp_path: Path) -> None:
    node = RemoteNode("secure", "PACS", "pacs.example", 2762, charset="ISO_IR 100", tls=True, tls_ca="ca.crt")
    path = save_nodes(Nodes(LocalNode(allow=["MODALITY1"]), {"secure": node}), tmp_path / "sub" / "nodes.toml")
    back = load_nodes(path)
    assert back.remotes["secure"] == node and back.local.allow == ["MODALITY1"]
    assert back.remotes["secure"].address == "PACS@pacs.example:2762 (TLS)"


def test_missing_tls_files_are_a_node_error(tmp_path: Path) -> None:
    assert RemoteNode("plain", "AE", "h", 104).ssl_context() is None and LocalNode().ssl_context() is None
    with pytest.raises(NodeError, match="node secure: cannot load its TLS files"):
        RemoteNode("secure", "AE", "h", 2762, tls=True, tls_ca=str(tmp_path / "missing-ca.crt")).ssl_context()
    with pytest.raises(NodeError, match="our listener: cannot load its TLS files"):
        LocalNode(tls_cert=str(tmp_path / "missing.crt")).ssl_context()
