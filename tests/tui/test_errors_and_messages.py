"""How the TUI reports what its workers tell it: a user error as its sentence, anything else as a bug; progress
messages that coalesce; one redraw of the slice per change of the viewer's state."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from dicomtui.core.errors import LoadError
from dicomtui.core.net.nodes import Nodes, RemoteNode, save_nodes
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.messages import ImportFinished, Progress, Sent, Status
from dicomtui.tui.screens.confirm import MessageScreen
from dicomtui.tui.screens.send import SendScreen
from dicomtui.tui.screens.viewer import ViewerScreen
from dicomtui.tui.widgets.slice_view import SliceView

from .conftest import settle, text

SIZE = (120, 34)


async def _load_the_axial_series(app: DicomTuiApp, pilot) -> None:
    await pilot.press("tab", "tab", "enter")  # the 8-slice axial series, no warnings
    await settle(app, pilot)


async def test_a_user_error_is_shown_as_its_sentence(app: DicomTuiApp, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):
        raise LoadError("IM00001.dcm: the pixel data is JPEG 2000 and no decoder is installed (pip install "
                        "pylibjpeg-openjpeg)")

    monkeypatch.setattr("dicomtui.core.examine.load", refuse)
    async with app.run_test(size=SIZE) as pilot:
        await _load_the_axial_series(app, pilot)
        screen = app.screen
        assert isinstance(screen, MessageScreen)
        assert screen.title_text == "Load failed"
        shown = text(screen.query_one(".details", Static))
        assert shown == ("IM00001.dcm: the pixel data is JPEG 2000 and no decoder is installed (pip install "
                         "pylibjpeg-openjpeg)")
        assert "bug" not in shown and "Traceback" not in shown and "LoadError" not in shown
        await pilot.press("enter")  # acknowledged: back to the browser, its status line no longer busy
        assert "loading" not in text(app.screen.query_one("#status", Static))
        assert app.loaded == []


async def test_anything_else_is_shown_as_a_bug_with_its_traceback(app: DicomTuiApp,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_plugin(*_args, **_kwargs):
        return {}["frames"]  # a KeyError deep in a plugin: a bug, not the user's doing

    monkeypatch.setattr("dicomtui.core.examine.load", broken_plugin)
    async with app.run_test(size=SIZE) as pilot:
        await _load_the_axial_series(app, pilot)
        screen = app.screen
        assert isinstance(screen, MessageScreen)
        assert "bug" in screen.title_text and screen.title_text.startswith("Load failed")
        shown = text(screen.query_one(".details", Static))
        assert shown.startswith("KeyError: 'frames'")
        assert "broken_plugin" in shown and "test_errors_and_messages.py" in shown  # where it broke
        assert "in _load" in shown  # and the TUI's call that led there
        assert "report" in shown


def test_progress_messages_coalesce_and_results_do_not() -> None:
    assert Progress(1, 10).can_replace(Progress(2, 10))
    assert Status("loading 1/2").can_replace(Status("loading 2/2"))
    assert not Progress(1, 10).can_replace(Status("loading"))  # another kind of progress is kept
    assert not Progress(9, 10).can_replace(ImportFinished(report=None))  # the last progress before a result stays
    assert not Sent("host:104", report=None).can_replace(Sent("host:104", report=None))


async def test_one_redraw_per_change_of_the_viewer_state(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await _load_the_axial_series(app, pilot)
        screen = app.screen
        assert isinstance(screen, ViewerScreen)
        view = screen.query_one(SliceView)
        redraws = []
        original = view.redraw
        view.redraw = lambda: (redraws.append(1), original())[1]  # type: ignore[method-assign]
        # each key changes several values at once: window + preset; plane + slice + cursor; zoom + cursor
        for key, expected in [("up", 1), ("2", 1), ("l", 1), ("tab", 1), ("l", 1), ("plus", 1), ("f", 1),
                              ("left", 1), ("end", 1), ("end", 0)]:  # the last slice already: nothing to draw
            redraws.clear()
            await pilot.press(key)
            assert len(redraws) == expected, key
        overlay = text(screen.query_one("#overlay", Static))
        assert "coronal 64/64" in overlay and "zoom" not in overlay


async def test_an_item_shown_again_is_where_it_was_left(app: DicomTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await _load_the_axial_series(app, pilot)
        await pilot.press("up", "up", "2", "tab")  # axial 7/8, second preset, then coronal
        first = app.loaded[0]
        await pilot.press("escape")
        app._loaded([type(first)("Axial again", first.volumes)])  # a second item: shown at its own start
        await pilot.pause()
        screen = app.screen
        overlay = screen.query_one("#overlay", Static)
        assert "Axial again" in text(overlay) and "axial 5/8" in text(overlay)
        screen.refresh_list(select=0)  # back to the first: coronal, the preset, and axial 7/8 behind it
        await pilot.pause()
        preset = first.volume.windows[1]
        labels = "\n".join(screen.view.render_line(y).text for y in range(screen.view.size.height))
        assert "coronal 33/64" in text(overlay) and f"({preset.name})" in labels  # the window: in the corner
        await pilot.press("a")
        assert "axial 7/8" in text(overlay)


async def test_a_send_that_breaks_leaves_the_dialog_closable(db_path: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_send(*_args, **_kwargs):
        raise RuntimeError("association object in a bad state")

    monkeypatch.setattr("dicomtui.core.net.send.send", broken_send)
    save_nodes(Nodes(remotes={"pacs": RemoteNode("pacs", "PACS", "127.0.0.1", 11112)}), tmp_path / "nodes.toml")
    app = DicomTuiApp(db_path, renderer="halfblock", settings_path=tmp_path / "config.toml",
                      nodes_path=tmp_path / "nodes.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab", "tab", "s", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, MessageScreen) and "bug" in app.screen.title_text
        assert "RuntimeError: association object in a bad state" in text(app.screen.query_one(".details", Static))
        await pilot.press("enter")
        assert isinstance(app.screen, SendScreen)
        assert "The send failed" in text(app.screen.query_one("#send-summary", Static))
        await pilot.press("escape")
        assert not isinstance(app.screen, SendScreen)
