"""The edit's writing (:func:`.edit.apply_edit`): the files of a plan written in batches by ``WRITERS`` threads,
each batch made durable, renamed into storage and indexed while the writers fill the next one; the old copies
removed once the commit naming the new ones is durable. The guarantees are in :mod:`.edit`'s docstring."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import storage
from ..database import DicomDatabase, FileRecord
from ..database.records import read_checked
from ..levels import Level
from .rewrite import Setting, place_private, read_head, splice_possible, write_full, write_spliced

if TYPE_CHECKING:
    from .edit import EditReport, FileToEdit

BATCH = 64  # files per syncfs pair and per database transaction
WRITERS = 2  # files written at once: the kernel copies one while Python prepares the next


def write_files(db: DicomDatabase, files: list[FileToEdit], settings: dict[str, list[Setting]], last: int,
                set_utf8: bool, change: Callable[[Any], None] | None, report: EditReport,
                progress: Callable[[int, int], None] | None, cancel: threading.Event | None, min_free: int) -> None:
    """Write ``files`` with ``settings[SeriesInstanceUID]`` applied (heads read up to ``last``; ``change``: the
    new UIDs, None to keep them; ``set_utf8``: transcoded to ISO_IR 192) into ``db``, counting into ``report``
    (``progress(done, total)`` after each batch; ``cancel`` checked before each; ``min_free``: the disk floor).
    Raises what indexing raises, after removing the new files of the batch that failed."""
    total = len(files)
    done = 0
    with _Releaser() as releaser, ThreadPoolExecutor(WRITERS, thread_name_prefix="dicomtui-edit") as pool:
        # two batches in flight: the writers fill the next one while this thread indexes the last
        batches = _batches(files)
        ahead = _submit_batch(db.root, batches[0], settings, last, set_utf8, change, report, pool, cancel,
                              min_free) if batches else None
        old = _OldCopies(db, releaser)  # the last batch's superseded copies, removed after the next syncfs
        try:
            for k in range(len(batches)):
                current, ahead = ahead, None
                if current is None:
                    break
                if k + 1 < len(batches) and not current.stopped:
                    ahead = _submit_batch(db.root, batches[k + 1], settings, last, set_utf8, change, report,
                                          pool, cancel, min_free)
                try:
                    _finish_batch(db, current, change is not None, report, old)
                except BaseException:
                    _discard(ahead)  # written but never to be renamed: their temp files go now
                    raise
                done += len(current.pending)
                if current.stopped:
                    report.errors.append(f"edit stopped: {current.stopped}; the {report.written} files edited "
                                         f"before are kept and indexed, the others unchanged; make room and edit "
                                         f"again")
                if progress is not None:
                    progress(done, total)
        finally:
            old.remove(flushed=False)


def _batches(files: list[FileToEdit]) -> list[list[FileToEdit]]:
    """``files`` in batches of ``BATCH``, the first one a quarter of that: this thread waits for the first batch
    with nothing else to do, so the sooner it is written, the sooner indexing overlaps writing."""
    if not files:
        return []
    first = max(1, BATCH // 4)
    return [files[:first]] + [files[start:start + BATCH] for start in range(first, len(files), BATCH)]


class _OldCopies:
    """The stored copies a committed batch superseded, and the descriptors that hold them open: removed (under
    the write lock, :meth:`.DicomDatabase.remove_superseded`) once that commit is durable, which the next batch's
    ``syncfs`` makes it for free; then released (their blocks freed in the releaser's thread)."""

    def __init__(self, db: DicomDatabase, releaser: _Releaser) -> None:
        self.db, self.releaser = db, releaser
        self.rels: list[str] = []
        self.held: list[int] = []

    def add(self, rels: list[str], held: list[int]) -> None:
        self.rels += rels
        self.held += held

    def remove(self, flushed: bool) -> None:
        rels, held, self.rels, self.held = self.rels, self.held, [], []
        try:
            self.db.remove_superseded(rels, flushed=flushed)
        finally:
            self.releaser.release(held)


@dataclass
class _Batch:
    """Files handed to the writers (in order), and whether the floor stopped the edit in this batch."""

    pending: list[tuple[FileToEdit, Future[_Written]]]
    stopped: str = ""  # why the free-space floor stopped the edit before the rest of the batch


def _submit_batch(root: Path, batch: list[FileToEdit], settings: dict[str, list[Setting]], last: int,
                  set_utf8: bool, change: Callable[[Any], None] | None, report: EditReport,
                  pool: ThreadPoolExecutor, cancel: threading.Event | None, min_free: int) -> _Batch | None:
    """One batch handed to the writers; None when cancelled first. It stops before a file that the free-space
    floor ``min_free`` refuses (one error sentence; the files before it are written and indexed)."""
    if cancel is not None and cancel.is_set():
        report.cancelled = True
        return None
    pending: list[tuple[FileToEdit, Future[_Written]]] = []
    for f in batch:
        # each new file is written before its old one goes; the files being written meanwhile count as well
        if problem := _below_floor(root, f.path, min_free, 2 * WRITERS):
            return _Batch(pending, problem)
        pending.append((f, pool.submit(_write_one, root, f, settings[f.uids[Level.SERIES]], last, set_utf8,
                                       change)))
    return _Batch(pending)


def _discard(batch: _Batch | None) -> None:
    """A batch that will not be renamed into storage: the files not started are not written, the temp files of
    the others removed."""
    pending = batch.pending if batch is not None else []
    for _, future in pending:
        future.cancel()
    for _, future in pending:
        if future.cancelled():
            continue
        try:
            w = future.result()
        except Exception:  # noqa: BLE001, S112 - it left nothing behind (``_write_one`` cleans up after itself)
            continue
        w.tmp.unlink(missing_ok=True)
        if w.held >= 0:
            os.close(w.held)


def _finish_batch(db: DicomDatabase, batch: _Batch, new_uids: bool, report: EditReport, old: _OldCopies) -> None:
    """A batch's files, once written: made durable, renamed into storage and indexed (see the module's
    docstring); a file that failed is a report error."""
    root = db.root
    written: list[_Written] = []
    try:
        for f, future in batch.pending:
            try:
                written.append(future.result())
            except Exception as exc:  # noqa: BLE001 - one file's failure is a report row, the others go on
                report.errors.append(f"{f.path}: {exc}")
    except BaseException:  # interrupted while waiting (Ctrl+C): nothing of this batch is renamed yet
        _discard(batch)
        raise
    renamed: list[Path] = []
    try:
        storage.sync_filesystem(root)  # the new files' bytes durable before any name points at them
        old.remove(flushed=True)  # that syncfs made the last batch's commit durable: its old copies may go
        records = []
        folders: set[Path] = set()
        for w in written:
            f = w.file
            dest = root / w.rel
            if dest.parent not in folders:
                folders |= _make_folders(dest.parent)
            os.replace(w.tmp, dest)
            renamed.append(dest)
            size, mtime_ns = w.stat
            source = (w.rel, size, mtime_ns) if new_uids else f.source
            records.append(FileRecord(w.header, w.rel, True, size, mtime_ns, *source, w.warning))
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):  # the renames durable
            _sync_folder(folder)
        # the old copies stay open (the writers kept them) until they are removed: their unlink is then only a
        # name removed, and the blocks are freed when the releaser closes them, while the next batch is written
        # (~3 ms a 512 KiB file on ext4, the largest cost of an edit otherwise)
        result = db.add_files(records, defer_removal=True)
    except BaseException:
        # not indexed (the transaction rolled back): the rows still name the old files, so the new ones, which
        # no row names, go (a crash here instead leaves them for `db check` to list)
        for path in renamed + [w.tmp for w in written[len(renamed):]]:
            with contextlib.suppress(OSError):
                path.unlink()
        old.releaser.release([w.held for w in written])
        raise
    old.add(result.superseded, [w.held for w in written])
    report.written += len(records)
    report.spliced += sum(w.spliced for w in written)
    report.copied_from_links += [str(w.file.path) for w in written if not w.file.stored]


def _below_floor(root: Path, path: Path, min_free: int, copies: int = 1) -> str:
    """Why the edited copy of ``path`` may not be written (:func:`.storage.floor_problem`), "" when it may;
    ``copies``: as many files of its size being written at once (the room they take is not yet seen)."""
    if min_free <= 0:
        return ""
    try:
        need = os.path.getsize(path)
    except OSError:
        return ""  # the write says why
    return storage.floor_problem(root, min_free, need * copies)


def _make_folders(folder: Path) -> set[Path]:
    """``folder`` made, with its parents: the set of folders whose entries change (``folder``, each folder made,
    and the parent of each)."""
    made = {folder}
    parent = folder
    while not parent.exists():
        made.add(parent.parent)
        parent = parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _sync_folder(folder: Path) -> None:
    """The entries of ``folder`` made durable: POSIX ``fsync`` of the folder (on ext4, one journal commit; the
    files' bytes were already flushed by the batch's ``syncfs``)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Releaser:
    """Closes file descriptors in a thread (their files' blocks freed there); joined on exit."""

    def __init__(self) -> None:
        import queue

        self._queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dicomtui-edit-release", daemon=True)

    def __enter__(self) -> _Releaser:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()

    def release(self, fds: list[int]) -> None:
        self._queue.put([fd for fd in fds if fd >= 0])

    def _run(self) -> None:
        while (fds := self._queue.get()) is not None:
            for fd in fds:
                os.close(fd)


@dataclass
class _Written:
    """One edited file in ``incoming/``: ``tmp``, renamed to ``rel`` (storage path) once the batch is durable;
    ``header``/``warning``/``stat`` its index record as read back (:func:`.database.records.read_checked`);
    ``held``: a descriptor of the old stored file for the releaser (-1: none); ``spliced``: by the fast path."""

    file: FileToEdit
    tmp: Path
    rel: str
    header: dict[str, Any]
    warning: str
    stat: tuple[int, int]
    held: int
    spliced: bool


def _write_one(root: Path, f: FileToEdit, settings: list[Setting], last: int, set_utf8: bool,
               change: Callable[[Any], None] | None) -> _Written:
    """One file written into ``incoming/`` and its record read back (run by the batch's writer threads: the
    copy, the writes and the opens release the GIL)."""
    tmp = storage.temp_file(root, "edit")
    held = -1
    try:
        st = os.stat(f.path)
        if f.head is not None and f.head[1:] == (st.st_size, st.st_mtime_ns):
            head = f.head[0]  # unchanged since the plan read it
        else:
            head = read_head(f.path, last)
        f.head = None  # stale once written (and memory back)
        settings = place_private(head, settings)
        spliced = change is None and not set_utf8 and splice_possible(head, settings)
        if spliced:
            held = write_spliced(f.path, head, settings, tmp, keep_source=f.stored)
        else:
            write_full(f.path, settings, tmp, change, utf8=set_utf8)
            held = _hold(f.path) if f.stored else -1
        new = os.stat(tmp)
        header, warning = read_checked(str(tmp), new.st_size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if held >= 0:
            os.close(held)
        raise
    rel = storage.relative_path(header["StudyInstanceUID"], header["SeriesInstanceUID"], header["SOPInstanceUID"])
    if f.stored and rel == f.row_path:  # beside the old file, which goes when the row points at the new one
        rel = rel[: -len(".dcm")] + ".edited.dcm"
    return _Written(f, tmp, rel, header, warning, (new.st_size, new.st_mtime_ns), held, spliced)


def _hold(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return -1
