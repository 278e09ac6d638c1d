"""Add or edit a node preset: DIMSE (AE title, host, port, retrieve method, query character set, TLS) and/or
DICOMweb (base URL, authentication: none, HTTP basic with a password file, or a bearer token from a file or an
environment variable); timeout, CA file and verify apply to both. Checked as the CLI's `nodes add` checks it
before it is saved. No secret is typed here or stored: only the path of the file, or the variable's name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from ...core.net.nodes import RETRIEVE_METHODS, NodeError, RemoteNode, validate
from .forms import FIELD_KEYS, field

AUTH_KINDS = [("none", "none"), ("HTTP basic (user + password file)", "basic"),
              ("bearer token (file or environment variable)", "bearer")]
# the fields each authentication kind uses; the others are disabled and not saved
AUTH_FIELDS = {"none": (), "basic": ("n-user", "n-password-file"), "bearer": ("n-token-file", "n-token-env")}


def auth_kind(node: RemoteNode) -> str:
    """How a preset authenticates its DICOMweb requests: "none", "basic" or "bearer"."""
    return "bearer" if node.token_file or node.token_env else "basic" if node.user or node.password_file else "none"


def absolute(path: str) -> str:
    """A secret file's path as stored in the preset: absolute (as the CLI's ``nodes add`` stores it)."""
    return str(Path(path).expanduser().absolute()) if path else ""


class NodeForm(ModalScreen[tuple[str | None, RemoteNode] | None]):
    """Add or edit a node preset; dismissed with (old name, node) once it validates."""

    AUTO_FOCUS = "#n-name"
    BINDINGS = [Binding("escape", "close", "Cancel", id="node_form_close"),
                Binding("ctrl+s", "save", "Save", id="node_form_save"), *FIELD_KEYS]

    def __init__(self, node: RemoteNode | None, taken: set[str]) -> None:
        super().__init__()
        self.node = node
        self.taken = taken

    def compose(self) -> ComposeResult:
        n = self.node or RemoteNode("", "", "", 104)
        # scrolls on a short terminal, but is not a stop of Tab itself: Tab goes field to field
        with VerticalScroll(classes="dialog wide", id="node-form", can_focus=False):
            yield Label("Edit node" if self.node else "Add node", classes="pane-title")
            with Horizontal(classes="row"):
                yield field("Name", Input(n.name, placeholder="e.g. pacs", id="n-name"))
                yield field("AE title", Input(n.ae_title, placeholder="e.g. ORTHANC", id="n-ae"))
                yield field("Host", Input(n.host, placeholder="name or address", id="n-host"))
                yield field("Port", Input(str(n.port), placeholder="104", id="n-port", type="integer"))
            with Horizontal(classes="row"):
                yield field("Retrieve with", Select([(m, m) for m in RETRIEVE_METHODS], value=n.retrieve,
                                                    allow_blank=False, id="n-retrieve"))
                yield field("Query character set", Input(n.charset, placeholder="e.g. ISO_IR 192", id="n-charset"))
                yield field("Timeout (s)", Input(f"{n.timeout:g}", placeholder="30", id="n-timeout",
                                                 type="number"))
            with Horizontal(classes="row"):
                yield field("DICOMweb URL", Input(n.url, placeholder="e.g. https://pacs/dicom-web", id="n-url"))
                yield field("Authentication", Select(AUTH_KINDS, value=auth_kind(n), allow_blank=False,
                                                     id="n-auth"))
            with Horizontal(classes="row"):
                yield field("User", Input(n.user, placeholder="basic", id="n-user"))
                yield field("Password file", Input(n.password_file, placeholder="first line: password",
                                                   id="n-password-file"))
                yield field("Token file", Input(n.token_file, placeholder="first line: token", id="n-token-file"))
                yield field("Token variable", Input(n.token_env, placeholder="e.g. PACS_TOKEN", id="n-token-env"))
            with Horizontal(classes="row"):
                yield field("DICOM TLS", Switch(n.tls, id="n-tls"))
                yield field("Verify the peer's certificate", Switch(n.tls_verify, id="n-verify"))
            with Horizontal(classes="row"):
                yield field("CA file (TLS, HTTPS)", Input(n.tls_ca, placeholder="PEM", id="n-ca"))
                yield field("Client certificate", Input(n.tls_cert, placeholder="PEM", id="n-cert"))
                yield field("Client key", Input(n.tls_key, placeholder="PEM", id="n-key"))
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="n-save")
                yield Button("Cancel (Esc)", id="n-cancel")
            yield Static("", id="n-error")

    def on_mount(self) -> None:
        self._auth_fields()

    @on(Select.Changed, "#n-auth")
    def _auth_fields(self) -> None:
        """Only the fields of the chosen authentication can be typed in."""
        used = AUTH_FIELDS[str(self.query_one("#n-auth", Select).value)]
        for field_id in ("n-user", "n-password-file", "n-token-file", "n-token-env"):
            self.query_one(f"#{field_id}", Input).disabled = field_id not in used

    def value(self, field_id: str) -> str:
        widget = self.query_one(f"#{field_id}", Input)
        return "" if widget.disabled else widget.value.strip()

    def web_fields(self) -> dict[str, str]:
        """The DICOMweb fields as the preset keeps them: the chosen authentication's only, files absolute."""
        kind = str(self.query_one("#n-auth", Select).value)
        url = self.value("n-url")
        if not url:
            return dict.fromkeys(("url", "user", "password_file", "token_file", "token_env"), "")
        if kind == "basic" and not self.value("n-user"):
            raise NodeError("HTTP basic authentication needs a user")
        if kind == "bearer" and not (self.value("n-token-file") or self.value("n-token-env")):
            raise NodeError("a bearer token needs a token file or the name of an environment variable holding it")
        return {"url": url, "user": self.value("n-user"), "password_file": absolute(self.value("n-password-file")),
                "token_file": absolute(self.value("n-token-file")), "token_env": self.value("n-token-env")}

    @on(Button.Pressed, "#n-save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        try:
            name = self.value("n-name")
            if not name or name in self.taken:
                raise NodeError("give the node a name that no other node has")
            node = replace(self.node or RemoteNode(name, "", "", 104), name=name, ae_title=self.value("n-ae"),
                           host=self.value("n-host"), port=int(self.value("n-port") or 0),
                           retrieve=self.query_one("#n-retrieve", Select).value, charset=self.value("n-charset"),
                           timeout=float(self.value("n-timeout") or 30), tls=self.query_one("#n-tls", Switch).value,
                           tls_verify=self.query_one("#n-verify", Switch).value, tls_ca=self.value("n-ca"),
                           tls_cert=self.value("n-cert"), tls_key=self.value("n-key"), **self.web_fields())
            if (node.ae_title or node.port) and not node.host and not node.url:
                raise NodeError("give the host name or address of the node, or a DICOMweb URL")
            if not node.host:  # DICOMweb only: no DIMSE address kept
                node = replace(node, ae_title="", port=0)
            validate(node)
        except (NodeError, ValueError) as exc:
            self.query_one("#n-error", Static).update(f"[b]Not saved[/b]: {exc}")
            return
        self.dismiss((self.node.name if self.node else None, node))

    @on(Button.Pressed, "#n-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
