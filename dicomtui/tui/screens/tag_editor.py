"""The tag editor (issue 16), in the style of 3D Slicer's export dialog: a patient table, a study table and one
table per series; each row an attribute with the value the files have now beside the field ("3 values" when they
differ: left alone unless typed). Ctrl+R on a row deletes its attribute (again: kept); the "Other attribute" rows
take PATH=VALUE as ``dicomtui edit --set`` does (Enter adds a row: a private creator and its element, say), or a
PATH deleted by Ctrl+R. Ctrl+D shows the dry run's diff (per level, the patients merged or split, the
problems of each value); Apply writes only a plan whose diff was shown for the fields as they are. "As a new
study" copies the files into a new study (new UIDs, the originals kept): the way a series filed under the wrong
patient goes to the right one (its ID and Name rows filled), which the plan refuses for part of a study otherwise.

The screen reads and writes through the core's one edit function (``core.export.edit``), as ``dicomtui edit``
does; its workers open their own connection to the database, as the app's delete does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from ...core.database import DicomDatabase
from ...core.errors import DicomtuiError
from ...core.export.form import FORM_KEYWORDS, FormValues, form_values, shown
from ...core.levels import Item, Level
from ...core.net.nodes import copy_floor
from ...core.text import printable
from .confirm import ShowsWorkerErrors
from .forms import FIELD_KEYS

# What each row is called in the forms (Slicer's export dialog names them so).
ROW_NAMES = {
    "PatientName": "Name", "PatientID": "ID", "PatientBirthDate": "Birth date", "PatientSex": "Sex",
    "StudyDescription": "Description", "StudyDate": "Date", "StudyTime": "Time", "AccessionNumber": "Accession",
    "StudyID": "Study ID", "ReferringPhysicianName": "Referring physician", "SeriesDescription": "Description",
    "SeriesNumber": "Number", "Modality": "Modality", "BodyPartExamined": "Body part", "ProtocolName": "Protocol",
}


@dataclass
class ValuesRead(Message):
    values: FormValues


@dataclass
class Planned(Message):
    plan: Any  # core.export.edit.EditPlan
    key: tuple


@dataclass
class Applied(Message):
    summary: str


@dataclass
class Failed(Message):
    text: str


class TagEditorScreen(ShowsWorkerErrors, ModalScreen[None]):
    """Edit the tags of ``items`` (of one level) of the database at ``db_path``."""

    DEFAULT_CSS = """
    TagEditorScreen #tags-form { height: 1fr; }
    TagEditorScreen .tags-table { height: auto; border: round $primary; padding: 0 1; }
    TagEditorScreen .tags-table-title { text-style: bold; }
    TagEditorScreen .tags-row { height: 1; }
    TagEditorScreen .tags-name { width: 20; }
    TagEditorScreen .tags-now { width: 1fr; color: $text-muted; }
    TagEditorScreen .tags-row Input { width: 1fr; }
    TagEditorScreen #tags-options, TagEditorScreen #tags-buttons { height: auto; }
    TagEditorScreen #tags-diff { height: auto; max-height: 12; overflow-y: auto; }
    TagEditorScreen #tags-check { height: auto; color: $error; }
    TagEditorScreen .tags-row Input.-invalid, TagEditorScreen .tags-other.-invalid { color: $error; }
    TagEditorScreen Input.-deleted { text-style: strike; color: $warning; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="tags_close"),
        # priority: the fields are Inputs, whose own ctrl+d (delete right) would otherwise take the key
        Binding("ctrl+d", "dry_run", "Dry run", id="tags_dry_run", tooltip="Show what Apply would change",
                priority=True),
        Binding("ctrl+s", "apply", "Apply", id="tags_apply", tooltip="Write the changes shown by the dry run"),
        Binding("ctrl+r", "delete_row", "Delete attribute", id="tags_delete",
                tooltip="Delete the attribute of the row in focus from the files (again: keep it)"),
        *FIELD_KEYS,
    ]
    TOOLTIPS = {"tags-new-series": "New Series and SOP Instance UIDs; the originals stay",
                "tags-new-study": "New Study, Series and SOP Instance UIDs, under the patient the ID and Name rows "
                                  "give (how a series filed under the wrong patient moves); the originals stay",
                "tags-utf8": "Change the Specific Character Set to ISO_IR 192 where a value needs it"}

    def __init__(self, db_path: Path, items: list[Item], description: str) -> None:
        super().__init__()
        self.db_path = db_path
        self.items = items
        self.description = description
        self.values: FormValues | None = None
        self.planned: tuple[Any, tuple] | None = None  # (plan, the fields it was made from)
        self._problems: dict[str, list[str]] = {}  # field id → what is wrong with its value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full tall", id="tags-dialog"):
            yield Label(f"Edit the tags of {escape(printable(self.description))}", id="tags-title")
            yield VerticalScroll(Static("Reading the files…", markup=False), id="tags-form")
            with Horizontal(id="tags-options"):
                yield Checkbox("As a new series", id="tags-new-series", compact=True)
                yield Checkbox("As a new study", id="tags-new-study", compact=True)
                yield Checkbox("Allow ISO_IR 192 (UTF-8)", id="tags-utf8", compact=True)
            yield Static("", id="tags-check", markup=False)
            with Horizontal(id="tags-buttons"):
                yield Button("Dry run", id="tags-dry", compact=True)
                yield Button("Apply", variant="primary", id="tags-apply-button", compact=True)
            yield Static("An empty field leaves its attribute as it is. Ctrl+R deletes a row's. Ctrl+D dry run, "
                         "Ctrl+S apply.",
                         id="tags-diff", markup=False)

    def on_mount(self) -> None:
        for widget_id, tip in self.TOOLTIPS.items():
            self.query_one(f"#{widget_id}").tooltip = tip
        self.read_values()

    # not the writers' group: it starts while apply's worker ends, and would cancel it
    @work(thread=True, exclusive=True, group="tag values", exit_on_error=False)
    def read_values(self) -> None:
        with DicomDatabase.open(self.db_path, create=False, read_only=True) as db:
            try:
                self.post_message(ValuesRead(form_values(db, self.items)))
            except DicomtuiError as exc:
                self.post_message(Failed(str(exc)))

    @on(ValuesRead)
    async def _values_read(self, message: ValuesRead) -> None:
        self.values = values = message.values
        form = self.query_one("#tags-form", VerticalScroll)
        await form.remove_children()
        tables = [("Patient", "common", Level.PATIENT, values.common), ("Study", "common", Level.STUDY, values.common)]
        tables += [(f"Series {s.label}", f"s{n}", Level.SERIES, s.values) for n, s in enumerate(values.series)]
        for title, scope, level, found in tables:
            rows = [self._row(scope, keyword, found.get(keyword)) for keyword in FORM_KEYWORDS[level]]
            await form.mount(Vertical(Label(escape(printable(title)), classes="tags-table-title"), *rows,
                                      classes="tags-table"))
        await form.mount(Vertical(Label("Other attribute", classes="tags-table-title"), self._other_row("tags-other"),
                                  id="tags-others", classes="tags-table"))
        first = self.query(Input).first()
        if first is not None:
            first.focus()

    @staticmethod
    def _other_row(widget_id: str) -> Input:
        other = Input(placeholder="PATH=VALUE: a keyword, (gggg,eeee), (0011,1001)LO or (0010,1002)[0].PatientID",
                      id=widget_id, compact=True, classes="tags-other")
        other.tooltip = ("Any other attribute, private tags and sequence items too, set in every file; Enter adds "
                         "a row (a private creator (0011,0010)=NAME, then its element); Ctrl+R deletes PATH")
        return other

    @on(Input.Submitted, ".tags-other")
    async def _add_other(self, event: Input.Submitted) -> None:
        """Enter in the last filled "Other attribute" row adds an empty one below and moves there."""
        others = list(self.query(".tags-other").results(Input))
        if event.value and event.input is others[-1]:
            row = self._other_row(f"tags-other-{len(others)}")
            await self.query_one("#tags-others", Vertical).mount(row)
            row.focus()

    def action_delete_row(self) -> None:
        """The attribute of the focused row deleted from the files (its field shows "(deleted)"), or kept again."""
        field = self.focused
        if not isinstance(field, Input) or field.id is None or not field.id.startswith("tag"):
            return
        deleted = not field.has_class("-deleted")
        field.set_class(deleted, "-deleted")
        if field.has_class("tags-other"):
            field.tooltip = "deleted: the attribute named here is removed" if deleted else None
            return
        field.value = ""
        field.placeholder = "(deleted)" if deleted else "unchanged"

    def _row(self, scope: str, keyword: str, found: Any) -> Horizontal:
        now = printable(shown(found)) if found is not None else "(no file)"
        field = Input(placeholder="unchanged", id=f"tag-{scope}-{keyword}", compact=True)
        field.tooltip = f"{keyword}: now {now}"
        return Horizontal(Label(ROW_NAMES.get(keyword, keyword), classes="tags-name"),
                          Label(escape(now), classes="tags-now", markup=True), field, classes="tags-row")

    @on(Input.Changed, ".tags-row Input")
    def _check_field(self, event: Input.Changed) -> None:
        """Each field checked as it is typed (its VR, the files' character sets); the problems listed below."""
        if self.values is None or event.input.id is None:
            return
        keyword = event.input.id.split("-", 2)[2]
        if event.value and event.input.has_class("-deleted"):  # a value typed: kept and set, not deleted
            event.input.remove_class("-deleted")
            event.input.placeholder = "unchanged"
        problems = self.values.check(keyword, event.value) if event.value else []
        event.input.set_class(bool(problems), "-invalid")
        self._problems[event.input.id] = problems
        self.query_one("#tags-check", Static).update("\n".join(p for ps in self._problems.values() for p in ps))

    @on(Input.Changed, ".tags-other")
    def _check_other(self, event: Input.Changed) -> None:
        """The other attribute's PATH=VALUE read as the CLI's --set reads it, its value checked as the fields'."""
        from ...core.export.tagpath import parse_assignment

        problems: list[str] = []
        if event.value and self.values is not None and not event.input.has_class("-deleted"):
            try:
                path, value = parse_assignment(event.value)
                problems = self.values.check(path.text, value)
            except DicomtuiError as exc:
                problems = [str(exc)]
        event.input.set_class(bool(problems), "-invalid")
        self._problems[event.input.id or "tags-other"] = problems
        self.query_one("#tags-check", Static).update("\n".join(p for ps in self._problems.values() for p in ps))

    # ---- the plan -------------------------------------------------------------------------------------------

    def fields(self) -> tuple[dict[str, str], dict[str, dict[str, str | None]], list[str], bool, bool, bool]:
        """(settings for every file, settings per SeriesInstanceUID (None: deleted there), the paths deleted from
        every file, as a new series, as a new study, ISO_IR 192) as typed."""
        common: dict[str, str] = {}
        per_series: dict[str, dict[str, str | None]] = {}
        delete: list[str] = []
        series = self.values.series if self.values is not None else []
        for field in self.query(".tags-row Input").results(Input):
            deleted = field.has_class("-deleted")
            if not (field.value or deleted) or field.id is None:
                continue
            _, scope, keyword = field.id.split("-", 2)
            if scope == "common":
                if deleted:
                    delete.append(keyword)
                else:
                    common[keyword] = field.value
            else:
                per_series.setdefault(series[int(scope[1:])].uid, {})[keyword] = None if deleted else field.value
        for field in self.query(".tags-other").results(Input):
            path, sep, value = field.value.partition("=")
            if field.has_class("-deleted") and path.strip():
                delete.append(path.strip())
            elif sep:
                common[path.strip()] = value
        return (common, per_series, delete, self.query_one("#tags-new-series", Checkbox).value,
                self.query_one("#tags-new-study", Checkbox).value, self.query_one("#tags-utf8", Checkbox).value)

    def key(self) -> tuple:
        common, per_series, delete, new_series, new_study, utf8 = self.fields()
        return (sorted(common.items()), sorted((k, sorted(v.items(), key=str)) for k, v in per_series.items()),
                delete, new_series, new_study, utf8)

    def say(self, text: str) -> None:
        self.query_one("#tags-diff", Static).update(text)

    @on(Button.Pressed, "#tags-dry")
    def action_dry_run(self) -> None:
        if self.values is None:
            return
        self.say("Planning…")
        self.plan(self.fields(), self.key())

    @work(thread=True, exclusive=True, group="tag editor", exit_on_error=False)
    def plan(self, fields: tuple, key: tuple) -> None:
        from ...core.export.edit import plan_edit

        common, per_series, delete, new_series, new_study, utf8 = fields
        with DicomDatabase.open(self.db_path, create=False, read_only=True) as db:
            try:
                plan = plan_edit(db, self.items, common, per_series=per_series, as_new_series=new_series,
                                 as_new_study=new_study, set_utf8=utf8, delete=delete)
            except DicomtuiError as exc:
                self.post_message(Failed(str(exc)))
                return
        self.post_message(Planned(plan, key))

    @on(Planned)
    def _planned(self, message: Planned) -> None:
        self.planned = (message.plan, message.key)
        lines = [printable(line) for line in message.plan.diff()]
        ending = ("Nothing is written while a problem remains." if message.plan.problems
                  else "Ctrl+S (Apply) writes this.")
        self.say("\n".join([*lines, ending]))

    @on(Button.Pressed, "#tags-apply-button")
    def action_apply(self) -> None:
        if self.planned is None or self.planned[1] != self.key():
            self.action_dry_run()  # the diff first: Apply again writes it
            return
        plan = self.planned[0]
        if plan.problems:
            self.say("Not written: " + " ".join(plan.problems))
            return
        self.planned = None
        self.say("Writing…")
        self.apply(plan)

    @work(thread=True, exclusive=True, group="tag editor", exit_on_error=False)
    def apply(self, plan: Any) -> None:
        from ...core.export.edit import apply_edit

        with DicomDatabase.open(self.db_path, create=False) as db:
            try:
                report = apply_edit(db, plan, min_free=copy_floor("copy", self.app.nodes_path))
            except DicomtuiError as exc:
                self.post_message(Failed(str(exc)))
                return
        self.post_message(Applied(report.summary() + ("\n" + "\n".join(report.errors) if report.errors else "")))

    @on(Applied)
    def _applied(self, message: Applied) -> None:
        self.say(printable(message.summary, multiline=True) + "\nEscape closes.")
        self.read_values()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.say(printable(message.text))

    def action_close(self) -> None:
        self.dismiss(None)
