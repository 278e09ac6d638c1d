"""Export database items to a folder (or a ZIP), optionally with a DICOMDIR: what Slicer's "export to folder"
and a ``cp -r`` of a PACS's storage do, with names from the data and nothing the user owns overwritten.

The files are read where the database keeps them: copied files from its storage, linked files from the user's
paths (a linked file that has gone is a report row, not an error). Without a transform a file's bytes are copied
as they are (``sendfile``; a linked file without the PS3.10 header gets one in front, as a copy-import does); with
a ``transform`` (``Dataset -> Dataset | None``; issue 17's de-identification plugs in here) each file is read by
pydicom, transformed, and written as a PS3.10 file; None leaves the file out.

Nothing existing is overwritten unless ``overwrite``: the destinations are checked before anything is written
(``ExportError`` names the first and says how many), and each new file is created exclusively (``O_EXCL``), so a
file that appeared meanwhile is not replaced either. With ``overwrite`` a file is written beside its target and
renamed over it: the old one stays whole until the new one is. Cancelling stops before the next file: the files
written until then are complete (with a DICOMDIR or a ZIP, nothing is left: those are written at the end).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dicomfile import part10_head, read_dataset
from ..errors import ExportError
from ..plural import counted
from ..storage import is_disk_full
from .dicomdir import FileSetWriter
from .layout import ExportFile, Layout, plan_export

__all__ = ["ExportOptions", "ExportProblem", "ExportReport", "Transform", "export_files", "export_items"]

Transform = Callable[[Any], Any]  # pydicom Dataset -> Dataset (or None: leave the file out)
FILE_SET_LAYOUT = "dicomdir"  # the report's layout with a DICOMDIR: the file-set's PS3.10 names, not ours
ZIP_LEVEL = 1  # deflate level: CT/MR pixel data shrinks ~2x at level 1; level 6 takes ~3x longer for ~5 % less


@dataclass
class ExportOptions:
    """How to export: ``layout`` (tree or flat; with ``dicomdir`` the file-set's own names, see
    :mod:`.dicomdir`), a DICOMDIR, a ZIP (the destination is then ``NAME.zip``), ``overwrite`` existing files,
    and the ``transform`` hook applied to each data set on the way out."""

    layout: Layout | str = Layout.TREE
    dicomdir: bool = False
    zip: bool = False
    overwrite: bool = False
    transform: Transform | None = None


@dataclass
class ExportProblem:
    """A file not exported and why (one sentence)."""

    sop_instance_uid: str
    path: str
    reason: str


@dataclass
class ExportReport:
    """What an export did: ``written`` files (``bytes`` in all) under ``destination`` (a folder, or the ZIP),
    the DICOMDIR's path when one was written, problems, ``left_out`` by the transform, and, when cancelled,
    how many files were ``not_written``."""

    destination: Path
    total: int = 0
    written: int = 0
    bytes: int = 0
    seconds: float = 0.0
    layout: str = Layout.TREE
    dicomdir: Path | None = None
    zip: bool = False
    left_out: int = 0
    cancelled: bool = False
    not_written: int = 0
    problems: list[ExportProblem] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # relative paths of the files written, in order
    notes: list[str] = field(default_factory=list)  # what the user should know about the result (sentences)

    def summary(self) -> str:
        """The result as the CLI prints it: one line, then one tab-separated line per file not exported."""
        what = f"{counted(self.written, 'file')} ({self.bytes / 1e6:.1f} MB)"
        extras = ([f"layout {self.layout}"] if self.layout != FILE_SET_LAYOUT else ["DICOMDIR file-set"]) + (
            ["ZIP"] if self.zip else [])
        line = f"exported {what} of {self.total} to {self.destination} in {self.seconds:.1f} s ({', '.join(extras)})"
        if self.left_out:
            line += f"; {counted(self.left_out, 'file')} left out by the transform"
        if self.cancelled:
            line += f"; cancelled: {counted(self.not_written, 'file')} not exported"
            if self.dicomdir or self.zip:
                line += ", nothing was kept"
        if self.problems:
            line += f"; {counted(len(self.problems), 'file')} could not be exported:"
        return "\n".join([line] + [f"  {p.sop_instance_uid}\t{p.path}\t{p.reason}" for p in self.problems]
                         + [f"note: {note}" for note in self.notes])


def export_items(db: Any, items: Iterable[tuple[str, int]], destination: str | os.PathLike[str],
                 options: ExportOptions | None = None, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> ExportReport:
    """Export the instances under ``items`` ((level, row id): patients, studies, series, instances) into the
    folder ``destination`` (made when missing), as :func:`export_files` does."""
    options = options or ExportOptions()
    return export_files(plan_export(db, items, options.layout), destination, options, progress, cancel)


def export_files(plan: list[ExportFile], destination: str | os.PathLike[str], options: ExportOptions | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> ExportReport:
    """Write the planned files under ``destination``. ``progress(done, total)`` after each file; ``cancel``
    stops before the next one. Raises ExportError when a destination file exists (and not ``overwrite``) or
    the folder cannot be made; unreadable sources are report rows."""
    options = options or ExportOptions()
    start = time.perf_counter()
    target = Path(destination)
    if options.zip and target.suffix.lower() != ".zip":
        target = target.with_name(target.name + ".zip")
    layout = FILE_SET_LAYOUT if options.dicomdir else Layout(options.layout).value
    report = ExportReport(target, total=len(plan), layout=layout, zip=options.zip)
    if options.zip:
        _refuse_existing([target], options.overwrite)
        staging = Path(tempfile.mkdtemp(prefix=".dicomtui-export-", dir=_made(target.parent)))
        try:
            _export_folder(plan, staging, options, report, progress, cancel)
            if not report.cancelled:
                _zip_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        _export_folder(plan, target, options, report, progress, cancel)
    report.seconds = time.perf_counter() - start
    return report


def _made(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot make the export folder {folder}: {exc.strerror or exc}") from exc
    if not folder.is_dir():
        raise ExportError(f"cannot export into {folder}: it is a file, not a folder")
    return folder


def _refuse_existing(paths: Iterable[Path | str], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        more = f" and {counted(len(existing) - 1, 'other file')}" if len(existing) > 1 else ""
        raise ExportError(f"{existing[0]}{more} already exist; nothing was exported (choose another folder, or "
                          f"ask to overwrite them: --overwrite)")


def _export_folder(plan: list[ExportFile], folder: Path, options: ExportOptions, report: ExportReport,
                   progress: Callable[[int, int], None] | None, cancel: threading.Event | None) -> None:
    if options.dicomdir:
        # pydicom names a file-set's files from PT000000 on: an earlier file-set there would be overwritten
        _refuse_existing([folder / "DICOMDIR", folder / "PT000000"], options.overwrite)
        _export_file_set(plan, _made(folder), options, report, progress, cancel)
        return
    root = str(_made(folder)) if plan else str(folder)  # plain strings and os calls below: a small file's budget
    _refuse_existing((f"{root}/{f.name}" for f in plan), options.overwrite)  # is ~20 us (cp -r: 18 us)
    made: set[str] = set()
    for n, item in enumerate(plan):
        if cancel is not None and cancel.is_set():
            report.cancelled, report.not_written = True, len(plan) - n
            return
        dest = f"{root}/{item.name}"
        parent = dest.rpartition("/")[0]
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            size = _write_one(item, dest, options)
        except (OSError, ValueError) as exc:
            report.problems.append(ExportProblem(item.sop_instance_uid, str(item.source), _reason(exc)))
            if isinstance(exc, OSError) and is_disk_full(exc):  # every next file would fail the same way
                report.not_written = len(plan) - n - 1
                report.notes.append(f"{folder} is full: the export stopped, {report.not_written} files not written")
                return
        else:
            if size is None:
                report.left_out += 1
            else:
                report.written += 1
                report.bytes += size
                report.names.append(item.name)
        if progress is not None:
            progress(n + 1, len(plan))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the file is missing (a linked file moved or deleted?)"
    if isinstance(exc, FileExistsError):
        return "a file of that name appeared during the export; it was kept"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _write_one(item: ExportFile, dest: str, options: ExportOptions) -> int | None:
    """Write one file; its size, or None when the transform left it out."""
    if options.transform is None:
        head = None if item.stored else part10_head(item.source, item.sop_class_uid, item.sop_instance_uid)
        return _written(dest, options.overwrite, lambda out: _copy_bytes(str(item.source), out, head))
    ds = options.transform(read_dataset(item.source, pixels=True).dataset)
    if ds is None:
        return None

    def save(out: int) -> int:
        with open(out, "wb", closefd=False) as f:
            ds.save_as(f, enforce_file_format=True)
            return f.tell()

    return _written(dest, options.overwrite, save)


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)  # FileExistsError: another's file
_REPLACE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def _written(dest: str, overwrite: bool, write: Callable[[int], int]) -> int:
    """Run ``write(file descriptor) -> size`` into ``dest``: created exclusively (an existing file is left
    alone: FileExistsError), or (``overwrite``) written beside it and renamed over it. A failed write leaves
    nothing behind. The size written."""
    folder, _, name = dest.rpartition("/")
    path = f"{folder}/.{name}.part" if overwrite else dest
    out = os.open(path, _REPLACE if overwrite else _NEW, 0o666)
    try:
        try:
            size = write(out)
        finally:
            os.close(out)
        if overwrite:
            os.replace(path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # ours: created above
        raise
    return size


def _copy_bytes(source: str, out: int, head: tuple[bytes, int, str] | None) -> int:
    """The bytes of ``source`` into the open file ``out`` (after ``head``'s header, without the first bytes it
    replaces), by ``sendfile``: the kernel copies, as ``cp`` does. The bytes written."""
    src = os.open(source, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        offset = written = 0
        if head is not None:
            written = os.write(out, head[0])
            offset = head[1]
        size = os.fstat(src).st_size
        while offset < size:
            sent = os.sendfile(out, src, offset, size - offset)
            if sent == 0:
                break
            offset += sent
            written += sent
        return written
    finally:
        os.close(src)


def _export_file_set(plan: list[ExportFile], folder: Path, options: ExportOptions, report: ExportReport,
                     progress: Callable[[int, int], None] | None, cancel: threading.Event | None) -> None:
    writer = FileSetWriter()
    names: dict[str, set[str]] = {}  # PatientID → PatientNames: a DICOMDIR knows a patient by PatientID only
    for n, item in enumerate(plan):
        if cancel is not None and cancel.is_set():
            report.cancelled, report.not_written = True, len(plan) - n
            return
        try:
            ds = read_dataset(item.source, pixels=True).dataset
            if options.transform is not None:
                ds = options.transform(ds)
            if ds is None:
                report.left_out += 1
            else:
                writer.add(ds)
                names.setdefault(str(ds.get("PatientID", "")), set()).add(str(ds.get("PatientName", "")))
        except (OSError, ValueError) as exc:
            report.problems.append(ExportProblem(item.sop_instance_uid, str(item.source), _reason(exc)))
        if progress is not None:
            progress(n + 1, len(plan))
    report.notes += [f"the patients {' and '.join(sorted(n))} share the PatientID {pid!r}: the DICOMDIR lists them "
                     f"as one patient (PS3.3 F.5: a patient record is keyed by PatientID)"
                     for pid, n in names.items() if len(n) > 1]
    if writer.count:
        report.dicomdir = writer.write(folder)
        report.names = writer.names()
        report.written = writer.count
        report.bytes = sum((folder / name).stat().st_size for name in report.names)


def _zip_folder(folder: Path, target: Path) -> None:
    """Every file under ``folder`` into the ZIP ``target`` (names relative to ``folder``), written beside it
    and renamed into place."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(folder).as_posix())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
