"""Managed storage: names no UID can escape, copies complete before they are visible, incoming/ cleaned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomtui.core import storage


def test_a_well_formed_uid_is_its_own_name() -> None:
    assert storage.safe_name("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize("uid", ["../../etc/passwd", "/abs", ".", "..", "a/b", "1.2\x00.3", "x" * 250, "1." * 40])
def test_any_other_uid_becomes_a_safe_distinct_name(uid: str) -> None:
    name = storage.safe_name(uid)
    assert name.startswith("x") and "/" not in name and "\x00" not in name and len(name) <= 62
    assert name not in (".", "..") and storage.safe_name(uid + "1") != name


def test_relative_path_stays_inside_storage(tmp_path: Path) -> None:
    rel = storage.relative_path("../..", "..", "../x")
    assert rel.startswith("dicom/") and ".." not in rel.split("/")
    assert (tmp_path / rel).resolve().is_relative_to((tmp_path / "dicom").resolve())


def test_copy_batch_stores_complete_files_and_reports_each_failure(tmp_path: Path) -> None:
    (tmp_path / storage.INCOMING_DIR).mkdir()
    source = tmp_path / "a.dcm"
    source.write_bytes(b"DICM" * 100)
    pairs = [(str(source), "dicom/1/2/3.dcm"), (str(tmp_path / "missing.dcm"), "dicom/1/2/4.dcm")]
    errors = storage.copy_batch(tmp_path, pairs)
    assert errors[0] is None and isinstance(errors[1], OSError)
    assert (tmp_path / "dicom/1/2/3.dcm").read_bytes() == source.read_bytes()
    assert not (tmp_path / "dicom/1/2/4.dcm").exists()
    assert list((tmp_path / storage.INCOMING_DIR).iterdir()) == []  # no temp file left behind


def test_temp_files_carry_our_pid_and_only_dead_owners_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / storage.INCOMING_DIR).mkdir()
    ours = storage.temp_file(tmp_path, "received")
    assert ours.parent == tmp_path / storage.INCOMING_DIR and ours.name.startswith(f"{os.getpid()}-")
    ours.write_bytes(b"x")
    dead = tmp_path / storage.INCOMING_DIR / "999999999-abc-received.part"
    dead.write_bytes(b"x")
    assert storage.clean_incoming(tmp_path) == [dead]
    assert ours.exists() and not dead.exists()


def test_remove_stored_removes_empty_folders_but_never_leaves_storage(tmp_path: Path) -> None:
    f = tmp_path / "dicom/1/2/3.dcm"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    storage.remove_stored(tmp_path, "dicom/1/2/3.dcm")
    assert not (tmp_path / "dicom/1").exists() and (tmp_path / "dicom").is_dir()
    with pytest.raises(ValueError, match="not inside"):
        storage.remove_stored(tmp_path, "elsewhere.txt")
    outside = tmp_path / "mine.dcm"
    outside.write_bytes(b"x")
    for damaged in ("dicom/../mine.dcm", "dicom/1/../../mine.dcm", str(outside), "dicom//mine.dcm", "dicom"):
        with pytest.raises(ValueError, match="not inside"):  # a damaged row never deletes a file of the user's
            storage.remove_stored(tmp_path, damaged)
    assert outside.exists()
