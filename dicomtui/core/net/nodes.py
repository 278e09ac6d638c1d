"""Our own AE and the remote nodes (presets), kept in ``nodes.toml`` beside the settings file.

A node on the command line is a preset name or ``AE@host:port``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import paths
from ..errors import NodeError

RETRIEVE_METHODS = ("move", "get")
# How the listener makes a received instance durable before answering success (see .durable): flush each file
# and its folder, one file-system flush shared by the instances arriving meanwhile, or none (storescp's way)
SYNC_MODES = ("file", "batch", "none")
_LITERAL = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")



@dataclass
class LocalNode:
    ae_title: str = "DICOMTUI"
    port: int = 11112
    bind: str = "0.0.0.0"
    allow: list[str] = field(default_factory=list)  # calling AE titles accepted; empty: any
    max_associations: int = 10  # established associations at once; more are rejected (local limit exceeded)
    max_connections: int = 64  # open connections at once, negotiating ones included; more are closed unanswered
    tls_cert: str = ""  # with tls_key: the listener speaks DICOM over TLS only
    tls_key: str = ""
    tls_ca: str = ""  # when set, callers must present a certificate signed by this CA
    sync: str = "file"  # one of SYNC_MODES

    def ssl_context(self):
        """The server-side SSL context of the listener (None: plain TCP)."""
        if not self.tls_cert:
            return None
        import ssl

        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
            if self.tls_ca:
                context.load_verify_locations(self.tls_ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise NodeError(f"our listener: cannot load its TLS files ({exc})") from None
        return context


@dataclass
class RemoteNode:
    name: str
    ae_title: str
    host: str
    port: int
    retrieve: str = "move"
    charset: str = "ISO_IR 192"
    timeout: float = 30.0
    tls: bool = False  # DICOM over TLS (PS3.15 B.1): the peer's certificate checked against tls_ca
    tls_ca: str = ""  # CA file to trust (empty: the system's CAs)
    tls_cert: str = ""  # our client certificate, when the peer asks for one
    tls_key: str = ""
    tls_verify: bool = True  # False: encrypt but do not check who the peer is (testing only)

    @property
    def address(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")

    def ssl_context(self):
        """The client-side SSL context for this node (None without TLS)."""
        if not self.tls:
            return None
        import ssl

        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca or None)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise NodeError(f"node {self.name}: cannot load its TLS files ({exc})") from None
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass
class Nodes:
    local: LocalNode = field(default_factory=LocalNode)
    remotes: dict[str, RemoteNode] = field(default_factory=dict)

    def resolve(self, text: str) -> RemoteNode:
        """A preset by name, or a node written ``AE@host:port``."""
        if text in self.remotes:
            return self.remotes[text]
        match = _LITERAL.match(text)
        if match is None:
            known = ", ".join(sorted(self.remotes)) or "none yet (dicomtui nodes add NAME AE@HOST:PORT)"
            raise NodeError(f"unknown node {text!r}: give a preset name ({known}) or AE@host:port")
        return RemoteNode(name=text, ae_title=match["ae"], host=match["host"], port=int(match["port"]))


def nodes_file() -> Path:
    """``nodes.toml`` beside the settings file (see ``core.paths``)."""
    return paths.nodes_file()


def load_nodes(path: Path | None = None) -> Nodes:
    path = path or nodes_file()
    if not path.exists():
        return Nodes()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        local = LocalNode(**data.get("local", {}))
        remotes = {name: RemoteNode(name=name, **values) for name, values in data.get("nodes", {}).items()}
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise NodeError(f"{path}: {exc}") from None
    for node in remotes.values():
        validate(node)
    return Nodes(local, remotes)


def save_nodes(nodes: Nodes, path: Path | None = None) -> Path:
    path = path or nodes_file()
    data = {"local": asdict(nodes.local),
            "nodes": {name: {k: v for k, v in asdict(node).items() if k != "name"}
                      for name, node in sorted(nodes.remotes.items())}}
    return paths.write_toml(path, data)


def validate(node: RemoteNode) -> None:
    if not 1 <= len(node.ae_title) <= 16 or "\\" in node.ae_title:
        raise NodeError(f"node {node.name}: AE title must be 1 to 16 characters without backslash")
    if not 1 <= node.port <= 65535:
        raise NodeError(f"node {node.name}: port must be 1 to 65535")
    if node.retrieve not in RETRIEVE_METHODS:
        raise NodeError(f"node {node.name}: retrieve must be one of {', '.join(RETRIEVE_METHODS)}")
