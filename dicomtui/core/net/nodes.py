"""Our own AE and the remote nodes (presets), kept in ``nodes.toml`` beside the settings file.

A remote node speaks DIMSE (AE title, host, port), DICOMweb (a base URL, PS3.18) or both. On the command line a
node is a preset name, ``AE@host:port`` or a DICOMweb base URL (``http://…`` / ``https://…``). A DICOMweb node's
credentials are never stored: the preset keeps the path of a password or token file, or the name of an
environment variable holding the token (:meth:`RemoteNode.web_credentials` reads them when a request is made).
"""

from __future__ import annotations

import os
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
_URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")



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
    min_free_bytes: int = 1 << 30  # the listener refuses C-STOREs (0xA700) when less is free on its disk

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
    ae_title: str = ""  # DIMSE: empty for a DICOMweb-only node
    host: str = ""
    port: int = 0
    retrieve: str = "move"
    charset: str = "ISO_IR 192"
    timeout: float = 30.0
    tls: bool = False  # DICOM over TLS (PS3.15 B.1): the peer's certificate checked against tls_ca
    tls_ca: str = ""  # CA file to trust (empty: the system's CAs)
    tls_cert: str = ""  # our client certificate, when the peer asks for one
    tls_key: str = ""
    tls_verify: bool = True  # False: encrypt but do not check who the peer is (testing only)
    # DICOMweb (PS3.18): the base URL (QIDO-RS, WADO-RS and STOW-RS below it; empty: no DICOMweb) and how to
    # authenticate: HTTP basic (user + the path of a file holding the password) or a bearer token read from a
    # file or an environment variable. tls_ca / tls_verify / timeout above apply to HTTPS as well.
    url: str = ""
    qido_prefix: str = ""  # path segments between the base URL and the resources, when a service's differ
    wado_prefix: str = ""  # (e.g. "qido-rs"; dicomweb-client's url prefixes); empty: none
    stow_prefix: str = ""
    # extra HTTP headers sent with every request; stored in clear: not for secrets (use the token options)
    headers: dict[str, str] = field(default_factory=dict)
    user: str = ""
    password_file: str = ""
    token_file: str = ""
    token_env: str = ""

    @property
    def dimse(self) -> bool:
        """The node speaks DIMSE (it has an AE title, host and port)."""
        return bool(self.host)

    @property
    def web(self) -> bool:
        """The node speaks DICOMweb (it has a base URL)."""
        return bool(self.url)

    @property
    def address(self) -> str:
        if not self.dimse:
            return self.url
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")

    def web_credentials(self) -> tuple[str, str] | str | None:
        """What to authenticate DICOMweb requests with: (user, password) for HTTP basic, a bearer token (str),
        or None. Read now from the files or the environment variable the preset names. Raises NodeError when
        one is missing or empty (the sentence names the file or variable, never its content)."""
        if self.token_env:
            token = os.environ.get(self.token_env, "").strip()
            if not token:
                raise NodeError(f"node {self.name}: the environment variable {self.token_env} (its bearer token) "
                                f"is not set or empty")
            return token
        if self.token_file:
            return _secret(self.name, self.token_file, "bearer token")
        if self.user:
            return (self.user, _secret(self.name, self.password_file, "password")) if self.password_file \
                else (self.user, "")
        return None

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
        if _URL.match(text):
            return RemoteNode(name=text, url=text)
        match = _LITERAL.match(text)
        if match is None:
            known = ", ".join(sorted(self.remotes)) or "none yet (dicomtui nodes add NAME AE@HOST:PORT)"
            raise NodeError(f"unknown node {text!r}: give a preset name ({known}) or AE@host:port, or a "
                            f"DICOMweb base URL (http://… or https://…)")
        return RemoteNode(name=text, ae_title=match["ae"], host=match["host"], port=int(match["port"]))


def _secret(name: str, path: str, what: str) -> str:
    """The first line of file ``path`` (a password or token), stripped. Raises NodeError."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"node {name}: cannot read its {what} file {path} ({getattr(exc, 'strerror', None) or exc})"
                        ) from None
    secret = text.splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise NodeError(f"node {name}: its {what} file {path} is empty")
    return secret


def nodes_file() -> Path:
    """``nodes.toml`` beside the settings file (see ``core.paths``)."""
    return paths.nodes_file()


def copy_floor(mode: str, path: Path | None = None) -> int:
    """The free-space floor (bytes) an import in ``mode`` keeps on the database's disk: the listener's
    (``min_free_bytes`` in [local] of the nodes file ``path``; its default when that file cannot be read) for
    "copy", none for "link" (nothing is written but the index)."""
    if mode != "copy":
        return 0
    try:
        return load_nodes(path).local.min_free_bytes
    except NodeError:
        return LocalNode().min_free_bytes


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
    """Raise NodeError, naming the field, when the preset cannot be used as written."""
    if not node.dimse and not node.web:
        raise NodeError(f"node {node.name}: give an address AE@HOST:PORT (DIMSE), a DICOMweb URL, or both")
    if node.web:
        validate_web(node)
    if not node.dimse:
        return
    if not 1 <= len(node.ae_title) <= 16 or "\\" in node.ae_title:
        raise NodeError(f"node {node.name}: AE title must be 1 to 16 characters without backslash")
    if not 1 <= node.port <= 65535:
        raise NodeError(f"node {node.name}: port must be 1 to 65535")
    if node.retrieve not in RETRIEVE_METHODS:
        raise NodeError(f"node {node.name}: retrieve must be one of {', '.join(RETRIEVE_METHODS)}")


def validate_web(node: RemoteNode) -> None:
    """The DICOMweb fields: an http(s) URL, at most one way to authenticate, a password file with a user."""
    if not _URL.match(node.url):
        raise NodeError(f"node {node.name}: the DICOMweb URL must start with http:// or https:// ({node.url!r})")
    ways = [flag for flag, value in (("--user/--password-file", node.user or node.password_file),
                                     ("--token-file", node.token_file), ("--token-env", node.token_env)) if value]
    if len(ways) > 1:
        raise NodeError(f"node {node.name}: give one way to authenticate, not {' and '.join(ways)}")
    if node.password_file and not node.user:
        raise NodeError(f"node {node.name}: a password file needs a user (--user)")
    for name in node.headers:
        if name.lower() == "authorization":
            raise NodeError(f"node {node.name}: an Authorization header would be stored in clear: use --token-file "
                            f"or --token-env (or --user with --password-file)")
