"""The network screen's thumbnail of the result under the cursor (issue 18), driven by the pilot: the middle
instance rendered by Orthanc's DICOMweb plugin (started on 127.0.0.1 by the test), drawn with the half-block
renderer, cached per series, the fetch for a row the cursor left dropped; a DIMSE node says it has none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dicomtui.core.net.nodes import Nodes
from dicomtui.tui.widgets.tables import MarkTable
from dicomtui.tui.widgets.thumbnail import CAPTION, NO_DIMSE_THUMBNAIL, SeriesThumbnail, drawn_size, fit_cells
from tests.interop.test_dicomweb_rendered import bar_study, bright_band  # noqa: F401 - fixture
from tests.interop.test_orthanc import orthanc  # noqa: F401 - fixture

from .conftest import settle
from .test_network import SIZE, app_with_nodes

pytestmark = pytest.mark.interop


def test_the_thumbnail_keeps_its_aspect_in_each_renderer_s_pixels() -> None:
    assert fit_cells((256, 128), (24, 10), (10, 20)) == (10, 10)  # 128×256 px tall image: 100×200 px of cells
    assert fit_cells((100, 400), (24, 10), (10, 20)) == (24, 3)
    assert drawn_size("halfblock", (10, 10), (10, 20)) == (10, 20)  # two pixels a cell
    assert drawn_size("sixel", (10, 7), (10, 20)) == (100, 138)  # whole bands of six pixels
    assert drawn_size("kitty", (10, 7), (10, 20)) == (100, 140)


async def test_query_results_show_the_rendered_middle_instance(tmp_path: Path, bar_study) -> None:  # noqa: F811
    node, ct, mr = bar_study
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes={"web": replace(node, name="web")}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "f")
        await settle(app, pilot)
        screen = app.screen
        thumbnail = screen.query_one("#thumbnail", SeriesThumbnail)
        assert thumbnail.shown is not None, thumbnail.caption  # the study: its first series, the CT
        assert thumbnail.caption == CAPTION
        assert thumbnail.shown.ndim == 2 and thumbnail.shown.shape[0] % 2 == 0  # half-blocks: two rows a cell
        assert bright_band(thumbnail.shown, 1) == pytest.approx((0.4, 0.6), abs=0.1)  # CT slice 3 of 5
        await pilot.press("enter")  # the study's series
        await settle(app, pilot)
        results = screen.query_one("#query-results", MarkTable)
        assert results.row_count == 2
        by_modality = {str(results.rows_by_key[k]["Modality"]): results.get_row_at(i) for i, k in
                       enumerate(results.rows_by_key)}
        mr_row = list(by_modality).index("MR")
        results.move_cursor(mr_row)
        await settle(app, pilot)
        assert thumbnail.shown is not None and bright_band(thumbnail.shown, 0) == pytest.approx((0.4, 0.6), abs=0.1)
        assert ("web", mr[0]["StudyInstanceUID"], mr[0]["SeriesInstanceUID"]) in thumbnail.cache
        fetched = len(thumbnail.cache)
        results.move_cursor(1 - mr_row)
        await settle(app, pilot)
        results.move_cursor(mr_row)  # back: from the cache, drawn at once, nothing fetched
        await pilot.pause()
        assert thumbnail.shown is not None and bright_band(thumbnail.shown, 0) == pytest.approx((0.4, 0.6), abs=0.1)
        assert not [w for w in thumbnail.workers if not w.is_finished]
        assert len(thumbnail.cache) == fetched == 3  # the study (its first series), each series: once each


async def test_a_fetch_for_a_row_the_cursor_left_is_not_shown(tmp_path: Path, bar_study) -> None:  # noqa: F811
    """Two rows in a row: the first fetch is cancelled (or its answer dropped); the second row's image shows."""
    node, ct, mr = bar_study
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(remotes={"web": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        thumbnail = app.screen.query_one("#thumbnail", SeriesThumbnail)
        thumbnail.want(node, True, ct[0]["StudyInstanceUID"], ct[0]["SeriesInstanceUID"])
        thumbnail.want(node, True, mr[0]["StudyInstanceUID"], mr[0]["SeriesInstanceUID"])
        await settle(app, pilot)
        assert thumbnail.wanted == (node.name, mr[0]["StudyInstanceUID"], mr[0]["SeriesInstanceUID"])
        assert thumbnail.shown is not None and bright_band(thumbnail.shown, 0) == pytest.approx((0.4, 0.6), abs=0.1)


async def test_a_dimse_node_says_there_is_no_thumbnail(tmp_path: Path, orthanc) -> None:  # noqa: F811
    node, local = orthanc
    app = app_with_nodes(tmp_path / "db", tmp_path, Nodes(local, {"orthanc": node}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "f")
        await settle(app, pilot)
        thumbnail = app.screen.query_one("#thumbnail", SeriesThumbnail)
        assert app.screen.query_one("#query-results", MarkTable).row_count > 0
        assert thumbnail.caption == NO_DIMSE_THUMBNAIL and thumbnail.shown is None
        assert not thumbnail.workers  # nothing asked
