"""The DICOM patcher: rules applied to every file of a folder, fixed copies written to another folder, never in
place (after 3D Slicer's DICOM Patcher module, Modules/Scripted/DICOMPatcher), then, if asked, the copies imported.

``patch(source, destination, rules)`` reads every file's header first (rules that need a whole series, such as
the slice spacing, look at them all), then reads each file, lets the rules fix it in order, and writes it under
the same relative path in ``destination`` (a split file as NAME_0001.dcm…). Files no rule changes are copied as
they are. A file that is not DICOM or is damaged is a report row, and the run goes on.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread, dcmwrite
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .dicomfile import captured_warnings
from .errors import HeaderError, PatchError
from .header import read_header
from .indexer import import_paths
from .levels import ImportMode
from .patcher_base import PatchContext, PatchFile, decode_all, encoding_mismatch
from .patcher_rules import FileMeta, InvalidDates, InvalidUIDs, MissingIDs, SliceSpacing, TransferSyntax
from .patcher_split import SplitFrames
from .plural import counted

__all__ = ["RULES", "PatchReport", "PatchedFile", "Skipped", "check_patch", "import_patched", "patch", "rule_titles"]

# In the order they run: UIDs and dates are made valid before missing ones are generated (an invalid one is
# replaced, not taken as missing); the meta header is filled from the final data set; splitting comes last.
RULES: dict[str, type[Any]] = {
    rule.name: rule for rule in (InvalidUIDs, InvalidDates, MissingIDs, SliceSpacing, TransferSyntax, FileMeta,
                                 SplitFrames)
}
# The attributes that make a data set look like DICOM when a file has no "DICM" prefix (read with force=True,
# anything parses as something): a data set with none of them is not DICOM.
_DICOM_MARKERS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                  "PatientID", "PixelData")
_PART10_META = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")  # PS3.10 §7.1 Type 1
# What the first pass keeps of each header (the rules' prepare() and the series grouping need no more; a whole
# header kept for each of 100,000 files would hold hundreds of MB).
_HEADER_KEYWORDS = [*_DICOM_MARKERS, "SeriesNumber", "SeriesDescription", "ImagePositionPatient",
                    "ImageOrientationPatient", "NumberOfFrames", "SpecificCharacterSet"]
_UNDEFINED = 0xFFFFFFFF  # an undefined length (sequences, encapsulated pixel data)
_NOT_COPIED = {"DICOMDIR"}  # its references would name files the patch renames (split) or leaves out


def rule_titles() -> dict[str, str]:
    """Each rule's name (what ``--rule`` takes) → one line of what it fixes, in the order they run."""
    return {name: rule.title for name, rule in RULES.items()}


@dataclass
class PatchedFile:
    """One source file (path relative to the source), the files written for it (relative to the destination)
    and the changes, each ``(rule name, sentence)``."""

    source: str
    outputs: list[str]
    changes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Skipped:
    """A source file not written, and why (not DICOM, damaged, unwritable)."""

    path: str
    reason: str


@dataclass
class PatchReport:
    """What a patch did: per file, what changed and why; the files skipped with the reason."""

    source: str
    destination: str
    rules: list[str]
    dry_run: bool = False
    files: list[PatchedFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> list[PatchedFile]:
        return [f for f in self.files if f.changes]

    def rule_counts(self) -> Counter[str]:
        """How many files each rule changed."""
        return Counter(rule for f in self.files for rule in dict.fromkeys(r for r, _ in f.changes))

    def summary(self) -> str:
        """Two or three sentences: files changed (per rule), unchanged, skipped, where they went."""
        verb = "Would write" if self.dry_run else "Wrote"
        written = sum(len(f.outputs) for f in self.files)
        counts = ", ".join(f"{rule} {n}" for rule, n in self.rule_counts().most_common())
        lines = [f"{verb} {counted(written, 'file')} into {self.destination} from {counted(len(self.files), 'file')}"
                 f" of {self.source}: {len(self.changed)} changed" + (f" ({counts})" if counts else "")
                 + f", {len(self.files) - len(self.changed)} unchanged."]
        if self.skipped:
            lines.append(f"{counted(len(self.skipped), 'file')} skipped (see the list).")
        if self.cancelled:
            lines.append("Cancelled: the files after the last one listed were not patched.")
        return " ".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``dicomtui patch --json``): keys are a stable contract, only ever added to."""
        return {"source": self.source, "destination": self.destination, "rules": self.rules,
                "dry_run": self.dry_run, "cancelled": self.cancelled, "seconds": round(self.seconds, 3),
                "changed": len(self.changed), "unchanged": len(self.files) - len(self.changed),
                "rule_counts": dict(self.rule_counts()),
                "files": [{"source": f.source, "outputs": f.outputs,
                           "changes": [{"rule": r, "change": c} for r, c in f.changes]} for f in self.files],
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped]}


def patch(source: str | os.PathLike, destination: str | os.PathLike, rules: list[str] | None = None, *,
          dry_run: bool = False, progress: Callable[[int, int], None] | None = None,
          cancel: threading.Event | None = None) -> PatchReport:
    """Patch every file under ``source`` into ``destination`` with ``rules`` (names of :data:`RULES`; None: all).

    ``progress(done, total)`` counts source files; ``cancel`` stops between files (the report says so).
    ``dry_run`` reads and fixes but writes nothing. Raises PatchError when ``source`` is not a folder, when
    ``destination`` is ``source``, inside it or a folder that holds files, or when a rule name is unknown.
    """
    started = time.perf_counter()
    src, dst, names = check_patch(source, destination, rules)
    report = PatchReport(str(src), str(dst), names, dry_run)
    chosen = [RULES[name]() for name in names]
    items = list(_headers(src, report))
    context = PatchContext(src)
    for rule in chosen:
        rule.prepare(items, context)
    for done, item in enumerate(items, 1):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        _patch_one(item, dst, chosen, context, report)
        if progress is not None:
            progress(done, len(items))
    report.seconds = time.perf_counter() - started
    return report


def import_patched(db: Any, report: PatchReport, progress: Callable[[Any], None] | None = None,
                   cancel: threading.Event | None = None) -> Any:
    """Import the patched folder into ``db`` in copy mode (the database keeps its own copies; the folder can be
    deleted afterwards). Returns the ImportReport."""
    return import_paths(db, [report.destination], ImportMode.COPY, progress=progress, cancel=cancel)


def check_patch(source: str | os.PathLike, destination: str | os.PathLike, rules: list[str] | None = None,
                ) -> tuple[Path, Path, list[str]]:
    """The source and destination folders (absolute) and the rule names in the order they run, or PatchError
    saying why a patch of them cannot start (:func:`patch` checks the same; a face may ask first)."""
    names = _rule_names(rules)
    src, dst = _checked_folders(Path(source), Path(destination))
    return src, dst, names


def _rule_names(rules: list[str] | None) -> list[str]:
    if rules is None:
        return list(RULES)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise PatchError(f"There is no patcher rule {unknown[0]!r}; the rules are {', '.join(RULES)}.")
    return [name for name in RULES if name in rules]  # the order they must run in


def _checked_folders(src: Path, dst: Path) -> tuple[Path, Path]:
    src, dst = src.expanduser().resolve(), dst.expanduser().resolve()
    if not src.is_dir():
        raise PatchError(f"{src} is not a folder: the patcher reads every file of a folder.")
    if dst == src or src in dst.parents:
        raise PatchError(f"{dst} is inside the source {src}: the patcher writes fixed copies to another folder, "
                         "never in place; choose a folder outside it.")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise PatchError(f"{dst} is not an empty folder: choose a new or empty one (nothing is overwritten).")
    return src, dst


def _headers(src: Path, report: PatchReport) -> Iterator[PatchFile]:
    """Every file under ``src`` whose header reads as DICOM (sorted by path); the others become skipped rows."""
    for folder, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            relative = path.relative_to(src)
            if name.upper() in _NOT_COPIED:
                report.skipped.append(Skipped(str(relative), "a DICOMDIR is not copied: its references would name "
                                                             "files the patch renames; import reads the files"))
                continue
            try:
                header = _header(path)
            except Exception as exc:  # noqa: BLE001 — a damaged file fails pydicom in many ways: each is a report row
                report.skipped.append(Skipped(str(relative), _why(exc)))
                continue
            patient = relative.parts[0] if len(relative.parts) > 1 else src.name
            yield PatchFile(path, relative, patient, header)


def _header(path: Path) -> dict[str, Any]:
    """The attributes the rules look at first, read as an import reads them (the fast walk, pydicom for the
    rest). A file import refuses is read again by pydicom, more leniently (no "DICM" and no UIDs, which ``ids``
    fixes; a private transfer syntax pydicom's checks refuse); when that fails too, import's sentence is the reason.
    Raises HeaderError or InvalidDicomError."""
    try:
        return read_header(str(path))
    except HeaderError as refused:
        try:
            ds = _read(path, stop_before_pixels=True, specific_tags=_HEADER_KEYWORDS)
        except Exception:  # noqa: BLE001 — import's reason says it better than pydicom's second attempt
            raise refused from None
    return {keyword: _as_text(ds[keyword].value) for keyword in _HEADER_KEYWORDS if keyword in ds}


def _as_text(value: Any) -> Any:
    """A multi-value as the import's record has it ("a\\b\\c"); other values as they are."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return value
    return "\\".join(str(v) for v in value)


def _why(exc: Exception) -> str:
    if isinstance(exc, (InvalidDicomError, HeaderError)):
        return str(exc)
    return f"damaged: {type(exc).__name__}: {exc}"


def _read(path: Path, stop_before_pixels: bool = False, specific_tags: list[str] | None = None) -> Dataset:
    """The file read (a missing "DICM" prefix allowed), its values left raw until used (the rules read some as
    written; pydicom writes the others as they were read). InvalidDicomError when it does not read as DICOM or
    ends inside an element (pydicom keeps a short value and only warns: the length check is ours). The library's
    warnings are not printed."""
    with captured_warnings() as caught:
        ds = dcmread(path, force=True, stop_before_pixels=stop_before_pixels, specific_tags=specific_tags)
        if not any(keyword in ds for keyword in _DICOM_MARKERS):
            raise InvalidDicomError("not a DICOM file (no DICM prefix and no DICOM attributes)")
        _check_lengths(ds)
    ended = [w for w in caught if "end of file" in w.lower()]
    if ended:
        raise InvalidDicomError(f"damaged: {ended[0]}")
    return ds


def _check_lengths(ds: Dataset) -> None:
    """InvalidDicomError when a value is shorter than its length says (the file was cut)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if (isinstance(raw, RawDataElement) and isinstance(raw.value, bytes) and raw.length != _UNDEFINED
                and len(raw.value) < raw.length):
            raise InvalidDicomError(f"damaged: the file ends inside {tag} ({len(raw.value)} of {raw.length} bytes)")


def _patch_one(item: PatchFile, dst: Path, rules: list[Any], context: PatchContext, report: PatchReport) -> None:
    """Read, fix, write one file (or its frames); a failure at any step is a skipped row saying which step, and
    the run goes on. pydicom's warnings about the values being fixed are not printed: the report says what was
    wrong."""
    def skip(reason: str) -> None:
        report.skipped.append(Skipped(str(item.relative), reason))

    with captured_warnings():
        try:
            ds = _read(item.path)
        except Exception as exc:  # noqa: BLE001 — damaged files fail pydicom in many ways
            return skip(_why(exc))
        try:
            changes = [(rule.name, change) for rule in rules for change in rule.apply(ds, item, context)]
            outputs = [ds]
            splitter = next((r for r in rules if isinstance(r, SplitFrames)), None)
            if splitter is not None:
                outputs, split_changes = splitter.split(ds)
                changes += [(splitter.name, change) for change in split_changes]
        except Exception as exc:  # noqa: BLE001 — a value the rules or pydicom cannot read: that file only
            return skip(f"damaged: not patched ({type(exc).__name__}: {exc})")
        names = _output_names(item.relative, len(outputs))
        if not report.dry_run:
            try:
                _write(item, dst, outputs, names, bool(changes))
            except Exception as exc:  # noqa: BLE001 — a value pydicom cannot encode, a full disk: that file only
                return skip(f"not written ({type(exc).__name__}: {exc})")
    report.files.append(PatchedFile(str(item.relative), [str(n) for n in names], changes))


def _output_names(relative: Path, count: int) -> list[Path]:
    if count == 1:
        return [relative]
    suffix = relative.suffix if relative.suffix.lower() in (".dcm", ".dicom", ".ima") else ""
    stem = relative.name[: -len(suffix)] if suffix else relative.name
    return [relative.with_name(f"{stem}_{i:04d}{suffix}") for i in range(1, count + 1)]


def _write(item: PatchFile, dst: Path, outputs: list[Dataset], names: list[Path], changed: bool) -> None:
    """Unchanged files are copied byte for byte; changed ones written by pydicom (a Part-10 file when it has a
    file meta header, else as it was read), each through a temporary name renamed into place. A name that is taken
    (a split frame's name is a file of the source) is an error; on any error the file's outputs written so far
    are removed."""
    written: list[Path] = []
    try:
        for ds, name in zip(outputs, names, strict=True):
            target = dst / name
            if target.exists():
                raise FileExistsError(f"{name} was written already (a source file has that name)")
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.patching")
            try:
                if changed:
                    if encoding_mismatch(ds):  # the syntax rule says so when chosen; pydicom needs it either way
                        decode_all(ds)
                    # dcmwrite, not save_as: save_as refuses the big → little endian change the syntax rule makes
                    dcmwrite(temporary, ds, enforce_file_format=all(ds.file_meta.get(k) for k in _PART10_META))
                else:
                    shutil.copyfile(item.path, temporary)
                os.replace(temporary, target)
                written.append(target)
            finally:
                temporary.unlink(missing_ok=True)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise
