"""Screens as users expect them (issue 14, items 10 and 12–15): the help lists every key with real glyphs and its
id in view; the node form has real labels and Tab moves before the next key (in a real terminal, tmux); the
network screen notices nodes the CLI adds and shows dates as the browser; "1 instance"; the database switcher asks
before creating; examine explains its confidence; saving names the file from the series and never overwrites
without asking."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Label, Select, Static, Switch

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine.confidence import SCALE, confidence_sentence, why_not_selected
from dicomtui.core.examine.plugin import CONF_ALL, CONF_DOUBTFUL, CONF_PREFERRED, Loadable
from dicomtui.core.indexer import import_paths
from dicomtui.core.plural import counted
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.core.volume import Volume
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.confirm import ConfirmScreen
from dicomtui.tui.screens.help import binding_rows, key_label, keyed_classes
from dicomtui.tui.screens.network import NetworkScreen, result_cell
from dicomtui.tui.screens.node_form import NodeForm
from dicomtui.tui.screens.save import SaveScreen
from dicomtui.tui.widgets.slice_view import ViewerItem
from dicomtui.tui.widgets.tables import MarkTable

from .conftest import settle, text
from .test_tmux import Tmux, tmux  # noqa: F401 (the fixture: tmux on a private socket)

SIZE = (120, 34)


def screen_text(app: DicomTuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


# ---- help (item 10) -------------------------------------------------------------------------------------------


def test_keys_are_shown_as_the_keyboard_shows_them() -> None:
    assert [key_label(k) for k in ("question_mark", "comma", "slash", "left_square_bracket", "right_square_bracket",
                                   "escape,q", "shift+tab", "ctrl+s", "enter", "plus,equals_sign")] == [
        "?", ",", "/", "[", "]", "Esc q", "shift+Tab", "ctrl+s", "Enter", "+ ="]


def test_the_presets_are_one_line_with_their_numbers() -> None:
    from dicomtui.tui.screens.viewer import ViewerScreen

    rows = binding_rows([("viewer", list(ViewerScreen.BINDINGS))])
    presets = [row for row in rows if row[3].startswith("window_preset")]
    assert len(presets) == 1
    assert presets[0][1] == "1…9" and presets[0][3] == "window_preset_1…9"
    remapped = binding_rows([("viewer", list(ViewerScreen.BINDINGS))], {"window_preset_1": "f1"})
    assert [r[1] for r in remapped if r[3].startswith("window_preset")] == ["f1 2 3 4 5 6 7 8 9"]


def test_every_key_of_every_screen_is_in_the_help() -> None:
    """Generated from the classes' BINDINGS: every binding id of every screen and widget of ours is listed."""
    names = {cls.__name__ for cls in keyed_classes()}
    assert {"BrowserScreen", "MarkTable", "ViewerScreen", "ExamineScreen", "NetworkScreen", "NodeForm", "SaveScreen",
            "DatabasesScreen", "SettingsScreen", "HelpScreen"} <= names
    listed = set()
    for _screen, _keys, _does, ids in binding_rows([(c.__name__, list(c.BINDINGS)) for c in keyed_classes()]):
        if "…" in ids:
            prefix, _, end = ids.rpartition("…")
            stem = prefix.rstrip("0123456789")
            listed |= {f"{stem}{n}" for n in range(int(prefix[len(stem):]), int(end) + 1)}
        else:
            listed.add(ids)
    every = {b.id for cls in keyed_classes() for b in cls.BINDINGS if b.id}
    assert every <= listed, every - listed


async def test_help_shows_glyphs_and_the_id_at_120_columns(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        shown = screen_text(app)
        line = next(line for line in shown.splitlines() if " settings " in line and "everywhere" in line)
        assert " , " in line and "comma" not in line  # the key as typed, then its id, on the screen
        assert "Keys" in shown and "Id" in shown
        table = app.screen.query_one("#help-table", MarkTable)
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        assert "help_close" in text(app.screen.query_one("#help-detail", Static))  # the whole line below


# ---- node form and network screen (item 12) -------------------------------------------------------------------


async def test_every_field_of_the_node_form_has_a_label(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NodeForm)
        fields = list(form.query(Input)) + list(form.query(Select)) + list(form.query(Switch))
        assert len(fields) == 18  # 12 DIMSE + 6 DICOMweb (URL, authentication, user, password/token file, variable)
        for widget in fields:
            labels = [str(label.render()) for label in widget.parent.query(Label)]
            assert labels and labels[0], widget.id
        assert {str(label.render()) for label in form.query(".field-label")} >= {
            "Name", "AE title", "Host", "Port", "Retrieve with", "Timeout (s)", "DICOM TLS", "CA file (TLS, HTTPS)",
            "DICOMweb URL", "Authentication", "User", "Password file", "Token file", "Token variable"}


def test_keys_typed_right_after_tab_land_in_the_next_field_in_tmux(tmux: Tmux, db_path: Path) -> None:  # noqa: F811
    """In a real terminal, keys sent together with Tab (a paste, a fast typist) reach the app in one read: the
    letters after Tab land in the next field, not in the one Tab left."""
    env = {key: os.environ[key] for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    command = " ".join(["exec", "env", "-u", "COLUMNS", "-u", "LINES",
                        *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "dicomtui", "--db", shlex.quote(str(db_path)), "--renderer", "halfblock"])
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "34",
                 *[arg for k, v in env.items() for arg in ("-e", f"{k}={v}")], command)
    tmux.wait("Patients (2)")
    tmux.keys("n")
    tmux.wait("Query (C-FIND")
    tmux.keys("a")
    tmux.wait("AE title")
    # one send-keys: name, Tab, AE title, Tab, host: delivered together
    tmux("send-keys", "-t", "app", "p", "a", "c", "s", "Tab", "T", "H", "E", "M", "Tab", "h", "o", "s", "t")
    tmux.wait(lambda s: "host" in s and "THEM" in s)
    tmux.keys("C-s")
    tmux.wait("Saved node pacs")
    saved = tomllib.loads((Path(env["XDG_CONFIG_HOME"]) / "dicomtui" / "nodes.toml").read_text())
    assert saved["nodes"]["pacs"]["ae_title"] == "THEM" and saved["nodes"]["pacs"]["host"] == "host"


async def test_every_query_field_has_a_label_and_fits_80_columns(app: DicomTuiApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        for widget in [*screen.query(".query-field"), screen.query_one("#q-level")]:
            labels = [str(label.render()) for label in widget.parent.query(".field-label")]
            assert labels and labels[0], widget.id
            assert widget.size.width >= 8, widget.id  # room to see what is typed
        shown = screen_text(app)
        assert "Patient name" in shown and "Description" in shown and "Level" in shown


async def test_the_network_screen_notices_nodes_added_by_the_cli(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        from textual.widgets import DataTable

        table = screen.query_one("#nodes-table", DataTable)
        assert table.row_count == 0
        out = subprocess.run([sys.executable, "-m", "dicomtui", "nodes", "add", "pacs", "PACS@127.0.0.1:11112"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        for _ in range(30):
            await pilot.pause(0.1)
            if table.row_count:
                break
        assert table.row_count == 1 and "PACS@127.0.0.1:11112" in screen_text(app)


def test_network_results_show_dates_as_the_browser_does() -> None:
    assert result_cell("StudyDate", "20240115") == "2024-01-15"
    assert result_cell("StudyDate", None) == "" and result_cell("Images", 3) == "3"


def test_counts_in_words() -> None:
    assert [counted(n, "instance") for n in (0, 1, 2)] == ["0 instances", "1 instance", "2 instances"]
    assert counted(1, "study") == "1 study" and counted(2, "study") == "2 studies"
    assert counted(1, "series") == "1 series" and counted(3, "series") == "3 series"


async def test_one_instance_is_said_so(tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=1))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
    app = DicomTuiApp(tmp_path / "db", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=SIZE):
        assert text(app.screen.query_one("#status", Static)).startswith("1 patient, 1 study, 1 series, 1 instance ")


# ---- databases (item 13) --------------------------------------------------------------------------------------


async def test_the_database_switcher_asks_before_creating_and_says_why(app: DicomTuiApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        field = app.screen.query_one("#database-path", Input)
        field.value = ""
        await pilot.press("enter")
        assert "Nothing opened: type the path" in text(app.screen.query_one("#database-error", Static))

        (tmp_path / "papers").mkdir()
        (tmp_path / "papers" / "notes.txt").write_text("x")
        field.value = str(tmp_path / "papers")
        await pilot.press("enter")
        assert "holds 1 entry and is not a dicomtui database" in text(app.screen.query_one("#database-error",
                                                                                           Static))
        field.value = str(tmp_path / "new")
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen) and "not a database yet" in app.screen.question
        await pilot.press("n")
        assert "Nothing created" in text(app.screen.query_one("#database-error", Static))
        assert not (tmp_path / "new").exists() and app.db.root == tmp_path / "db"
        await pilot.press("enter", "y")
        await pilot.pause()
        assert app.db.root == tmp_path / "new"


# ---- examine (item 14) ----------------------------------------------------------------------------------------


def test_the_confidence_scale_in_words() -> None:
    assert "0.50 clean whole series" in SCALE and "0.40 with warnings" in SCALE
    assert confidence_sentence(CONF_ALL) == "0.50: the whole series as one clean volume: the plain reading"
    whole = Loadable("3: T1", [], "scalar", CONF_DOUBTFUL, ["localizer"], series_uid="1.2")
    part = Loadable("3: T1 (without localizer)", [], "scalar", CONF_PREFERRED, selected=True, series_uid="1.2")
    assert why_not_selected(whole, [whole, part]) == (
        "Not loaded by default: 3: T1 (without localizer) (0.55) is preferred to it (0.40). Space selects it too.")
    assert why_not_selected(part, [whole, part]).startswith("Loaded by default: the most confident of the 2")


async def test_examine_explains_its_confidence(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "end", "e")
        await settle(app, pilot)
        assert text(app.screen.query_one("#confidence-scale", Static)) == SCALE
        said = text(app.screen.query_one("#loadable-warnings", Static))
        assert said.startswith("Confidence 0.40: a reading with warnings") and "only reading" in said


# ---- saving (item 15) -----------------------------------------------------------------------------------------


async def test_save_names_from_the_series_and_never_overwrites_unasked(app: DicomTuiApp, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "enter")  # the 8-slice axial series of J1
        await settle(app, pilot)
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        field = app.screen.query_one("#save-path", Input)
        assert field.value == str(tmp_path / "J1_1_Axial.nii.gz")
        (tmp_path / "J1_1_Axial.nii.gz").write_bytes(b"keep me")
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen) and "exists. Overwrite it?" in app.screen.question
        await pilot.press("n")
        assert field.value == str(tmp_path / "J1_1_Axiala.nii.gz")
        await pilot.press("enter")
        await settle(app, pilot)
        assert (tmp_path / "J1_1_Axial.nii.gz").read_bytes() == b"keep me"
        assert (tmp_path / "J1_1_Axiala.nii.gz").stat().st_size > 1000
        field.value = str(tmp_path / "J1_1_Axial.nii.gz")
        await pilot.press("enter", "y")
        await settle(app, pilot)
        assert (tmp_path / "J1_1_Axial.nii.gz").read_bytes() != b"keep me"  # overwritten when asked


async def test_save_of_an_item_without_a_series_still_gets_a_safe_name(app: DicomTuiApp, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    volume = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4))
    async with app.run_test(size=SIZE) as pilot:
        app.save_item(ViewerItem("../odd: name", [volume]))
        await pilot.pause()
        assert app.screen.query_one("#save-path", Input).value == str(tmp_path / "odd_name.nii.gz")
