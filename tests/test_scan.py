"""Finding the files to import (scan.py): DICOMDIR entries resolved as on CD media, files a DICOMDIR does not list
still found and named, DICOMDIRs recognised by their SOP Class whatever their name (issue 12, case 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

from dicomtui.core.scan import MEDIA_STORAGE_DIRECTORY, Problem, is_media_directory, scan
from dicomtui.core.synth import SeriesSpec, write_series

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # pydicom's FileSet IDs of synth UIDs


def make_media(tmp_path: Path, slices: int = 3) -> tuple[Path, list[Path]]:
    """A DICOMDIR media written by pydicom's FileSet (PS3.10 file IDs: PT000000/ST000000/SE000000/IM000000)."""
    sources = write_series(tmp_path / "src", SeriesSpec(slices=slices))
    fs = FileSet()
    for path in sources:
        fs.add(pydicom.dcmread(path))
    media = tmp_path / "media"
    fs.write(media)
    images = sorted(p for p in media.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    assert len(images) == slices
    return media, images


def _names(found: list[tuple[str, int, int]], base: Path) -> list[str]:
    return sorted(os.path.relpath(f[0], base) for f in found)


def test_an_entry_finds_its_file_with_another_case_and_an_extension(tmp_path: Path) -> None:
    media, images = make_media(tmp_path)
    for image in images:  # what a copy off a CD often looks like: lower case, ".dcm" added
        image.rename(image.with_name(image.name.lower() + ".dcm"))
    problems: list[Problem] = []
    unlisted: dict[str, str] = {}
    found = scan([media], problems, unlisted)
    assert problems == [] and unlisted == {}
    assert len(found) == 3 and all(f[0].endswith(".dcm") for f in found)


def test_a_dicomdir_given_by_name_resolves_entries_with_an_extension(tmp_path: Path) -> None:
    media, images = make_media(tmp_path)
    for image in images:
        image.rename(image.with_name(image.name + ".dcm"))
    problems: list[Problem] = []
    found = scan([media / "DICOMDIR"], problems)
    assert problems == []
    assert _names(found, media) == sorted(os.path.relpath(str(i) + ".dcm", media) for i in images)


def test_files_a_dicomdir_does_not_list_are_found_and_named(tmp_path: Path) -> None:
    media, images = make_media(tmp_path)
    extra = write_series(media / "EXTRA", SeriesSpec(slices=50, rows=4, cols=4, seed=3))
    problems: list[Problem] = []
    unlisted: dict[str, str] = {}
    found = scan([media], problems, unlisted)
    assert problems == []
    assert len(found) == 3 + 50  # the DICOMDIR itself is the index, not a file to import
    assert unlisted == {str(p): str(media / "DICOMDIR") for p in extra}


def test_a_missing_entry_is_reported_once(tmp_path: Path) -> None:
    media, images = make_media(tmp_path)
    images[1].unlink()
    problems: list[Problem] = []
    found = scan([media], problems)
    assert len(found) == 2
    assert [(p.path, p.reason) for p in problems] == [(str(images[1]), "referenced by DICOMDIR but missing")]


def test_a_dicomdir_with_another_name_is_recognised_and_followed(tmp_path: Path) -> None:
    media, images = make_media(tmp_path)
    (media / "DICOMDIR").rename(media / "index.dcm")
    assert is_media_directory(str(media / "index.dcm"))
    assert not is_media_directory(str(images[0])) and not is_media_directory(str(tmp_path / "nowhere"))
    assert pydicom.dcmread(media / "index.dcm").file_meta.MediaStorageSOPClassUID == MEDIA_STORAGE_DIRECTORY
    problems: list[Problem] = []
    found = scan([media / "index.dcm"], problems)
    assert problems == [] and _names(found, media) == [os.path.relpath(i, media) for i in images]
