"""Deleting attributes in ``edit`` (issue 16: ``dicomtui edit UID --delete PATH``): the plan shows what each file
holds now → (deleted), the fast splice leaves the element's bytes out and writes what a full pydicom rewrite
writes, the index follows, and what must not be deleted is refused in a sentence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.edit import EditError, apply_edit, plan_edit
from dicomtui.core.export.rewrite import read_head, splice_possible, write_full, write_spliced
from dicomtui.core.export.tagpath import parse_path
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series


def _db(tmp_path: Path) -> tuple[DicomDatabase, Item]:
    write_series(tmp_path / "in", SeriesSpec(series_number=1, slices=4, series_description="Axial"))
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"], "copy", workers=0)
    return db, Item(Level.SERIES, db.series()[0]["id"])


def test_a_deleted_attribute_leaves_every_file_and_the_index_follows(tmp_path: Path) -> None:
    db, item = _db(tmp_path)
    with db:
        before = [pydicom.dcmread(f["path"]) for f in db.instance_files([item])]
        plan = plan_edit(db, [item], {"StudyDescription": "kept"}, delete=["SeriesDescription", "(0010,21B0)"])
        deleted = {c.path.text: c for c in plan.changes if c.delete}
        assert deleted["SeriesDescription"].current == {"Axial": 4}
        assert deleted["(0010,21B0)"].current == {"(absent)": 4} and not deleted["(0010,21B0)"].changes_anything
        diff = "\n".join(plan.diff())
        assert "SeriesDescription: 'Axial' -> (deleted) (4 files)" in diff
        assert "(0010,21B0): '(absent)' -> (deleted) (1 file)  (unchanged)" in diff  # per instance
        assert plan.to_json()["changes"][1]["delete"] is True
        report = apply_edit(db, plan)
        assert report.written == 4 and report.spliced == 4 and not report.errors  # the fast path
        after = [pydicom.dcmread(f["path"]) for f in db.instance_files([item])]
        assert db.get(Level.SERIES, item.id)["SeriesDescription"] in (None, "")
    for old, new in zip(before, after, strict=True):
        assert "SeriesDescription" not in new and new.StudyDescription == "kept"
        del old.SeriesDescription
        old.StudyDescription = "kept"
        assert new == old  # nothing else changed (pixel data included)


@pytest.mark.parametrize("implicit", [False, True])
def test_the_spliced_deletion_writes_what_a_full_rewrite_writes(tmp_path: Path, implicit: bool) -> None:
    (path, *_) = write_series(tmp_path / "s", SeriesSpec(slices=1, implicit=implicit, series_description="X"))
    settings = [(parse_path("PatientName"), "PN", "Roe^Richard"), (parse_path("SeriesDescription"), "LO", None),
                (parse_path("ProtocolName"), "LO", None), (parse_path("StudyDescription"), "LO", None)]
    head = read_head(path, 0x00181030)
    assert splice_possible(head, settings)
    write_spliced(path, head, settings, tmp_path / "fast.dcm")
    write_full(path, settings, tmp_path / "full.dcm")
    fast, full = pydicom.dcmread(tmp_path / "fast.dcm"), pydicom.dcmread(tmp_path / "full.dcm")
    assert fast == full and "SeriesDescription" not in fast and fast.PatientName == "Roe^Richard"


@pytest.mark.parametrize(("delete", "settings", "words"), [
    (["PatientID"], {}, "PatientID cannot be deleted"),
    (["SpecificCharacterSet"], {}, "SpecificCharacterSet cannot be deleted"),
    (["SeriesDescription"], {"SeriesDescription": "x"}, "both set and deleted"),
    (["SOPInstanceUID"], {}, "as-new-series"),
])
def test_what_must_not_be_deleted_is_refused_in_a_sentence(tmp_path: Path, delete: list[str],
                                                          settings: dict[str, str], words: str) -> None:
    db, item = _db(tmp_path)
    with db, pytest.raises(EditError, match=words):
        plan_edit(db, [item], settings, delete=delete)


def test_cli_edit_delete(tmp_path: Path) -> None:
    db, item = _db(tmp_path)
    with db:
        uid = db.get(Level.SERIES, item.id)["SeriesInstanceUID"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "edit", uid, *args],
                              capture_output=True, text=True, timeout=120)

    out = cli("--delete", "SeriesDescription", "--dry-run")
    assert out.returncode == 0 and "SeriesDescription: 'Axial' -> (deleted) (4 files)" in out.stdout, out.stderr
    out = cli("--delete", "PatientID")
    assert out.returncode == 2 and "PatientID cannot be deleted" in out.stderr
    out = cli("--delete", "SeriesDescription", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["report"]["written"] == 4
    with DicomDatabase.open(tmp_path / "db") as db:
        files = db.instance_files([item])
    assert all("SeriesDescription" not in pydicom.dcmread(f["path"]) for f in files)


def test_a_private_attribute_and_one_inside_a_sequence_item_are_deleted(tmp_path: Path) -> None:
    db, item = _db(tmp_path)
    with db:
        for f in db.instance_files([item]):  # a private element and a sequence item in every file
            ds = pydicom.dcmread(f["path"])
            ds.private_block(0x0011, "DICOMTUI TEST", create=True).add_new(0x10, "LO", "private")
            ds.OtherPatientIDsSequence = [pydicom.Dataset()]
            ds.OtherPatientIDsSequence[0].PatientID = "OTHER"
            ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "SITE"
            ds.save_as(f["path"])
        plan = plan_edit(db, [item], {}, delete=["(0011,1010)", "(0010,1002)[0].PatientID"])
        assert [c.current for c in plan.changes] == [{"private": 4}, {"OTHER": 4}]
        report = apply_edit(db, plan)
        assert report.written == 4 and report.spliced == 0  # a path into a sequence: the full rewrite
        edited = [pydicom.dcmread(f["path"]) for f in db.instance_files([item])]
    for ds in edited:
        assert 0x00111010 not in ds and ds[0x00110010].value == "DICOMTUI TEST"  # the creator stays
        assert "PatientID" not in ds.OtherPatientIDsSequence[0]
        assert ds.OtherPatientIDsSequence[0].IssuerOfPatientID == "SITE"
