"""Network: node presets (add, edit, remove, echo, doctor), a query form with results, retrieve of the marked
results, and the listener panel. A DIMSE node is asked with C-ECHO / C-FIND / C-MOVE or C-GET, a DICOMweb node
(PS3.18) with QIDO-RS / WADO-RS (``w`` switches a node that speaks both). Every exchange runs in a thread worker;
Escape cancels a running one. The node form is in node_form.py, the send dialog in send.py."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from ...core.database import DicomDatabase
from ...core.errors import NetworkError, NodeError
from ...core.net.nodes import Nodes, RemoteNode, load_nodes, save_nodes
from ...core.paths import nodes_file
from ...core.plural import counted
from ..messages import DoctorChecked, Echoed, Progress, QueryAnswered, Retrieved, Stopped
from ..widgets.keys_footer import KeysFooter
from ..widgets.tables import MarkTable
from ..widgets.thumbnail import SeriesThumbnail
from .confirm import ConfirmScreen, ShowsWorkerErrors
from .forms import field
from .network_listener import STATUS_EVERY, ListenerPanel
from .network_text import (
    MARKS,
    WebProgress,
    doctor_text,
    protocol_words,
    result_cell,
    result_row,
    retrieve_text,
    size_text,
)
from .node_form import NodeForm

if TYPE_CHECKING:  # the operations are imported when first used: ~14 ms a start does not need
    from ...core.net.query import QueryFilters
    from ...core.net.web_wado import WebRetrieveReport

# (field id, label, QueryFilters attribute, example)
QUERY_FIELDS = [("q-name", "Patient name", "name", "Doe^J*"), ("q-id", "Patient ID", "patient_id", ""),
                ("q-date", "Date", "date", "YYYYMMDD-YYYYMMDD"), ("q-modality", "Modality", "modality", "CT,MR"),
                ("q-accession", "Accession", "accession", ""), ("q-description", "Description", "description", "")]
RESULT_COLUMNS = [("Patient", "PatientName"), ("ID", "PatientID"), ("Date", "StudyDate"),
                  ("Description", "Description"), ("Modality", "Modality"), ("Series", "NumberOfStudyRelatedSeries"),
                  ("Images", "Images")]
class NetworkScreen(ListenerPanel, ShowsWorkerErrors, Screen):
    DEFAULT_CSS = """
    #nodes-pane #nodes-table { height: 1fr; }
    """
    BINDINGS = [
        Binding("a", "add_node", "Add node", id="node_add"),
        Binding("u", "edit_node", "Edit", id="node_edit", tooltip="Edit the node under the cursor"),
        Binding("x", "remove_node", "Remove", show=False, id="node_remove"),
        Binding("c", "echo", "Echo", id="echo", tooltip="C-ECHO the node under the cursor"),
        Binding("D", "doctor", "Doctor", id="doctor", tooltip="Check the node both ways, in plain words"),
        Binding("f", "query", "Query", id="query", tooltip="C-FIND with the form (Enter in a field does too)"),
        Binding("r", "retrieve", "Retrieve", id="retrieve", tooltip="Retrieve the marked (or highlighted) results"),
        Binding("l", "listener", "Listener", id="listener", tooltip="Start or stop our C-STORE listener"),
        Binding("w", "via", "DIMSE/web", id="network_via",
                tooltip="For a node that speaks both: ask it over DICOMweb instead of DIMSE, or back"),
        Binding("escape", "cancel_or_back", "Cancel / back", id="network_back"),
        # as in the browser: Tab goes table to table (one-letter keys stay commands), the query form only via /
        # (then Tab goes field to field); priority, so the focus moves before the next keys are forwarded
        Binding("slash", "query_form", "Query form", id="query_form", priority=True,
                tooltip="Type in the query form (Tab: next field, Escape: back to the tables)"),
        Binding("tab", "tab(1)", "Next table", show=False, id="network_next", priority=True),
        Binding("shift+tab", "tab(-1)", "Previous table", show=False, id="network_previous", priority=True),
    ]
    TABLES = ("nodes-table", "query-results", "associations")  # Tab's stops outside the query form

    def __init__(self) -> None:
        super().__init__()
        self.nodes: Nodes = Nodes()
        self.level = "study"
        self.cancel = threading.Event()
        self._nodes_stamp: tuple[int, int] | None = None  # the nodes file as last read
        self.prefer_web = False  # a node with both a DIMSE address and a URL: asked over DICOMweb (w)
        self.web_report: WebRetrieveReport | None = None  # the running WADO-RS retrieve's, read for its bytes
        self.web_counts = (0, 0)  # its instances done, of total
        self.asked: tuple[RemoteNode, bool] | None = None  # the node (and over DICOMweb?) of the running query
        self.results_from: tuple[RemoteNode, bool] | None = None  # ... and of the results shown
        self.status: dict | None = None  # core.status.status() of this database (network_listener.py)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="net-top"):
            with Vertical(id="nodes-pane", classes="pane"):
                yield Label("Nodes", classes="pane-title")
                yield DataTable(id="nodes-table", cursor_type="row", zebra_stripes=True)
                yield SeriesThumbnail(self.app.renderer, id="thumbnail")  # of the result under the cursor
            with Vertical(id="query-pane", classes="pane"):
                yield Label("Query (C-FIND, study root)", classes="pane-title", id="query-title")
                with Horizontal(classes="query-row"):
                    for field_id, label, _, example in QUERY_FIELDS[:3]:
                        yield field(label, Input(placeholder=example, id=field_id, classes="query-field"))
                with Horizontal(classes="query-row"):
                    for field_id, label, _, example in QUERY_FIELDS[3:]:
                        yield field(label, Input(placeholder=example, id=field_id, classes="query-field"))
                    yield field("Level", Select([("studies", "study"), ("series", "series")], value="study",
                                                allow_blank=False, id="q-level"))
                yield MarkTable(RESULT_COLUMNS, fit=True, id="query-results")
        with Vertical(id="listener-pane", classes="pane"):
            yield Static("", id="listener-status")
            yield DataTable(id="associations", zebra_stripes=True)
        with Horizontal(id="net-work"):
            yield ProgressBar(id="net-progress", show_eta=False)
            yield Static("", id="net-message")
        yield KeysFooter()

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
        self.set_interval(1.0, self.notice_nodes)
        self.set_interval(0.5, self.show_web_bytes)  # bytes also while one large instance arrives
        self.read_status()
        self.set_interval(STATUS_EVERY, self.read_status)
        table.focus()

    # ---- nodes -----------------------------------------------------------------------------------------------

    def nodes_stamp(self) -> tuple[int, int] | None:
        """(mtime ns, size) of the nodes file, None when it does not exist: what tells a change by the CLI."""
        try:
            stat = (self.app.nodes_path or nodes_file()).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def notice_nodes(self) -> None:
        """Read the nodes again when another process (``dicomtui nodes add``) changed the file, the cursor kept
        on the node it was on."""
        if self.nodes_stamp() != self._nodes_stamp:
            table = self.query_one("#nodes-table", DataTable)
            current = (table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
                       if table.row_count else None)
            self.reload_nodes(select=current)

    def reload_nodes(self, select: str | None = None) -> None:
        self._nodes_stamp = self.nodes_stamp()
        try:
            self.nodes = load_nodes(self.app.nodes_path)
        except NodeError as exc:
            self.say(f"[b]nodes file[/b]: {exc}")
        table = self.query_one("#nodes-table", DataTable)
        table.clear()
        for name, node in sorted(self.nodes.remotes.items()):
            table.add_row(name, node.address, "wado" if self.uses_web(node) else node.retrieve, key=name)
        if select in self.nodes.remotes:
            table.move_cursor(row=table.get_row_index(select))

    def current_node(self) -> RemoteNode | None:
        table = self.query_one("#nodes-table", DataTable)
        if not table.row_count:
            self.say("No node yet: press a to add one (AE title, host, port, or a DICOMweb URL).")
            return None
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.nodes.remotes.get(name)

    def uses_web(self, node: RemoteNode) -> bool:
        """Whether the screen asks ``node`` over DICOMweb: its only protocol, or both and ``w`` chose DICOMweb."""
        return node.web and (self.prefer_web or not node.dimse)

    @on(DataTable.RowHighlighted, "#nodes-table")
    def _node_highlighted(self) -> None:
        node = self.current_node()
        web = node is not None and self.uses_web(node)
        self.query_one("#query-title", Label).update("Query (QIDO-RS)" if web else "Query (C-FIND, study root)")

    def action_via(self) -> None:
        self.prefer_web = not self.prefer_web
        table = self.query_one("#nodes-table", DataTable)
        self.reload_nodes(select=table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
                          if table.row_count else None)
        self._node_highlighted()
        self.say("Nodes that speak both are asked over " + ("DICOMweb (QIDO-RS, WADO-RS)" if self.prefer_web
                                                             else "DIMSE (C-FIND, C-MOVE/C-GET)") + "; w switches")

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
            web = self.uses_web(node)
            self.say(f"{protocol_words(web)['echo']} {node.url if web else node.address} …")
            self._echo(node, web)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _echo(self, node: RemoteNode, web: bool) -> None:
        if web:
            from ...core.net.web import web_echo

            self.post_message(Echoed(web_echo(node)))  # type: ignore[arg-type]  # ok + summary(), as EchoResult
            return
        from ...core.net.echo import echo

        self.post_message(Echoed(echo(node, self.nodes.local)))

    @on(Echoed)
    def _echoed(self, message: Echoed) -> None:
        self.say(f"{MARKS[message.result.ok]} {message.result.summary()}")

    def action_doctor(self) -> None:
        node = None if self.busy() else self.current_node()
        if node is not None:
            web = self.uses_web(node)
            self.say(f"Checking {node.url if web else node.address} ({protocol_words(web)['doctor']}) …")
            self._doctor(node, web)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _doctor(self, node: RemoteNode, web: bool) -> None:
        if web:
            from ...core.net.web_doctor import web_doctor

            self.post_message(DoctorChecked(web_doctor(node)))
            return
        from ...core.net.doctor import doctor

        with DicomDatabase.open(self.app.db_path) as db:
            self.post_message(DoctorChecked(doctor(db, node, self.nodes.local)))

    @on(DoctorChecked)
    def _doctor_checked(self, message: DoctorChecked) -> None:
        self.say(doctor_text(message.report))

    # ---- query / retrieve ------------------------------------------------------------------------------------

    def filters(self) -> QueryFilters:
        from ...core.net.query import QueryFilters

        values = {attr: self.query_one(f"#{field_id}", Input).value.strip() for field_id, _, attr, _ in QUERY_FIELDS}
        return QueryFilters(**values)

    @on(Input.Submitted, ".query-field")
    def action_query(self) -> None:
        node = None if self.busy() else self.current_node()
        if node is None:
            return
        level = self.query_one("#q-level", Select).value
        web = self.uses_web(node)
        self.say(f"{protocol_words(web)['query']} {level} level at {node.url if web else node.address} …")
        self.asked = (node, web)
        self._query(node, level, self.filters(), web)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _query(self, node: RemoteNode, level: str, filters: QueryFilters, web: bool) -> None:
        from ...core.net.query import query
        from ...core.net.web import qido

        try:
            answers = qido(node, level, filters) if web else query(node, level, filters, self.nodes.local)
        except (NetworkError, NodeError) as exc:  # NodeError: a secret file or variable missing
            self.post_message(Stopped(f"✗ {exc}"))
            return
        self.post_message(QueryAnswered(level, answers))

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self.say(message.text)

    @on(QueryAnswered)
    def _show_results(self, message: QueryAnswered) -> None:
        level, answers = message.level, message.answers
        self.level, self.results_from = level, self.asked  # what the table holds, and from where
        self.query_one("#q-level", Select).value = level
        table = self.query_one("#query-results", MarkTable)
        table.marked.clear()
        table.fill([result_row(n, level, a) for n, a in enumerate(answers)], result_cell)
        table.focus()
        self.want_thumbnail()
        self.say(f"{counted(len(answers), level)} found"
                 + ("; mark with space, r retrieves" if answers else ""))

    @on(MarkTable.Highlighted, "#query-results")
    def want_thumbnail(self) -> None:
        """The thumbnail of the result under the cursor (a study's first series), over DICOMweb only."""
        table = self.query_one("#query-results", MarkTable)
        row = table.rows_by_key.get(table.cursor_key or "")
        node, web = self.results_from if row is not None and self.results_from else (None, False)
        study_uid = str(row.get("StudyInstanceUID", "")) if row is not None else ""
        series_uid = str(row.get("SeriesInstanceUID", "")) if row is not None and self.level == "series" else ""
        self.query_one("#thumbnail", SeriesThumbnail).want(node, web, study_uid, series_uid)

    @on(MarkTable.Selected, "#query-results")
    def _drill_down(self, event: MarkTable.Selected) -> None:
        """Enter on a study answer lists its series (Enter on a series answer does nothing more)."""
        node = self.current_node()
        row = self.query_one("#query-results", MarkTable).rows_by_key.get(event.key)
        if node is None or row is None or self.level != "study" or self.busy():
            return
        from ...core.net.query import QueryFilters

        web = self.uses_web(node)
        self.say(f"{protocol_words(web)['query']} the series of {row.get('PatientName', '')} "
                 f"{row.get('StudyDate', '')} …")
        self.asked = (node, web)
        self._query(node, "series", QueryFilters(study_uid=str(row["uid"])), web)

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
        web = self.uses_web(node)
        method = protocol_words(web)["retrieve"] or f"C-{node.retrieve.upper()}"
        self.say(f"{method} of {counted(len(uids), self.level)} from {node.url if web else node.address} …  "
                 f"Escape cancels")
        self._retrieve(node, uids, web)

    @work(thread=True, exclusive=True, group="network", exit_on_error=False)
    def _retrieve(self, node: RemoteNode, uids: list[str], web: bool) -> None:
        from ...core.net.retrieve import retrieve
        from ...core.net.web_wado import WebRetrieveReport, web_retrieve

        worker = get_current_worker()
        web_report = WebRetrieveReport(node.url, "wado")  # read here for its bytes while it runs
        self.web_report, self.web_counts = (web_report if web else None), (0, 0)

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the screen closed: the retrieve stops at the next response
                self.cancel.set()
            self.post_message(WebProgress(done, total, web_report.bytes_received) if web else Progress(done, total))

        try:
            with DicomDatabase.open(self.app.db_path) as db:
                if web:
                    report = web_retrieve(db, node, uids, progress, self.cancel, self.nodes.local.sync, web_report,
                                          self.nodes.local.min_free_bytes)
                else:
                    report = retrieve(db, node, uids, node.retrieve, self.nodes.local, progress, cancel=self.cancel)
        except (NetworkError, NodeError) as exc:
            self.web_report = None
            self.post_message(Stopped(f"✗ {exc}"))
            return
        self.web_report = None  # before the outcome is said: the timer says nothing more
        self.post_message(Retrieved(report))

    @on(Retrieved)
    def _retrieved(self, message: Retrieved) -> None:
        self.say(retrieve_text(message.report))

    @on(Progress)
    @on(WebProgress)
    def _progress(self, message: Progress | WebProgress) -> None:
        bar = self.query_one("#net-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(message.total, 1), progress=message.done)
        if isinstance(message, WebProgress):
            self.web_counts = (message.done, message.total)
            self.show_web_bytes()

    def show_web_bytes(self) -> None:
        """The running WADO-RS retrieve's instances and bytes received so far (nothing when none runs)."""
        report = self.web_report
        if report is not None:
            done, total = self.web_counts
            self.say(f"WADO-RS: {done} of {counted(total, 'instance')}, {size_text(report.bytes_received)} "
                     f"received …  Escape cancels (what arrived is kept)")

    def in_form(self) -> bool:
        """True when the focus is in the query form (a field, the level, the level's open list)."""
        return self.focused is not None and any(node.has_class("field") for node in self.focused.ancestors_with_self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "query_form" and self.in_form())  # / is typed in a field

    def action_query_form(self) -> None:
        self.set_focus(self.query_one("#q-name", Input))

    def action_tab(self, step: int) -> None:
        if self.in_form():  # field to field, and on from the last field to the results
            self.focus_next() if step > 0 else self.focus_previous()
            return
        here = self.focused.id if self.focused is not None else None
        index = self.TABLES.index(here) if here in self.TABLES else 0
        self.set_focus(self.query_one(f"#{self.TABLES[(index + step) % len(self.TABLES)]}"))

    def action_cancel_or_back(self) -> None:
        """Escape: cancel the running exchange, else leave the query form for the tables, else go back."""
        if any(not w.is_finished for w in self.workers if w.group == "network"):
            self.cancel.set()
            self.say("Cancelling …")
        elif self.in_form():
            self.set_focus(self.query_one("#nodes-table"))
        else:
            self.app.pop_screen()
