"""What the patcher's rules share: the files of a run and the folder they sit in, the context a run keeps (UIDs
generated once per series, study or invalid UID), and the rule contract.

A rule (after Slicer's DICOMPatcherRule, Modules/Scripted/DICOMPatcher) sees every file's header first
(``prepare``: values that depend on a whole series, such as the spacing of its slices) and then each data set
(``apply``), which it changes in place and describes in sentences. No rule touches the source file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid

UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root (PS3.5 §9; generate_uid's default), as volume_series


def derived_uid(*sources: object) -> str:
    """A new UID under :data:`UID_ROOT`, the same for the same ``sources`` (pydicom's ``generate_uid`` with them as
    entropy): patching one folder twice gives the same UIDs, and every file naming an invalid UID gets the same
    replacement, so references between files stay consistent."""
    return str(generate_uid(UID_ROOT, entropy_srcs=[str(s) for s in sources]))


def set_sop_instance_uid(ds: Dataset, new: str) -> None:
    """SOPInstanceUID and, when the file meta names it, MediaStorageSOPInstanceUID (they must agree, PS3.10 §7.1)."""
    old = ds.get("SOPInstanceUID")
    ds.SOPInstanceUID = new
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and meta.MediaStorageSOPInstanceUID == old:
        meta.MediaStorageSOPInstanceUID = new


def encoding_mismatch(ds: Dataset) -> bool:
    """Whether ``ds`` was read in another VR encoding than its file meta's transfer syntax says (an implicit VR
    data set under an explicit syntax: pydicom reads it, with a warning, but writes raw elements as they were read,
    so they must be decoded before it is written in the syntax's encoding)."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) is not None else None
    if not syntax or not UID(str(syntax)).is_transfer_syntax:
        return False
    implicit = UID(str(syntax)).is_implicit_VR
    for tag in list(ds.keys()):  # the first element still raw tells how the data set was read
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement):
            return raw.is_implicit_VR != implicit
    return False


def decode_all(ds: Dataset) -> None:
    """Every raw element of ``ds`` (and of its sequences) decoded from the encoding it was read in."""
    for _ in ds.iterall():
        pass


@dataclass
class PatchFile:
    """One source file of a run and what its header said before any rule ran.

    ``relative``: its path under the source folder (the output mirrors it); ``patient_folder``: the first folder
    under the source (the source's own name for files directly in it), which stands for the patient when the
    file names none; ``series_key``: the files of one series (same folder, SeriesNumber and SeriesDescription).
    ``header``: a few attributes by keyword as the import reads them (``header.read_header``: SeriesInstanceUID,
    SeriesNumber, SeriesDescription, ImagePositionPatient and ImageOrientationPatient as "a\\b\\c" text…).
    """

    path: Path
    relative: Path
    patient_folder: str
    header: dict[str, Any]

    @property
    def folder(self) -> str:
        return str(self.relative.parent)

    @property
    def series_key(self) -> tuple[str, str, str]:
        return (self.folder, str(self.header.get("SeriesNumber", "") or ""),
                str(self.header.get("SeriesDescription", "") or ""))


@dataclass
class PatchContext:
    """What one run keeps between files: the source folder (for derived UIDs) and the UIDs generated so far."""

    source: Path
    generated: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def uid_for(self, *key: object) -> str:
        """The UID generated for ``key`` (("series", folder, number, description), ("study", patient folder)…),
        made once per run and derived from the source folder and the key."""
        if key not in self.generated:
            self.generated[key] = derived_uid(self.source.resolve(), *key)
        return self.generated[key]


class Rule(Protocol):
    """A patcher rule. ``name``: what the user types (``--rule NAME``) and sees in the report; ``title``: one line
    of what it fixes."""

    name: str
    title: str

    def prepare(self, files: list[PatchFile], context: PatchContext) -> None:
        """Look at every file's header before any is changed (whole-series values)."""

    def apply(self, ds: Dataset, item: PatchFile, context: PatchContext) -> list[str]:
        """Fix ``ds`` in place; the changes as sentences (empty: nothing to fix)."""
        ...


class SimpleRule:
    """A rule that needs no look at the whole folder first."""

    name = ""
    title = ""

    def prepare(self, files: list[PatchFile], context: PatchContext) -> None:
        return None
