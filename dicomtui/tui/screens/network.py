"""Network: node presets (add, edit, remove, echo, doctor), a C-FIND form with results, retrieve of the marked
results, and the listener panel. Every DIMSE exchange runs in a thread worker; Escape cancels a running one."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, ProgressBar, Select, Static, Switch

from ...core.database import DicomDatabase
from ...core.net.nodes import RETRIEVE_METHODS, NodeError, Nodes, RemoteNode, load_nodes, save_nodes, validate
from ..widgets.tables import MarkTable
from .confirm import ShowsWorkerErrors

QUERY_FIELDS = [("q-name", "Patient name", "name"), ("q-id", "Patient ID", "patient_id"),
                ("q-date", "Date (YYYYMMDD-YYYYMMDD)", "date"), ("q-modality", "Modality (CT,MR)", "modality"),
                ("q-accession", "Accession", "accession"), ("q-description", "Description", "description")]
RESULT_COLUMNS = [("Patient", "PatientName"), ("ID", "PatientID"), ("Date", "StudyDate"),
                  ("Description", "Description"), ("Modality", "Modality"), ("Series", "NumberOfStudyRelatedSeries"),
                  ("Images", "Images")]


def result_row(n: int, level: str, answer: dict[str, str]) -> dict[str, str | int]:
    """One C-FIND answer in the result table's columns (study and series answers side by side)."""
    row = {"id": n, **answer}
    if level == "study":
        row["Description"] = answer.get("StudyDescription", "")
        row["Modality"] = answer.get("ModalitiesInStudy", "")
        row["Images"] = answer.get("NumberOfStudyRelatedInstances", "")
        row["uid"] = answer.get("StudyInstanceUID", "")
    else:
        row["Description"] = f"{answer.get('SeriesNumber', '')} {answer.get('SeriesDescription', '')}".strip()
        row["Images"] = answer.get("NumberOfSeriesRelatedInstances", "")
        row["NumberOfStudyRelatedSeries"] = ""
        row["uid"] = answer.get("SeriesInstanceUID", "")
    return row


class NetworkScreen(ShowsWorkerErrors, Screen):
    BINDINGS = [
        Binding("a", "add_node", "Add node", id="node_add"),
        Binding("u", "edit_node", "Edit", id="node_edit", tooltip="Edit the node under the cursor"),
        Binding("x", "remove_node", "Remove", show=False, id="node_remove"),
        Binding("c", "echo", "Echo", id="echo", tooltip="C-ECHO the node under the cursor"),
        Binding("D", "doctor", "Doctor", id="doctor", tooltip="Check the node both ways, in plain words"),
        Binding("f", "query", "Query", id="query", tooltip="C-FIND with the form (Enter in a field does too)"),
        Binding("r", "retrieve", "Retrieve", id="retrieve", tooltip="Retrieve the marked (or highlighted) results"),
        Binding("l", "listener", "Listener", id="listener", tooltip="Start or stop our C-STORE listener"),
        Binding("escape", "cancel_or_back", "Cancel / back", id="network_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.nodes: Nodes = Nodes()
        self.level = "study"
        self.cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="net-top"):
            with Vertical(id="nodes-pane", classes="pane"):
                yield Label("Nodes", classes="pane-title")
                yield DataTable(id="nodes-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="query-pane", classes="pane"):
                yield Label("Query (C-FIND, study root)", classes="pane-title")
                with Horizontal(classes="query-row"):
                    for field_id, label, _ in QUERY_FIELDS[:3]:
                        yield Input(placeholder=label, id=field_id, classes="query-field")
                with Horizontal(classes="query-row"):
                    for field_id, label, _ in QUERY_FIELDS[3:]:
                        yield Input(placeholder=label, id=field_id, classes="query-field")
                    yield Select([("studies", "study"), ("series", "series")], value="study", allow_blank=False,
                                 id="q-level")
                yield MarkTable(RESULT_COLUMNS, id="query-results")
        with Vertical(id="listener-pane", classes="pane"):
            yield Static("", id="listener-status")
            yield DataTable(id="associations", zebra_stripes=True)
        with Horizontal(id="net-work"):
            yield ProgressBar(id="net-progress", show_eta=False)
            yield Static("", id="net-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#nodes-table", DataTable)
        table.add_column("Name", key="name")
        table.add_column("Address", key="address")
        table.add_column("Retrieve", key="retrieve")
        self.query_one("#associations", DataTable).add_columns("Calling AE", "From", "State", "Images", "MB", "Rate")
        self.reload_nodes()
        self.query_one("#net-progress", ProgressBar).display = False
        self.refresh_listener()
        self.set_interval(0.5, self.refresh_listener)
        table.focus()

    # ---- nodes -----------------------------------------------------------------------------------------------

    def reload_nodes(self, select: str | None = None) -> None:
        try:
            self.nodes = load_nodes(self.app.nodes_path)
        except NodeError as exc:
            self.say(f"[b]nodes file[/b]: {exc}")
        table = self.query_one("#nodes-table", DataTable)
        table.clear()
        for name, node in sorted(self.nodes.remotes.items()):
            table.add_row(name, node.address, node.retrieve, key=name)
        if select in self.nodes.remotes:
            table.move_cursor(row=table.get_row_index(select))

    def current_node(self) -> RemoteNode | None:
        table = self.query_one("#nodes-table", DataTable)
        if not table.row_count:
            self.say("No node yet: press a to add one (AE title, host, port).")
            return None
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.nodes.remotes.get(name)

    def action_add_node(self) -> None:
        self.app.push_screen(NodeForm(None, set(self.nodes.remotes)), self._node_saved)

    def action_edit_node(self) -> None:
        node = self.current_node()
        if node is not None:
            self.app.push_screen(NodeForm(node, set(self.nodes.remotes) - {node.name}), self._node_saved)

    def _node_saved(self, result: tuple[str | None, RemoteNode] | None) -> None:
        if result is None:
            return
        old_name, node = result
        if old_name and old_name != node.name:
            self.nodes.remotes.pop(old_name, None)
        self.nodes.remotes[node.name] = node
        save_nodes(self.nodes, self.app.nodes_path)
        self.reload_nodes(select=node.name)
        self.say(f"Saved node {node.name} ({node.address})")

    def action_remove_node(self) -> None:
        node = self.current_node()
        if node is None:
            return
        from .confirm import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.nodes.remotes.pop(node.name, None)
                save_nodes(self.nodes, self.app.nodes_path)
                self.reload_nodes()

        self.app.push_screen(ConfirmScreen(f"Remove node {node.name} ({node.address})?"), answer)

    # ---- echo / doctor ---------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.query_one("#net-message", Static).update(text)

    def busy(self) -> bool:
        """True (and said) while an echo, doctor, query or retrieve runs: one at a time, so that Escape can
        always cancel the one that runs."""
        running = any(not w.is_finished for w in self.workers if w.group == "network")
        if running:
            self.say("Busy with the previous request: Escape cancels it.")
        return running

    def on_unmount(self) -> None:
        self.cancel.set()  # a retrieve still running stops at its next response

    def action_echo(self) -> None:
        node = None if self.busy() else self.current_node()
        if node is not None:
            self.say(f"C-ECHO {node.address} …")
            self._echo(node)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _echo(self, node: RemoteNode) -> None:
        from ...core.net.dimse import echo

        result = echo(node, self.nodes.local)
        self.app.call_from_thread(self.say, ("✓ " if result.ok else "✗ ") + result.message)

    def action_doctor(self) -> None:
        node = None if self.busy() else self.current_node()
        if node is not None:
            self.say(f"Checking {node.address} (network, echo, query, a C-MOVE back to us) …")
            self._doctor(node)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _doctor(self, node: RemoteNode) -> None:
        from ...core.net.dimse import doctor

        with DicomDatabase.open(self.app.db_path) as db:
            checks = doctor(db, node, self.nodes.local)
        marks = {True: "✓", False: "✗", None: "·"}
        text = "\n".join(f"{marks[c.ok]} {c.name}: {c.detail}" for c in checks)
        self.app.call_from_thread(self.say, text)

    # ---- query / retrieve ------------------------------------------------------------------------------------

    def filters(self):
        from ...core.net.dimse import QueryFilters

        values = {attr: self.query_one(f"#{field_id}", Input).value.strip() for field_id, _, attr in QUERY_FIELDS}
        return QueryFilters(**values)

    @on(Input.Submitted, ".query-field")
    def action_query(self) -> None:
        node = None if self.busy() else self.current_node()
        if node is None:
            return
        level = self.query_one("#q-level", Select).value
        self.say(f"C-FIND {level} level at {node.address} …")
        self._query(node, level, self.filters())

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _query(self, node: RemoteNode, level: str, filters) -> None:
        from ...core.net.dimse import DimseError, query

        try:
            answers = query(node, level, filters, self.nodes.local)
        except DimseError as exc:
            self.app.call_from_thread(self.say, f"✗ {exc}")
            return
        self.app.call_from_thread(self._show_results, level, answers)

    def _show_results(self, level: str, answers: list[dict[str, str]]) -> None:
        self.level = level  # what the table holds
        self.query_one("#q-level", Select).value = level
        table = self.query_one("#query-results", MarkTable)
        table.marked.clear()
        table.fill([result_row(n, level, a) for n, a in enumerate(answers)])
        table.focus()
        self.say(f"{len(answers)} {'studies' if level == 'study' else 'series'} found"
                 + ("; mark with space, r retrieves" if answers else ""))

    @on(MarkTable.Selected, "#query-results")
    def _drill_down(self, event: MarkTable.Selected) -> None:
        """Enter on a study answer lists its series (Enter on a series answer does nothing more)."""
        node = self.current_node()
        row = self.query_one("#query-results", MarkTable).rows_by_key.get(event.key)
        if node is None or row is None or self.level != "study" or self.busy():
            return
        from ...core.net.dimse import QueryFilters

        self.say(f"C-FIND the series of {row.get('PatientName', '')} {row.get('StudyDate', '')} …")
        self._query(node, "series", QueryFilters(study_uid=str(row["uid"])))

    def action_retrieve(self) -> None:
        if self.busy():
            return
        node = self.current_node()
        table = self.query_one("#query-results", MarkTable)
        uids = [str(table.rows_by_key[str(i)]["uid"]) for i in table.selection()]
        if node is None or not uids:
            self.say("Query first, then mark results (space) to retrieve.")
            return
        self.cancel.clear()
        self.say(f"{node.retrieve.upper()} of {len(uids)} {self.level} from {node.address} …  Escape cancels")
        self._retrieve(node, uids)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _retrieve(self, node: RemoteNode, uids: list[str]) -> None:
        from ...core.net.dimse import DimseError, retrieve

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, done, total)

        try:
            with DicomDatabase.open(self.app.db_path) as db:
                report = retrieve(db, node, uids, node.retrieve, self.nodes.local, progress, cancel=self.cancel)
        except DimseError as exc:
            self.app.call_from_thread(self.say, f"✗ {exc}")
            return
        head = "Cancelled" if report.cancelled else "Done"
        text = (f"{head}: {report.completed} retrieved, {report.already_here} already here, {report.failed} failed,"
                f" {report.warning} warnings (of {report.requested})")
        self.app.call_from_thread(self.say, "\n".join([text, *report.errors]))

    def _progress(self, done: int, total: int) -> None:
        bar = self.query_one("#net-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(total, 1), progress=done)

    def action_cancel_or_back(self) -> None:
        if any(not w.is_finished for w in self.workers if w.group == "network"):
            self.cancel.set()
            self.say("Cancelling …")
        else:
            self.app.pop_screen()

    # ---- listener --------------------------------------------------------------------------------------------

    def action_listener(self) -> None:
        message = self.app.toggle_listener()
        self.say(message)
        self.refresh_listener()

    def refresh_listener(self) -> None:
        listener = self.app.listener
        local = self.nodes.local
        if listener is None:
            text = (f"Listener stopped (l starts it as {local.ae_title} on {local.bind}:{local.port}"
                    f"{', TLS' if local.tls_cert else ''}{', callers: ' + ' '.join(local.allow) if local.allow else ''})")
        else:
            text = (f"Listener running as {listener.local.ae_title} on {listener.local.bind}:{listener.port}  ·  "
                    f"{listener.indexed} instances indexed into {listener.db_path}  ·  l stops it")
        self.query_one("#listener-status", Static).update(text)
        table = self.query_one("#associations", DataTable)
        rows = listener.associations[-50:] if listener is not None else []
        if table.row_count or rows:
            table.clear()
            for stats in reversed(rows):
                table.add_row(stats.calling_ae, stats.address, stats.ended or "open", str(stats.images),
                              f"{stats.bytes / 1e6:.1f}", f"{stats.rate:.0f}/s")


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


class SendScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Send the browser's selection to a node (C-STORE over one association), with progress and per-instance
    results; Escape cancels between instances."""

    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel / close", id="send_close")]

    def __init__(self, files: list[dict], description: str, nodes: Nodes) -> None:
        super().__init__()
        self.files = files
        self.description = description
        self.nodes = nodes
        self.cancel = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="send-dialog"):
            yield Label(f"Send {self.description} ({len(self.files)} instances) to:")
            yield DataTable(id="send-nodes", cursor_type="row")
            yield ProgressBar(id="send-progress", show_eta=False)
            yield Static("Enter sends to the highlighted node.", id="send-summary")
            yield DataTable(id="send-failures", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#send-nodes", DataTable)
        table.add_columns("Name", "Address")
        for name, node in sorted(self.nodes.remotes.items()):
            table.add_row(name, node.address, key=name)
        if not self.nodes.remotes:
            self.query_one("#send-summary", Static).update("No node yet: add one in the network screen (n, then a).")
        self.query_one("#send-failures", DataTable).display = False
        table.focus()

    @on(DataTable.RowSelected, "#send-nodes")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if not self.running:
            self.running = True
            self._send(self.nodes.remotes[event.row_key.value])

    @work(thread=True, exclusive=True, group="send", exit_on_error=False)
    def _send(self, node: RemoteNode) -> None:
        from ...core.net.dimse import DimseError, send

        class Cancelled(Exception):
            pass

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, done, total)
            if self.cancel.is_set():
                raise Cancelled

        self.app.call_from_thread(self._summary, f"Sending to {node.address} …  Escape cancels")
        try:
            report = send(self.files, node, self.nodes.local, progress)
        except DimseError as exc:
            self.app.call_from_thread(self._done, f"✗ {exc}", [])
            return
        except Cancelled:
            self.app.call_from_thread(self._done, "Cancelled: the association was released; instances sent until "
                                                  "then stay at the peer.", [])
            return
        counts = report.counts
        text = (f"{node.address}: {counts['success']} sent, {counts['warning']} with warnings, "
                f"{counts['failure']} failed" + (f". {report.error}" if report.error else "")
                + "".join(f"\n{note}" for note in report.notes))
        problems = [(i.path, i.category, i.meaning) for i in report.items if i.category != "success"]
        self.app.call_from_thread(self._done, text, problems)

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#send-progress", ProgressBar).update(total=total, progress=done)

    def _summary(self, text: str) -> None:
        self.query_one("#send-summary", Static).update(text)

    def _done(self, text: str, problems: list[tuple[str, str, str]]) -> None:
        self.running = False
        self.query_one("#send-summary", Static).update(text + "\nEscape closes.")
        if problems:
            table = self.query_one("#send-failures", DataTable)
            table.add_columns("File", "Result", "Status")
            table.add_rows(problems)
            table.display = True

    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
        else:
            self.dismiss(None)
