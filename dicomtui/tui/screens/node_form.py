"""Add or edit a node preset: AE title, host, port, retrieve method, query character set, timeout, TLS; checked
as the CLI's `nodes add` checks it before it is saved."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from ...core.net.nodes import RETRIEVE_METHODS, NodeError, RemoteNode, validate


class NodeForm(ModalScreen[tuple[str | None, RemoteNode] | None]):
    """Add or edit a node preset; dismissed with (old name, node) once it validates."""

    BINDINGS = [Binding("escape", "close", "Cancel", id="node_form_close"),
                Binding("ctrl+s", "save", "Save", id="node_form_save")]

    def __init__(self, node: RemoteNode | None, taken: set[str]) -> None:
        super().__init__()
        self.node = node
        self.taken = taken

    def compose(self) -> ComposeResult:
        n = self.node or RemoteNode("", "", "", 104)
        with Vertical(classes="dialog wide", id="node-form"):
            yield Label("Edit node" if self.node else "Add node", classes="pane-title")
            with Horizontal(classes="row"):
                yield Input(n.name, placeholder="name (e.g. pacs)", id="n-name")
                yield Input(n.ae_title, placeholder="AE title", id="n-ae")
                yield Input(n.host, placeholder="host", id="n-host")
                yield Input(str(n.port), placeholder="port", id="n-port", type="integer")
            with Horizontal(classes="row"):
                yield Label("Retrieve ")
                yield Select([(m, m) for m in RETRIEVE_METHODS], value=n.retrieve, allow_blank=False,
                             id="n-retrieve")
                yield Input(n.charset, placeholder="query character set", id="n-charset")
                yield Input(f"{n.timeout:g}", placeholder="timeout s", id="n-timeout", type="number")
            with Horizontal(classes="row"):
                yield Label("TLS ")
                yield Switch(n.tls, id="n-tls")
                yield Label(" verify peer ")
                yield Switch(n.tls_verify, id="n-verify")
            with Horizontal(classes="row"):
                yield Input(n.tls_ca, placeholder="CA file", id="n-ca")
                yield Input(n.tls_cert, placeholder="client certificate", id="n-cert")
                yield Input(n.tls_key, placeholder="client key", id="n-key")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="n-save")
                yield Button("Cancel", id="n-cancel")
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
