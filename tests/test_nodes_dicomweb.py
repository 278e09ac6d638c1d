"""DICOMweb presets: a node is DIMSE, DICOMweb or both; credentials are read from a file or an environment
variable when used, and only their path or name is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.errors import NodeError
from dicomtui.core.net.nodes import Nodes, RemoteNode, load_nodes, save_nodes, validate
from tests.test_cli import run


def test_a_node_can_be_dicomweb_only_dimse_only_or_both(tmp_path: Path) -> None:
    web = RemoteNode("web", url="https://pacs.example/dicom-web")
    both = RemoteNode("both", "ORTHANC", "127.0.0.1", 4242, url="http://127.0.0.1:8042/dicom-web")
    dimse = RemoteNode("dimse", "ORTHANC", "127.0.0.1", 4242)
    for node in (web, both, dimse):
        validate(node)
    assert (web.web, web.dimse, both.web, both.dimse, dimse.web, dimse.dimse) == (True, False, True, True, False, True)
    assert web.address == "https://pacs.example/dicom-web"
    path = save_nodes(Nodes(remotes={n.name: n for n in (web, both, dimse)}), tmp_path / "nodes.toml")
    assert load_nodes(path).remotes == {n.name: n for n in (web, both, dimse)}


def test_a_url_on_the_command_line_is_a_dicomweb_node() -> None:
    node = Nodes().resolve("http://127.0.0.1:8042/dicom-web")
    assert node.web and not node.dimse and node.url == "http://127.0.0.1:8042/dicom-web"


@pytest.mark.parametrize(("node", "words"), [
    (RemoteNode("x"), "give an address AE@HOST:PORT"),
    (RemoteNode("x", url="ftp://h/dicom-web"), "must start with http:// or https://"),
    (RemoteNode("x", url="http://h", user="u", password_file="/p", token_env="T"), "one way to authenticate"),
    (RemoteNode("x", url="http://h", token_file="/t", token_env="T"), "one way to authenticate"),
    (RemoteNode("x", url="http://h", password_file="/p"), "a password file needs a user"),
])
def test_web_validation_says_what_is_wrong(node: RemoteNode, words: str) -> None:
    with pytest.raises(NodeError, match=f"node x: .*{words}"):
        validate(node)


def test_credentials_are_read_when_used_never_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    basic = RemoteNode("b", url="http://h", user="alice", password_file=str(secret))
    assert basic.web_credentials() == ("alice", "s3cret")
    monkeypatch.setenv("PACS_TOKEN", "tok")
    assert RemoteNode("t", url="http://h", token_env="PACS_TOKEN").web_credentials() == "tok"
    assert RemoteNode("f", url="http://h", token_file=str(secret)).web_credentials() == "s3cret"
    assert RemoteNode("n", url="http://h").web_credentials() is None
    with pytest.raises(NodeError, match="environment variable NOPE .*not set"):
        RemoteNode("e", url="http://h", token_env="NOPE").web_credentials()
    with pytest.raises(NodeError, match="cannot read its password file"):
        RemoteNode("m", url="http://h", user="u", password_file=str(tmp_path / "missing")).web_credentials()
    text = save_nodes(Nodes(remotes={"b": basic}), tmp_path / "nodes.toml").read_text()
    assert "s3cret" not in text and str(secret) in text


def test_cli_nodes_add_stores_the_url_and_the_secret_paths(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    done = run("nodes", "add", "web", "--url", "http://127.0.0.1:8042/dicom-web/", "--user", "alice",
               "--password-file", str(secret), "--tls-ca", str(tmp_path / "ca.pem"))
    assert done.returncode == 0, done.stderr
    node = load_nodes().remotes["web"]
    assert (node.url, node.user, node.password_file, node.dimse) == (
        "http://127.0.0.1:8042/dicom-web", "alice", str(secret), False)
    assert not node.tls  # --tls-ca with a DICOMweb-only node is for HTTPS, not DICOM TLS
    done = run("nodes", "add", "both", "ORTHANC@127.0.0.1:4242", "--url", "http://127.0.0.1:8042/dicom-web",
               "--token-env", "PACS_TOKEN")
    assert done.returncode == 0, done.stderr
    both = load_nodes().remotes["both"]
    assert (both.ae_title, both.port, both.token_env, both.web) == ("ORTHANC", 4242, "PACS_TOKEN", True)
    assert "s3cret" not in (Path(done.stdout.split("saved ", 1)[1].strip())).read_text()
    listed = run("nodes", "ls").stdout
    assert "dicomweb=http://127.0.0.1:8042/dicom-web" in listed
    assert run("nodes", "add", "bad").returncode == 2


def test_dimse_operations_refuse_a_dicomweb_only_node_in_words() -> None:
    """A NetworkError, which the TUI's network screen shows as it shows any failed operation."""
    from dicomtui.core.errors import NetworkError
    from dicomtui.core.net.query import query

    with pytest.raises(NetworkError, match="node web speaks DICOMweb only .*no DIMSE address"):
        query(RemoteNode("web", url="http://127.0.0.1:9/dicom-web"), "study")


def test_prefixes_and_extra_headers(tmp_path: Path) -> None:
    from dicomtui.core.net.web import WebClient

    node = RemoteNode("p", url="https://pacs.example/dicomweb/", qido_prefix="qido-rs", wado_prefix="/wado-rs/",
                      headers={"X-Tenant": "radiology"})
    validate(node)
    with WebClient(node) as client:
        assert client.url("qido", "studies", "limit=1") == "https://pacs.example/dicomweb/qido-rs/studies?limit=1"
        assert client.url("wado", "studies/1.2") == "https://pacs.example/dicomweb/wado-rs/studies/1.2"
        assert client.url("stow", "studies") == "https://pacs.example/dicomweb/studies"
        assert client.session.headers["X-Tenant"] == "radiology"
    path = save_nodes(Nodes(remotes={"p": node}), tmp_path / "nodes.toml")
    assert load_nodes(path).remotes["p"] == node
    with pytest.raises(NodeError, match="Authorization header would be stored in clear"):
        validate(RemoteNode("a", url="http://h", headers={"authorization": "Bearer x"}))


def test_cli_nodes_add_prefixes_and_headers() -> None:
    done = run("nodes", "add", "p", "--url", "http://127.0.0.1:8080/dcm4chee-arc/aets/DCM4CHEE/rs",
               "--qido-prefix", "q", "--header", "X-Tenant: radiology", "--header", "X-Other=1")
    assert done.returncode == 0, done.stderr
    node = load_nodes().remotes["p"]
    assert (node.qido_prefix, node.headers) == ("q", {"X-Tenant": "radiology", "X-Other": "1"})
    bad = run("nodes", "add", "p", "--url", "http://h", "--header", "nonsense")
    assert bad.returncode == 2 and "NAME:VALUE" in bad.stderr
