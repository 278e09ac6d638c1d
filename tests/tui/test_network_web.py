"""The network screen with DICOMweb nodes (PS3.18), driven by the pilot: the node form's URL and authentication
fields (the secret never stored), QIDO-RS query, WADO-RS retrieve with bytes counted and Escape's cancel, web echo
and doctor, errors in words; against Orthanc with its DICOMweb plugin started on 127.0.0.1 by the tests."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Input, Label, Select, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode, load_nodes
from dicomtui.tui.screens.network import NetworkScreen
from dicomtui.tui.screens.node_form import NodeForm
from dicomtui.tui.widgets.tables import MarkTable
from tests.interop.test_dicomweb import orthanc_dicomweb, study_files, web_study  # noqa: F401 - fixture

from .conftest import settle, text
from .test_network import SIZE, app_with_nodes


def message(screen) -> str:
    return text(screen.query_one("#net-message", Static))


async def fill(pilot, screen, values: dict[str, str]) -> None:
    """Type the form's fields (the authentication Select first, so that its fields are enabled)."""
    if "#n-auth" in values:
        screen.query_one("#n-auth", Select).value = values.pop("#n-auth")
        await pilot.pause()
    for field, value in values.items():
        screen.query_one(field, Input).value = value


async def test_the_node_form_adds_a_dicomweb_node_and_stores_no_secret(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw.txt").write_text("sëcret-Pa55\n")
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "a")
        form = app.screen
        assert isinstance(form, NodeForm)
        assert form.query_one("#n-user", Input).disabled  # authentication "none": its fields cannot be typed in
        await fill(pilot, form, {"#n-name": "web", "#n-port": "", "#n-url": "ftp://127.0.0.1/dicom-web"})
        await pilot.press("ctrl+s")
        assert "must start with http:// or https://" in text(form.query_one("#n-error", Static))
        await fill(pilot, form, {"#n-auth": "basic", "#n-url": "http://127.0.0.1:8042/dicom-web"})
        assert not form.query_one("#n-user", Input).disabled and form.query_one("#n-token-env", Input).disabled
        await pilot.press("ctrl+s")
        assert "HTTP basic authentication needs a user" in text(form.query_one("#n-error", Static))
        await fill(pilot, form, {"#n-user": "alice", "#n-password-file": "pw.txt"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NetworkScreen)
        stored = (tmp_path / "nodes.toml").read_text()
        assert "sëcret" not in stored  # the path, never the password
        node = load_nodes(tmp_path / "nodes.toml").remotes["web"]
        assert (node.url, node.user, node.password_file) == ("http://127.0.0.1:8042/dicom-web", "alice",
                                                            str(tmp_path / "pw.txt"))
        assert (node.ae_title, node.host, node.port, node.dimse) == ("", "", 0, False)
        assert app.screen.query_one("#nodes-table").get_row_at(0)[1:] == ["http://127.0.0.1:8042/dicom-web", "wado"]
        assert text(app.screen.query_one("#query-title", Label)) == "Query (QIDO-RS)"

        await pilot.press("u")  # to a bearer token in an environment variable: the basic fields are dropped
        form = app.screen
        await fill(pilot, form, {"#n-auth": "bearer"})
        await pilot.press("ctrl+s")
        assert "a bearer token needs a token file or the name of an environment variable" in \
            text(form.query_one("#n-error", Static))
        await fill(pilot, form, {"#n-token-env": "PACS_TOKEN"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = tomllib.loads((tmp_path / "nodes.toml").read_text())["nodes"]["web"]
        assert (saved["token_env"], saved["user"], saved["password_file"]) == ("PACS_TOKEN", "", "")


async def test_a_node_with_both_protocols_is_asked_over_dimse_until_w(tmp_path: Path) -> None:
    node = RemoteNode("both", "ORTHANC", "127.0.0.1", 4242, url="http://127.0.0.1:8042/dicom-web")
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes={"both": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert text(screen.query_one("#query-title", Label)) == "Query (C-FIND, study root)"
        assert screen.query_one("#nodes-table").get_row_at(0)[2] == "move"
        await pilot.press("w")
        assert text(screen.query_one("#query-title", Label)) == "Query (QIDO-RS)"
        assert screen.query_one("#nodes-table").get_row_at(0)[2] == "wado"
        assert "over DICOMweb" in message(screen)


async def test_query_retrieve_echo_and_doctor_over_dicomweb(tmp_path: Path, web_study) -> None:  # noqa: F811
    node, _rows = web_study
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes={"web": replace(node, name="web")}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.query_one("#q-name", Input).value = "müller"  # non-ASCII: sent with wildcards, matched here
        screen.query_one("#q-name", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        results = screen.query_one("#query-results", MarkTable)
        assert results.row_count == 1 and results.get_row_at(0)[1] == "Müller^Hans"
        assert str(results.get_row_at(0)[7]) == "6"  # Images: NumberOfStudyRelatedInstances
        await pilot.press("enter")  # the study's series, over QIDO-RS too
        await settle(app, pilot)
        assert results.row_count == 2 and screen.level == "series"
        assert sorted(str(results.get_row_at(i)[5]) for i in range(2)) == ["CT", "MR"]
        await pilot.press("ctrl+a", "r")
        await settle(app, pilot)
        done = message(screen)
        assert done.startswith("Done: 6 retrieved, 0 already here, 0 failed") and done.endswith(" kB")
        assert int(done.rsplit(", ", 1)[1].split()[0]) > 6 * 16 * 16 * 2 / 1000  # six 16×16 16-bit images
        with DicomDatabase.open(tmp_path / "db") as db:
            assert db.stats()["instances"] == 6
        screen.query_one("#nodes-table").focus()
        await pilot.press("c")
        await settle(app, pilot)
        assert "✓ " in message(screen) and "answers QIDO-RS" in message(screen)
        await pilot.press("D")
        await settle(app, pilot)
        report = message(screen)
        assert "✗" not in report and "✓ qido" in report and "✓ wado" in report, report


async def test_escape_cancels_a_wado_retrieve_and_keeps_what_arrived(tmp_path: Path, web_study,  # noqa: F811
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen hands its cancel event to the core's WADO-RS retrieve: set (as Escape sets it) when the second
    instance is stored, the retrieve stops there, those two stay indexed; r again fetches only the other four."""
    from dicomtui.core.net import web_wado

    node, _rows = web_study
    real = web_wado.web_retrieve
    seen: list[tuple[int, int, int]] = []

    def escaped_after_two(db, node, uids, progress, cancel, sync, report, *floor):
        def progress_then_escape(done: int, total: int) -> None:
            progress(done, total)
            seen.append((done, total, report.bytes_received))
            if done == 2 and not cancel.is_set() and len(seen) == 2:
                cancel.set()

        return real(db, node, uids, progress_then_escape, cancel, sync, report, *floor)

    monkeypatch.setattr(web_wado, "web_retrieve", escaped_after_two)
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes={"web": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "f")
        await settle(app, pilot)
        await pilot.press("space", "r")  # the whole study in one WADO-RS request
        await settle(app, pilot)
        assert message(screen := app.screen).startswith("Cancelled: 2 retrieved, 0 already here")
        assert seen[0][2] > 0 and seen[1][2] > seen[0][2]  # bytes counted as they arrive
        with DicomDatabase.open(tmp_path / "db") as db:
            assert db.stats()["instances"] == 2
        await pilot.press("r")
        await settle(app, pilot)
        assert message(screen).startswith("Done: 4 retrieved, 2 already here, 0 failed, 0 warnings (of 6)")
        with DicomDatabase.open(tmp_path / "db") as db:
            assert db.stats()["instances"] == 6


async def test_dicomweb_errors_are_sentences(tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("nope\n")
    with orthanc_dicomweb(tmp_path / "orthanc", users={"alice": "Pa55-wörd"}) as anonymous:
        nodes = {"wrong": replace(anonymous, name="wrong", user="alice", password_file=str(tmp_path / "wrong")),
                 "lost": replace(anonymous, name="lost", user="alice", password_file=str(tmp_path / "missing"))}
        app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes=nodes))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")  # "lost" first (sorted)
            screen = app.screen
            await pilot.press("f")
            await settle(app, pilot)
            assert message(screen).startswith("✗ node lost: cannot read its password file")
            await pilot.press("down", "f")
            await settle(app, pilot)
            assert "answered HTTP 401" in message(screen) and "check the node's credentials" in message(screen)
            await pilot.press("c")
            await settle(app, pilot)
            assert message(screen).startswith("✗ ") and "HTTP 401" in message(screen)
            await pilot.press("D")
            await settle(app, pilot)
            assert "✓ network" in message(screen) and "✗ qido" in message(screen)


async def test_send_the_selection_to_a_dicomweb_node_over_stow(db_path: Path, tmp_path: Path) -> None:
    """The send dialog (browser, s) sends to a DICOMweb-only node with STOW-RS: the same counts as C-STORE."""
    from dicomtui.core.net.web import qido
    from dicomtui.tui.screens.send import SendScreen

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        app = app_with_nodes(db_path, tmp_path, Nodes(remotes={"web": replace(node, name="web")}))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("tab", "tab", "s")  # the 8-slice series
            assert isinstance(app.screen, SendScreen)
            await pilot.press("enter")
            await settle(app, pilot)
            assert "8 sent, 0 with warnings, 0 failed" in text(app.screen.query_one("#send-summary", Static))
        assert len(qido(node, "image")) == 8


async def test_the_bytes_of_a_running_wado_retrieve_are_shown_between_instances(tmp_path: Path) -> None:
    """While a WADO-RS retrieve runs, the screen reads its report's byte count twice a second: a large instance
    still arriving shows its bytes before it is stored; nothing is said once none runs."""
    from dicomtui.core.net.web_wado import WebRetrieveReport

    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        screen.web_report, screen.web_counts = WebRetrieveReport("u", "wado", bytes_received=3_456_789), (1, 4)
        screen.show_web_bytes()
        assert message(screen).startswith("WADO-RS: 1 of 4 instances, 3.5 MB received")
        screen.web_report.bytes_received = 12_000
        screen.show_web_bytes()
        assert message(screen).startswith("WADO-RS: 1 of 4 instances, 12 kB received")
        screen.web_report = None
        screen.say("Done")
        screen.show_web_bytes()
        assert message(screen) == "Done"


async def test_a_wado_retrieve_below_the_free_space_floor_keeps_the_disk(tmp_path: Path, web_study) -> None:  # noqa: F811
    """The screen hands the listener's floor (min_free_bytes) to WADO-RS: above the free space, nothing is asked
    and the message names the floor (issue 20)."""
    node, _rows = web_study
    starved = Nodes(LocalNode(min_free_bytes=1 << 62), {"web": node})
    app = app_with_nodes(tmp_path / "db", tmp_path, starved)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "f")
        await settle(app, pilot)
        await pilot.press("space", "r")
        await settle(app, pilot)
        said = message(app.screen)
        assert said.startswith("Done: 0 retrieved"), said
        assert "WADO-RS stopped below the free-space floor: " in said and "nothing was retrieved" in said
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.stats()["instances"] == 0
