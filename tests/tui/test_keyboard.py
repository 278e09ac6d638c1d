"""Keyboard habits of the browser (issue 14, items 9 and 11): Tab moves table to table and never into a filter box,
filters only through /, 1 2 3 focus a pane, the focused pane is always marked; at 80×24 columns fit (no column cut
to a stump), panes share width by content, and the footer keeps Help and Quit."""

from __future__ import annotations

from textual.widgets import Input

from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.browser import pane_widths
from dicomtui.tui.widgets.tables import MarkTable, fit_widths

from .conftest import settle


def focused_id(app: DicomTuiApp) -> str | None:
    return app.screen.focused.id if app.screen.focused is not None else None


async def test_tab_and_shift_tab_go_table_to_table(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        seen = [focused_id(app)]
        for _ in range(3):
            await pilot.press("tab")
            seen.append(focused_id(app))
        assert seen == ["patient-table", "study-table", "series-table", "patient-table"]
        await pilot.press("shift+tab")
        assert focused_id(app) == "series-table"
        await pilot.press("shift+tab")
        assert focused_id(app) == "study-table"


async def test_a_letter_after_tab_is_a_command_not_a_filter(app: DicomTuiApp) -> None:
    """The old trap: Tab entered the studies filter, and the next one-letter command was typed into it and emptied
    the pane. Now Tab lands on the studies table, and e examines."""
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("tab", "e")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ExamineScreen"
        await pilot.press("escape")
        assert all(not f.value for f in app.screen.query(Input))


async def test_slash_is_the_only_way_into_a_filter_and_tab_leaves_it(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("slash", *"roe")
        assert focused_id(app) == "patient-filter"
        assert app.screen.query_one("#patient-filter", Input).value == "roe"
        await pilot.press("tab")  # out of the box, to the next table; the filter stays
        assert focused_id(app) == "study-table"
        assert app.screen.query_one("#patient-filter", Input).value == "roe"
        await pilot.pause()
        assert app.screen.query_one("#study-table", MarkTable).row_count == 1  # Roe^Rick's MR study
        await pilot.press("d")  # a command again (delete asks), not a letter in a box
        assert type(app.screen).__name__ == "ConfirmScreen"


async def test_digits_focus_a_pane_and_are_typed_in_a_filter(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("3")
        assert focused_id(app) == "series-table"
        await pilot.press("1")
        assert focused_id(app) == "patient-table"
        await pilot.press("2")
        assert focused_id(app) == "study-table"
        await pilot.press("slash", "2", "0", "2", "4")
        assert app.screen.query_one("#study-filter", Input).value == "2024"  # digits typed, not pane keys
        assert focused_id(app) == "study-filter"


async def test_the_focused_pane_is_always_marked(app: DicomTuiApp) -> None:
    """Its border and its title differ from the other panes' in every state: table, filter box, after a dialog."""
    async with app.run_test(size=(120, 34)) as pilot:

        def marked() -> list[str]:
            levels = []
            for level in ("patient", "study", "series"):
                title = app.screen.query_one(f"#{level}-title")
                pane = app.screen.query_one(f"#{level}-pane")
                if title.styles.background.a > 0 and pane.styles.border_top[0] == "heavy":
                    levels.append(level)
            return levels

        await pilot.pause()
        assert marked() == ["patient"]
        await pilot.press("tab")
        assert marked() == ["study"]
        await pilot.press("slash")
        assert marked() == ["study"]  # the filter box is in the study pane
        await pilot.press("escape", "3", "d", "n")  # a dialog opened and closed
        await pilot.pause()
        assert marked() == ["series"]


def test_fit_widths_squeezes_the_widest_and_hides_whole_columns() -> None:
    assert fit_widths([12, 10, 10], [12, 10, 10], 100) == [12, 10, 10]  # room: unchanged
    assert fit_widths([30, 2, 10], [16, 2, 10], 34) == [18, 2, 10]  # the widest gives way
    assert fit_widths([30, 10, 10], [16, 10, 10], 30) == [18, 10, 0]  # never a stump: the last one goes whole
    assert fit_widths([30, 10], [16, 10], 10) == [10, 0]  # the first column is always shown


def test_panes_share_width_by_content() -> None:
    assert pane_widths(200, 40, 80) == 40 + 80 * 40 // 120  # room for both: the spare shared in proportion
    assert pane_widths(80, 70, 90) == 80 * 70 // 160  # too narrow: shares by what each wants
    assert pane_widths(80, 10, 150) == 10  # a narrow table keeps what it wants
    assert pane_widths(80, 150, 10) == 80 - 24  # the other side keeps its least


async def test_80x24_columns_fit_and_the_footer_keeps_help_and_quit(app: DicomTuiApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.pause(0.1)  # the footer composes its keys after a refresh
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        footer = lines[-1]
        assert "? Help" in footer and "q Quit" in footer, footer
        for level in ("patient", "study", "series"):
            table = app.screen.query_one(f"#{level}-table", MarkTable)
            shown = [(label, w) for (label, _), w in zip(table.columns_spec, table._widths, strict=True) if w]
            # every column shown is at least as wide as its heading or its values: no one-character ID column
            assert all(w >= min(len(label), n) for (label, w), n in zip(shown, table._natural, strict=False)), shown
            assert table.virtual_size.width <= table.scrollable_content_region.width  # no sideways scrolling
        header = next(line for line in lines if "Patient name" in line)
        assert "Patient ID" in header  # whole, not cut
        assert "Synthetic study" in "\n".join(lines)  # the study description whole: the panes shared the width


async def test_120_columns_show_the_footer_whole(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(app, pilot)
        await pilot.pause(0.1)
        footer = app.screen._compositor.render_strips()[-1].text
        assert "/ Search" in footer and "? Help" in footer and "q Quit" in footer, footer


async def test_the_metadata_filter_is_not_a_tab_stop(app: DicomTuiApp) -> None:
    """The same trap on the metadata screen: Tab went into its filter box and n (next file) was typed there."""
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("m")
        await pilot.pause()
        await pilot.press("tab", "n")
        assert focused_id(app) == "metadata-table"
        assert "file 2/8" in str(app.screen.query_one("#metadata-file").render())
        await pilot.press("slash", *"re:a/b")  # / is typed inside the box
        assert app.screen.query_one("#metadata-filter", Input).value == "re:a/b"
        await pilot.press("tab")
        assert focused_id(app) == "metadata-table"


async def test_at_80x24_every_field_of_every_dialog_can_be_reached_and_seen(app: DicomTuiApp) -> None:
    """Settings, databases, the node form, the help and import at 80×24: Tab reaches every field, and the field with the
    focus is on the screen (the dialog scrolls to it rather than cutting it off)."""
    async with app.run_test(size=(80, 24)) as pilot:
        for opener in (["comma"], ["o"], ["n", "a"], ["question_mark"], ["i"]):
            await pilot.press(*opener)
            await pilot.pause()
            dialog = app.screen
            seen = set()
            for _ in range(20):
                focused = dialog.focused
                assert focused is not None, opener
                seen.add(focused.id)
                region = focused.region
                assert region.width > 0 and region.height > 0, (opener, focused.id)
                assert region.y >= 0 and region.bottom <= 24 and region.right <= 80, (opener, focused.id, region)
                await pilot.press("tab")
                await pilot.pause()
            assert len(seen) == len([w for w in dialog.focus_chain]), (opener, seen)
            for _ in range(3):  # the dialog, and the network screen under the node form
                if type(app.screen).__name__ != "BrowserScreen":
                    await pilot.press("escape")
                    await pilot.pause()
            assert type(app.screen).__name__ == "BrowserScreen"


async def test_the_viewer_footer_keeps_help_and_quit_at_80_columns(app: DicomTuiApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("tab", "tab", "enter")
        await settle(app, pilot)
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ViewerScreen"
        footer = app.screen._compositor.render_strips()[-1].text
        assert "? Help" in footer and "q Quit" in footer, footer


async def test_the_network_screen_tabs_between_tables_and_its_form_is_reached_by_slash(app: DicomTuiApp) -> None:
    """The browser's trap on the network screen: Tab went from the nodes into the query form, and the next
    one-letter command (c: echo) was typed into the patient name."""
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert focused_id(app) == "nodes-table"
        await pilot.press("tab")
        assert focused_id(app) == "query-results"
        await pilot.press("tab", "tab")
        assert focused_id(app) == "nodes-table"
        await pilot.press("shift+tab")
        assert focused_id(app) == "associations"
        await pilot.press("slash", *"doe", "tab", *"j1")
        assert app.screen.query_one("#q-name", Input).value == "doe"
        assert app.screen.query_one("#q-id", Input).value == "j1"
        await pilot.press("escape")  # out of the form, still on the network screen
        assert focused_id(app) == "nodes-table" and type(app.screen).__name__ == "NetworkScreen"
        await pilot.press("c")  # a command: no node yet, said so
        assert "No node yet" in str(app.screen.query_one("#net-message").render())
