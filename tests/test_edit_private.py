"""Adding a private attribute that a file does not hold (issue 16: ``--set "(0011,0010)=MYCREATOR" --set
"(0011,1001)LO=value"``): the private creator's block is reserved as pydicom's ``private_block`` does (PS3.5
7.8.1): the block that holds the creator already, else the block typed when free, else the first free one, so
that another creator's elements are never taken over. Written by the fast splice, equal to a full rewrite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.export.edit import EditError, apply_edit, plan_edit
from dicomtui.core.export.rewrite import place_private, read_head, splice_possible, write_full, write_spliced
from dicomtui.core.export.tagpath import parse_path
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import Item, Level
from dicomtui.core.synth import SeriesSpec, write_series

SETTINGS = {"(0011,0010)": "MYCREATOR", "(0011,1001)LO": "value"}


def _text(ds: pydicom.Dataset, tag: int) -> str:
    """A private element's value as text: implicit VR files give pydicom no VR for it (UN, the raw bytes)."""
    value = ds[tag].value
    return value.decode().rstrip(" ") if isinstance(value, bytes) else value


def _db(tmp_path: Path, implicit: bool = False) -> tuple[DicomDatabase, Item]:
    write_series(tmp_path / "in", SeriesSpec(series_number=1, slices=3, implicit=implicit))
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"], "copy", workers=0)
    files = sorted(f["path"] for f in db.instance_files([Item(Level.SERIES, db.series()[0]["id"])]))
    first = pydicom.dcmread(files[0])  # block 10 taken by another creator: MYCREATOR must go elsewhere
    first.private_block(0x0011, "OTHER CREATOR", create=True).add_new(0x01, "LO", "other's")
    first.save_as(files[0])
    second = pydicom.dcmread(files[1])  # MYCREATOR already in block 12: its element is set there
    second[0x00110012] = pydicom.DataElement(0x00110012, "LO", "MYCREATOR")
    second[0x00111201] = pydicom.DataElement(0x00111201, "LO", "was")
    second.save_as(files[1])
    return db, Item(Level.SERIES, db.series()[0]["id"])


@pytest.mark.parametrize("implicit", [False, True])
def test_a_private_attribute_is_added_in_the_creator_s_own_block(tmp_path: Path, implicit: bool) -> None:
    db, item = _db(tmp_path, implicit)
    with db:
        plan = plan_edit(db, [item], SETTINGS)
        private = next(c for c in plan.changes if c.path.text == "(0011,1001)LO")
        assert private.vr == "LO" and private.current == {"": 2, "was": 1}
        diff = "\n".join(plan.diff())  # per instance: private attributes belong to no level of the model
        assert diff.count("(0011,1001)LO: '' -> 'value' (1 file)") == 2 and "'was' -> 'value' (1 file)" in diff
        report = apply_edit(db, plan)
        assert report.written == 3 and report.spliced == 3 and not report.errors
        edited = [pydicom.dcmread(f["path"]) for f in db.instance_files([item])]
    for ds in edited:
        block = ds.private_block(0x0011, "MYCREATOR")
        assert _text(ds, block.get_tag(0x01)) == "value"
    creator = {id(ds): _text(ds, 0x00110010) if 0x00110010 in ds else None for ds in edited}
    other = next(ds for ds in edited if creator[id(ds)] == "OTHER CREATOR")
    assert _text(other, 0x00111001) == "other's"  # the other creator's element is left alone
    assert _text(other, 0x00110011) == "MYCREATOR" and _text(other, 0x00111101) == "value"
    moved = next(ds for ds in edited if 0x00110012 in ds)
    assert 0x00110010 not in moved and _text(moved, 0x00111201) == "value"  # no second reservation
    plain = next(ds for ds in edited if 0x00110012 not in ds and creator[id(ds)] == "MYCREATOR")
    assert _text(plain, 0x00111001) == "value" and 0x00110011 not in plain


def test_the_spliced_private_edit_writes_what_a_full_rewrite_writes(tmp_path: Path) -> None:
    (path, *_) = write_series(tmp_path / "s", SeriesSpec(slices=1))
    ds = pydicom.dcmread(path)
    ds.private_block(0x0011, "OTHER CREATOR", create=True).add_new(0x01, "LO", "other's")
    ds.save_as(path)
    settings = [(parse_path(k), "LO", v) for k, v in SETTINGS.items()]
    head = read_head(path, 0x0011FFFF)
    placed = place_private(head, settings)
    assert [p.top for p, _, _ in placed] == [0x00110011, 0x00111101]
    assert splice_possible(head, placed)
    write_spliced(path, head, placed, tmp_path / "fast.dcm")
    write_full(path, placed, tmp_path / "full.dcm")
    assert pydicom.dcmread(tmp_path / "fast.dcm") == pydicom.dcmread(tmp_path / "full.dcm")


def test_a_private_element_without_its_creator_or_vr_is_refused(tmp_path: Path) -> None:
    db, item = _db(tmp_path)
    with db:
        with pytest.raises(EditError, match=r"needs its private creator .*--set '\(0013,0010\)=CREATOR'"):
            plan_edit(db, [item], {"(0013,1001)LO": "x"})
        with pytest.raises(EditError, match=r"VR is unknown: give it after the tag, as \(0013,1001\)LO=VALUE"):
            plan_edit(db, [item], {"(0013,0010)": "C", "(0013,1001)": "x"})
    with pytest.raises(EditError, match="a VR .* may follow only the last tag"):
        parse_path("(0011,1001)XX")


def test_cli_adds_a_private_attribute(tmp_path: Path) -> None:
    db, item = _db(tmp_path)
    with db:
        uid = db.get(Level.SERIES, item.id)["SeriesInstanceUID"]
    out = subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "edit", uid,
                          *[a for k, v in SETTINGS.items() for a in ("--set", f"{k}={v}")]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "(0011,1001)LO: 'was' -> 'value'" in out.stdout, out.stderr
    with DicomDatabase.open(tmp_path / "db") as db:
        files = db.instance_files([item])
    assert all(pydicom.dcmread(f["path"]).private_block(0x0011, "MYCREATOR")[0x01].value == "value" for f in files)
