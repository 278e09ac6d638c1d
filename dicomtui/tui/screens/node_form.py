"""Add or edit a node preset: AE title, host, port, retrieve method, query character set, timeout, TLS; checked
as the CLI's `nodes add` checks it before it is saved."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from ...core.net.nodes import RETRIEVE_METHODS, NodeError, RemoteNode, validate
from .forms import FIELD_KEYS, field


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
                yield field("TLS", Switch(n.tls, id="n-tls"))
                yield field("Verify the peer's certificate", Switch(n.tls_verify, id="n-verify"))
            with Horizontal(classes="row"):
                yield field("CA file", Input(n.tls_ca, placeholder="PEM", id="n-ca"))
                yield field("Client certificate", Input(n.tls_cert, placeholder="PEM", id="n-cert"))
                yield field("Client key", Input(n.tls_key, placeholder="PEM", id="n-key"))
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="n-save")
                yield Button("Cancel (Esc)", id="n-cancel")
            yield Static("", id="n-error")

    def value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

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
                           tls_cert=self.value("n-cert"), tls_key=self.value("n-key"))
            if not node.host:
                raise NodeError("give the host name or address of the node")
            validate(node)
        except (NodeError, ValueError) as exc:
            self.query_one("#n-error", Static).update(f"[b]Not saved[/b]: {exc}")
            return
        self.dismiss((self.node.name if self.node else None, node))

    @on(Button.Pressed, "#n-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
