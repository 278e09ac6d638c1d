"""The tag editor's "As a new study" switch (issue 16): a series filed under the wrong patient is given the right
patient's ID and name; the form refuses it as an edit of part of a study and names the switch; with the switch on,
the dry run places the new study under that patient and Apply copies the series there, the original kept."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Static

from dicomtui.core.database import DicomDatabase
from dicomtui.tui.app import DicomTuiApp
from dicomtui.tui.screens.tag_editor import TagEditorScreen

from .conftest import settle, text


async def test_a_series_moves_to_another_patient_with_the_new_study_switch(app: DicomTuiApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("3", "t")  # the series table: Doe^Jane's first series (Axial, 8 of the study's 14 files)
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TagEditorScreen)
        screen.query_one("#tag-common-PatientID", Input).value = "R2"
        screen.query_one("#tag-common-PatientName", Input).value = "Roe^Rick"
        assert isinstance(screen.focused, Input)  # ctrl+d is the dry run even there (an Input's delete-right)
        await pilot.press("ctrl+d")
        await settle(app, pilot)
        diff = text(screen.query_one("#tags-diff", Static))
        assert "a study belongs to one patient" in diff and "the form's \"As a new study\" switch" in diff, diff
        assert "Nothing is written" in diff
        switch = screen.query_one("#tags-new-study", Checkbox)
        switch.focus()
        await pilot.press("space")
        assert switch.value
        await pilot.press("ctrl+s")  # the fields changed since the diff: the diff again, now without a problem
        await settle(app, pilot)
        diff = text(screen.query_one("#tags-diff", Static))
        assert diff.startswith("8 files to write (8 linked: written as copies into the database storage), as a new "
                               "study (new Study, Series and SOP Instance UIDs; the originals stay)"), diff
        assert "8 of its 14 instances (1 series of 2) become a new study under patient R2 (merged: 1 study there " \
               "now)" in diff.replace("\n", " "), diff
        assert "Ctrl+S (Apply) writes this." in diff
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        summary = text(screen.query_one("#tags-diff", Static))
        assert summary.startswith("Edited 8 files. 8 linked files left unchanged where they are"), summary
        assert "New study: " in summary and "The originals stay (1 series); `dicomtui rm " in summary
        await pilot.press("escape")
        await settle(app, pilot)
    with DicomDatabase.open(app.db_path) as db:
        patients = {p["PatientID"]: p for p in db.patients()}
        assert patients["R2"]["num_studies"] == 2 and patients["J1"]["num_studies"] == 1
        (j1_study,) = db.studies([patients["J1"]["id"]])
        assert (j1_study["num_series"], j1_study["num_instances"]) == (2, 14)  # the original kept, whole
        moved = next(s for s in db.studies([patients["R2"]["id"]]) if s["StudyDescription"] == "Synthetic study")
        assert (moved["num_series"], moved["num_instances"]) == (1, 8)
