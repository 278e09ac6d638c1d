"""The tag editor (issue 16): t in the browser opens the forms for the selection; the values the files have now
beside each field, "2 values" when they differ; Apply shows the dry run's diff first, then writes."""

from __future__ import annotations

import pydicom
from textual.widgets import Input, Label, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.core.levels import Level
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.tag_editor import TagEditorScreen

from .conftest import settle, text


async def _open_editor(app: DicomTuiApp, pilot) -> TagEditorScreen:
    """The tag editor of the first patient's study (Doe^Jane: one CT study, two series), its values read."""
    await settle(app, pilot)
    await pilot.press("2", "t")
    await settle(app, pilot)
    assert isinstance(app.screen, TagEditorScreen)
    return app.screen


async def test_edit_a_study_s_tags_through_the_forms(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_editor(app, pilot)
        titles = [text(label) for label in screen.query(".tags-table-title").results(Label)]
        assert titles == ["Patient", "Study", "Series 1 Axial", "Series 2 Gapped", "Other attribute"]
        nows = [text(label) for label in screen.query(".tags-now").results(Label)]
        assert "Doe^Jane" in nows and "Synthetic study" in nows and "Axial" in nows and "Gapped" in nows
        screen.query_one("#tag-common-StudyDescription", Input).value = "Edited study"
        screen.query_one("#tag-s1-SeriesDescription", Input).value = "Gapped edited"
        screen.query_one("#tag-common-StudyDate", Input).value = "20241301"
        screen.query_one("#tag-common-PatientSex", Input).value = "f"
        await pilot.pause()
        check = text(screen.query_one("#tags-check", Static))
        assert "StudyDate (DA): Invalid value for VR DA: '20241301'" in check and "VR CS: 'f'" in check
        assert screen.query_one("#tag-common-StudyDate", Input).has_class("-invalid")
        screen.query_one("#tag-common-PatientSex", Input).value = ""
        screen.query_one("#tags-other", Input).value = "(0010,1002)[0].PatientID"
        await pilot.pause()
        assert "has no '='" in text(screen.query_one("#tags-check", Static))
        screen.query_one("#tags-other", Input).value = "(0010,1002)[0].PatientID=OTHER-1"
        await pilot.press("ctrl+s")  # Apply: the diff first, with the problem
        await settle(app, pilot)
        diff = text(screen.query_one("#tags-diff", Static))
        assert "Invalid value for VR DA" in diff and "Nothing is written" in diff
        screen.query_one("#tag-common-StudyDate", Input).value = "20250102"
        await pilot.pause()
        assert text(screen.query_one("#tags-check", Static)) == ""
        await pilot.press("ctrl+s")  # fields changed since the diff: the diff again
        await settle(app, pilot)
        diff = text(screen.query_one("#tags-diff", Static))
        assert "'Gapped' -> 'Gapped edited' (6 files)" in diff and "'20240115' -> '20250102' (14 files)" in diff
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "Edited 14 files." in text(screen.query_one("#tags-diff", Static))
        assert "Gapped edited" in [text(label) for label in screen.query(".tags-now").results(Label)]
        await pilot.press("escape")
        await settle(app, pilot)
    with DicomDatabase.open(app.db_path) as db:
        study = next(s for s in db.studies() if s["StudyDescription"] == "Edited study")
        assert study["StudyDate"] == "20250102"
        assert sorted(s["SeriesDescription"] for s in db.series([study["id"]])) == ["Axial", "Gapped edited"]
        for f in db.instance_files([(Level.STUDY, study["id"])]):
            edited = pydicom.dcmread(f["path"])
            assert edited.StudyDescription == "Edited study"
            assert edited.OtherPatientIDsSequence[0].PatientID == "OTHER-1"


def test_tag_editor_snapshot(snap_compare, tmp_path_factory) -> None:
    """The forms of one study at 120×34: the patient and study tables, one table per series, the values now."""
    import shutil
    import tempfile
    from pathlib import Path

    from .conftest import make_db

    root = Path(tempfile.gettempdir()) / "dicomtui-snapshot-tag-editor"  # a fixed path: it shows on screen
    shutil.rmtree(root, ignore_errors=True)
    make_db(root)
    app = DicomTuiApp(root / "db", renderer="halfblock", settings_path=root / "config.toml")

    async def run_before(pilot) -> None:
        await settle(app, pilot)
        await pilot.press("2", "t")
        await settle(app, pilot)
        app.screen.query_one("#tag-common-StudyDate", Input).value = "2024"
        await pilot.pause()

    try:
        assert snap_compare(app, run_before=run_before, terminal_size=(120, 34))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_a_row_deleted_and_a_private_attribute_added_in_the_forms(app: DicomTuiApp) -> None:
    """Ctrl+R on a row deletes its attribute (the diff says "(deleted)"); Enter in "Other attribute" adds a row,
    so a private creator and its element go in together; both land in the files."""
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_editor(app, pilot)
        screen.query_one("#tag-s0-SeriesDescription", Input).focus()
        await pilot.press("ctrl+r")
        assert screen.query_one("#tag-s0-SeriesDescription", Input).has_class("-deleted")
        screen.query_one("#tag-common-StudyDescription", Input).focus()
        await pilot.press("ctrl+r", "ctrl+r")  # twice: kept again
        assert not screen.query_one("#tag-common-StudyDescription", Input).has_class("-deleted")
        other = screen.query_one("#tags-other", Input)
        other.focus()
        other.value = "(0011,0010)=MYCREATOR"
        await pilot.press("enter")
        await pilot.pause()
        second = screen.query_one("#tags-other-1", Input)
        assert screen.focused is second
        second.value = "(0011,1001)LO=tui private"
        await pilot.press("ctrl+s")  # the diff first
        await settle(app, pilot)
        diff = text(screen.query_one("#tags-diff", Static))
        assert "SeriesDescription: 'Axial' -> (deleted) (8 files)" in diff, diff
        assert "(0011,1001)LO: '' -> 'tui private' (1 file)" in diff and "StudyDescription" not in diff
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "Edited 14 files." in text(screen.query_one("#tags-diff", Static))
        await pilot.press("escape")
        await settle(app, pilot)
    with DicomDatabase.open(app.db_path) as db:
        study = next(s for s in db.studies() if s["StudyDescription"] == "Synthetic study")
        series = {s["SeriesNumber"]: s for s in db.series([study["id"]])}
        assert series[1]["SeriesDescription"] in (None, "") and series[2]["SeriesDescription"] == "Gapped"
        for f in db.instance_files([(Level.STUDY, study["id"])]):
            edited = pydicom.dcmread(f["path"])
            assert edited.private_block(0x0011, "MYCREATOR")[0x01].value == "tui private"
