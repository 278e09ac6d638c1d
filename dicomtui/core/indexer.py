"""Import files and folders into a database: scan, parse headers, copy or link, index, report.

``run_import`` is a generator of :class:`ImportProgress` events that ends by yielding the
:class:`ImportReport`; closing it (or setting ``cancel``) stops the import cleanly after the current batch, with
everything imported so far committed. Headers are parsed in worker processes (both cores) while this process
writes batches to SQLite; small imports are parsed inline, where a pool would cost more than it saves.

Several files with one SOPInstanceUID: one is kept by the rule of :mod:`dicomtui.core.duplicates` (lossless
transfer syntax first, then the first path in sorted order; the same in link and copy mode), the others are
named in a warning. A DICOMDIR does not limit the import: files its folder holds but it does not list are
imported too and counted (``outside_dicomdir``, with a warning per DICOMDIR).
"""

from __future__ import annotations

import itertools
import marshal
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dicomfile, storage
from .database import BatchResult, DicomDatabase, FileRecord, Prepared, prepare
from .database.write import SQLITE_FULL, Settle
from .duplicates import Duplicates, Resolved
from .errors import DatabaseError, HeaderError
from .import_report import ImportProgress, ImportReport
from .levels import ImportMode
from .scan import MEDIA_DIRECTORY_REASON, Problem, is_media_directory, iter_scan, scan

__all__ = ["ImportMode", "ImportProgress", "ImportReport", "Problem", "import_paths",
           "iter_scan", "parse_chunk", "run_import", "scan"]

MODES = tuple(m.value for m in ImportMode)  # ("copy", "link"), as the error for another mode says

NOT_DICOM = "not a DICOM file"  # how header.read_header's rejection of a file that is not DICOM begins
# a copy removed between its rename into storage and its row (by `rm` of its study in another process)
VANISHED = "its copy in the database was deleted before it was indexed (removed by another process); import it again"
DISK_FULL = "disk full"  # how the rejection of a file the disk had no room for begins
NOT_COPIED = "not copied"  # ... and of one the free-space floor kept out (then storage.BELOW_FLOOR)
CHUNK = 512  # files per worker task
BATCH = 2048  # files per database transaction
POOL_THRESHOLD = 2000  # fewer files than this are parsed in this process
PROGRESS_EVERY_S = 0.1


# ---- parsing (runs in worker processes) ----------------------------------------------------------------------

def parse_chunk(root: str, mode: str, items: list[tuple[str, int, int]], min_free: int = 0) -> list[tuple]:
    """Parse (and in copy mode store) files; returns ("ok", hierarchy rows or None for "as before", instance row,
    warning, path) or ("bad", path, reason) per file. ``size`` -1 means "not stat'ed yet". ``min_free``: no copy
    leaves less free (bytes; :func:`.storage.copy_batch`)."""
    out: list[tuple] = []
    for path, size, mtime in items:
        try:
            if size < 0:
                st = os.stat(path)
                size, mtime = st.st_size, st.st_mtime_ns
            out.append(("ok", FileRecord.from_file(path, stat=(size, mtime)), None))
        except HeaderError as exc:
            out.append(("bad", path, MEDIA_DIRECTORY_REASON if is_media_directory(path) else str(exc)))
        except OSError as exc:
            out.append(("bad", path, f"cannot read: {exc.strerror or exc}"))
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the import: report it
            out.append(("bad", path, f"unexpected error reading it: {type(exc).__name__}: {exc}"))
    if mode == ImportMode.COPY:
        _store_copies(Path(root), out, min_free)
    # Rows for the database, made here so that the writing process only inserts. The patient/study/series part
    # is sent only when it differs from the previous file's (None otherwise): files come in runs of a series.
    rows: list[tuple] = []
    last = None
    for r in out:
        if r[0] != "ok":
            rows.append(r)
            continue
        hier, inst = prepare(r[1])
        rows.append(("ok", None if hier == last else hier, inst, r[1].warning or None, r[1].source_path))
        last = hier
    return rows


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to end this worker when the importing process dies
    (kill -9 included), instead of leaving it orphaned. Ctrl-C is the importing process's to handle (it reaches
    the whole process group): a worker ignores SIGINT, so that it finishes the copy it is making (no temp file
    left in ``incoming/``) and its results are indexed by the cancel."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _parse_chunk_marshalled(root: str, mode: str, items: list[tuple[str, int, int]], min_free: int = 0) -> bytes:
    """parse_chunk for a worker process: marshal packs its tuples of plain values 4× faster than pickle."""
    return marshal.dumps(parse_chunk(root, mode, items, min_free))


def _store_copies(root: Path, results: list[tuple], min_free: int = 0) -> None:
    """Copy the parsed files into storage and point their records there (failures become rejections). A file
    without the PS3.10 header (a bare data set) is stored as a PS3.10 file: preamble, ``DICM`` and a file meta
    with its transfer syntax as the import read it (its record's syntax too: the header walk records implicit VR
    for every bare data set); its record's warning says so (:data:`dicomfile.META_WRITTEN`)."""
    ok = [i for i, r in enumerate(results) if r[0] == "ok"]
    pairs, heads = [], []
    for i in ok:
        rec = results[i][1]
        h = rec.header
        pairs.append((rec.source_path,
                      storage.relative_path(h["StudyInstanceUID"], h["SeriesInstanceUID"], h["SOPInstanceUID"])))
        head = dicomfile.part10_head(rec.source_path, h.get("SOPClassUID") or "", h["SOPInstanceUID"])
        heads.append(head and head[:2])
        if head is not None:
            h["TransferSyntaxUID"] = head[2]
            rec.warning = "; ".join(filter(None, (rec.warning, dicomfile.META_WRITTEN)))
    for i, (source, rel), error in zip(ok, pairs, storage.copy_batch(root, pairs, heads, min_free), strict=True):
        if error is not None:
            text = error.strerror or str(error)
            if text.startswith(storage.BELOW_FLOOR):
                results[i] = ("bad", source, f"{NOT_COPIED}: {text}")
            else:
                results[i] = ("bad", source, f"{DISK_FULL}: cannot copy into the database ({text})"
                              if storage.is_disk_full(error) else f"cannot copy into the database: {text}")
            continue
        rec = results[i][1]
        try:
            st = os.stat(root / rel)
        except OSError as exc:  # deleted as soon as stored: `rm` of its study in another process
            results[i] = ("bad", source, f"{VANISHED} ({exc.strerror or exc})")
            continue
        rec.path, rec.stored, rec.file_size, rec.file_mtime_ns = rel, True, st.st_size, st.st_mtime_ns


# ---- the import ----------------------------------------------------------------------------------------------

def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with a real stderr. It passes ``sys.stderr``'s descriptor to the
    tracker process; inside a TUI sys.stderr is a capture object whose fileno() is -1, and starting the process
    pool then fails with "bad value(s) in fds_to_keep". Its rare warnings go to /dev/null instead."""
    from multiprocessing import resource_tracker

    try:
        usable = sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = True  # no fileno at all: multiprocessing skips it by itself
    if usable:
        return
    saved = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


def run_import(db: DicomDatabase, paths: Iterable[str | os.PathLike], mode: str = ImportMode.LINK,
               workers: int | None = None, cancel: threading.Event | None = None, min_free: int = 0,
               ) -> Iterator[ImportProgress | ImportReport]:
    """Import ``paths`` into ``db``; yields progress events, then the ImportReport as the last item.

    In copy mode no copy leaves less than ``min_free`` bytes free on the database's disk (``LocalNode.
    min_free_bytes``, the listener's floor): the import stops there as when the disk is full, what was copied
    indexed, ``report.min_free`` set.

    Scanning, parsing and writing overlap: chunks of files go to the parsers while the scan goes on, so the
    progress total grows until the scan is complete (``ImportProgress.phase`` is "scan" until then).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    start = time.perf_counter()
    report = ImportReport(mode=ImportMode(mode), database=str(db.root))
    folders = [os.path.abspath(os.fspath(p)) for p in paths]
    dups = Duplicates(folders, time.time(), mode == ImportMode.COPY)
    yield ImportProgress("scan", 0, 0)
    scan_state = _ScanState()
    chunks = _chunks_to_parse(db, folders, report, scan_state)
    # space set aside for the index once copies fill the disk; a floor at least that large keeps it by itself
    # (and a reserve would count against the floor: on a small disk nothing would be copied)
    reserve = storage.reserve_space(db.root) if mode == ImportMode.COPY and min_free < storage.RESERVE_BYTES else None
    try:
        yield from _import(db, mode, workers, cancel, report, scan_state, chunks, dups, reserve, min_free)
    finally:
        storage.release_space(reserve)
    report.elapsed_s = time.perf_counter() - start
    yield report


def _import(db: DicomDatabase, mode: str, workers: int | None, cancel: threading.Event | None,
            report: ImportReport, scan_state: _ScanState, chunks: Iterator[list[tuple[str, int, int]]],
            dups: Duplicates, reserve: Path | None, min_free: int = 0) -> Iterator[ImportProgress]:
    """The parse-and-write loop of :func:`run_import`; fills ``report``. ``reserve``: the space set aside for
    the database's writes once the copies have filled the disk."""
    db.bulk_writes(True)
    pools: list[ProcessPoolExecutor] = []  # joined at the end: the workers exit while the last rows are written
    done = 0
    pending: list[Prepared] = []
    notes: list[Problem] = []  # the warnings of the pending files: said only for those kept
    last_event = time.perf_counter()
    hier: Any = None  # the patient/study/series rows of the run of files being read
    try:
        for results in _parse_all(str(db.root), mode, chunks, workers, cancel, pools, min_free):
            for result in results:
                if result[0] == "ok":
                    hier = result[1] or hier
                    pending.append((hier, result[2]))
                    if result[3]:
                        notes.append(Problem(result[4], result[3]))
                elif not scan_state.left_out(result[1], result[2]):
                    report.rejected.append(Problem(result[1], result[2]))
                    if result[2].startswith((DISK_FULL, NOT_COPIED)):  # stop scanning; those in flight are written
                        report.disk_full = scan_state.stop = True
                        report.min_free = min_free if result[2].startswith(NOT_COPIED) else report.min_free
            done += len(results)
            # Once the scan is complete, each chunk is written as it comes: the workers are still parsing the
            # chunks in flight meanwhile, and the last write is one chunk, not a whole batch, made before the
            # pool shuts down (the tail where only this process works).
            if len(pending) >= BATCH or (scan_state.complete and pending):
                _commit(db, pending, notes, report, dups, reserve)
            now = time.perf_counter()
            if now - last_event >= PROGRESS_EVERY_S:
                last_event = now
                yield ImportProgress("import" if scan_state.complete else "scan",
                                     done + scan_state.skipped, report.files_seen,
                                     _result_path(results[-1]) if results else scan_state.folder,
                                     scanned=report.files_seen)
            if cancel is not None and cancel.is_set() and not report.cancelled:
                # No more scanning nor new chunks; the chunks the workers already took are still read and
                # indexed (in copy mode their files are in storage: indexed, not left unreferenced).
                report.cancelled = scan_state.stop = True
    except GeneratorExit:
        report.cancelled = True
        _commit(db, pending, notes, report, dups, reserve)
        raise
    finally:
        db.bulk_writes(False)
        for pool in pools:
            pool.shutdown()
    report.cancelled = report.cancelled or (cancel is not None and cancel.is_set())  # set before any result came
    _commit(db, pending, notes, report, dups, reserve)
    report.warnings += dups.warnings()
    _note_unlisted(scan_state, report)
    if not report.cancelled:  # after a cancel, "done of what was found" could read as a finished 100 %
        yield ImportProgress("import", done + scan_state.skipped, report.files_seen, scanned=report.files_seen)


@dataclass
class _ScanState:
    folder: str = ""
    complete: bool = False
    skipped: int = 0  # files skipped as unchanged by the scan
    stop: bool = False  # set when the disk is full: scan no further
    unlisted: dict[str, str] = field(default_factory=dict)  # file -> the DICOMDIR of its folder that omits it
    not_dicom: set[str] = field(default_factory=set)  # of those, files that are not DICOM (not rejected)

    def left_out(self, path: str, reason: str) -> bool:
        """Whether a file that is not DICOM lies outside a DICOMDIR: media carry viewers, autorun files and
        notes beside the DICOMDIR, which are named in the DICOMDIR's warning instead of rejected one by one."""
        if path in self.unlisted and reason.startswith(NOT_DICOM):
            self.not_dicom.add(path)
            return True
        return False


def _note_unlisted(state: _ScanState, report: ImportReport) -> None:
    """Count the files found outside a DICOMDIR and name them in one warning per DICOMDIR (by sub-folder)."""
    by_dicomdir: dict[str, list[str]] = {}
    for path, dicomdir in state.unlisted.items():
        by_dicomdir.setdefault(dicomdir, []).append(path)
    for dicomdir, files in by_dicomdir.items():
        report.outside_dicomdir += len(files)
        skipped = [f for f in files if f in state.not_dicom]
        text = (f"{_files(len(files))} in its folder not listed in this DICOMDIR: read too "
                f"({_named(dicomdir, files)})")
        report.left_out += len(skipped)
        if skipped:
            text += f"; not DICOM, left out: {len(skipped)} ({_named(dicomdir, skipped)})"
        report.warnings.append(Problem(dicomdir, text))


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _named(dicomdir: str, files: list[str], most: int = 5) -> str:
    """Files named relative to a DICOMDIR's folder, those in a sub-folder by sub-folder: "a.txt, SUB/ (50 files)"."""
    groups: dict[str, int] = {}
    for path in files:
        rel = os.path.relpath(path, os.path.dirname(dicomdir)).split(os.sep)
        key = rel[0] + "/" if len(rel) > 1 else rel[0]
        groups[key] = groups.get(key, 0) + 1
    named = [f"{k} ({_files(n)})" if k.endswith("/") else k for k, n in groups.items()]
    return ", ".join(named[:most]) + (f", and {len(named) - most} more" if len(named) > most else "")


def _chunks_to_parse(db: DicomDatabase, paths: list[str], report: ImportReport,
                     state: _ScanState) -> Iterator[list[tuple[str, int, int]]]:
    """Scan ``paths`` and yield chunks of files to parse; files imported before the same way, with the same
    size and mtime, are skipped without reading. Yields an empty chunk now and then while it only skips or
    scans, so that the consumer can report progress and notice a cancel."""
    known: dict[str, tuple[int, int, int]] = {}
    for top in paths:
        known.update(db.known_sources(top if os.path.isdir(top) else os.path.dirname(top)))
    stored = int(report.mode == ImportMode.COPY)
    found: list[tuple[str, int, int]] = []
    chunk: list[tuple[str, int, int]] = []
    last = time.perf_counter()
    # Nothing imported from these folders before: nothing to compare, so the parsers stat the files (in parallel).
    for folder in iter_scan(paths, found, report.rejected, stat=bool(known), skip=str(db.root),
                            unlisted=state.unlisted, notes=report.notes):
        if state.stop:
            return
        state.folder = folder
        report.files_seen += len(found)
        for item in found:
            if known.get(item[0]) == (item[1], item[2], stored):
                report.skipped_unchanged += 1
                state.skipped += 1
                continue
            chunk.append(item)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
                if state.stop:
                    return
                last = time.perf_counter()
        found.clear()
        if time.perf_counter() - last >= PROGRESS_EVERY_S:
            last = time.perf_counter()
            yield []
    state.complete = True
    if chunk:
        yield chunk


def import_paths(db: DicomDatabase, paths: Iterable[str | os.PathLike], mode: str = ImportMode.LINK,
                 progress: Callable[[ImportProgress], None] | None = None, workers: int | None = None,
                 cancel: threading.Event | None = None, min_free: int = 0) -> ImportReport:
    """Run an import to the end; ``progress`` is called with each event (``min_free``: see :func:`run_import`)."""
    report = None
    for event in run_import(db, paths, mode, workers, cancel, min_free):
        if isinstance(event, ImportReport):
            report = event
        elif progress is not None:
            progress(event)
    assert report is not None
    return report


def _result_path(result: tuple) -> str:
    return result[4] if result[0] == "ok" else result[1]


def _commit(db: DicomDatabase, pending: list[Prepared], notes: list[Problem], report: ImportReport,
            dups: Duplicates, reserve: Path | None = None) -> None:
    """Write a batch, one file kept per SOPInstanceUID (:mod:`dicomtui.core.duplicates`). In copy mode the kept
    file of a SOPInstanceUID met in several files is copied again here, after the workers copied all of them to
    the one storage path of that UID (the last copy is the kept one whatever the order the workers ran in).
    The warnings of the batch's files (``notes``) go to the report for the files kept."""
    if not pending:
        return
    done: list[tuple[Resolved, list[Prepared]]] = []

    def settle(batch: Sequence[Prepared], sources: dict[str, tuple]) -> list[Prepared]:
        """The rule applied in the writer's transaction, to the rows it read (once: a retry writes the same)."""
        if done:
            return done[0][1]
        settled = dups.resolve(sources, batch)
        rows = settled.rows
        for source in settled.recopy:
            for r in parse_chunk(str(db.root), ImportMode.COPY, [(source, -1, -1)]):
                if r[0] == "ok":
                    rows.append((r[1], r[2]))
                else:
                    report.rejected.append(Problem(r[1], r[2]))
        done.append((settled, rows))
        return rows

    result = _add_rows(db, pending, reserve, settle)
    settled, rows = done[0]
    report.rejected += [Problem(source, VANISHED) for source in result.vanished]
    report.patients_added += result.patients_added
    report.studies_added += result.studies_added
    report.series_added += result.series_added
    report.instances_added += result.instances_added
    report.updated += max(0, result.instances_updated - settled.not_updates)
    report.duplicates += settled.duplicates
    report.skipped_unchanged += settled.unchanged
    if notes:
        kept = {inst[6] for _hier, inst in rows}  # source_path
        report.warnings += [n for n in notes if n.path in kept]
    pending.clear()
    notes.clear()


def _add_rows(db: DicomDatabase, rows: list[Prepared], reserve: Path | None, settle: Settle) -> BatchResult:
    """Write rows; when SQLite finds the disk full, give back the reserved space and write them again (the
    copies filled the disk: their rows must still be committed, or they are stored but invisible)."""
    try:
        return db.add_prepared(rows, settle)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlite_errorcode", None) != SQLITE_FULL or not storage.release_space(reserve):
            raise
    return db.add_prepared(rows, settle)


def _parse_all(root: str, mode: str, chunks: Iterator[list[tuple[str, int, int]]], workers: int | None,
               cancel: threading.Event | None = None, pools: list[ProcessPoolExecutor] | None = None,
               min_free: int = 0) -> Iterator[list]:
    """Parse results chunk by chunk, in input order: inline for small sets, else in a process pool.

    Chunks are buffered until there are enough files to be worth a pool (or the scan ends first). Once
    ``cancel`` is set no chunk is started: the pool's waiting chunks are cancelled, those already running are
    finished and yielded (their copies are in storage and must be indexed). ``pools``: receives the process pool,
    shut down without waiting for its workers to exit; the caller joins them (``shutdown()``) later."""
    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    auto = workers is None
    count_workers: int = (os.cpu_count() or 1) if workers is None else workers
    buffered: list[list[tuple[str, int, int]]] = []
    count = 0
    for chunk in chunks:
        if not chunk:
            yield []  # a heartbeat from the scan
            continue
        buffered.append(chunk)
        count += len(chunk)
        if count_workers > 0 and (count >= POOL_THRESHOLD or not auto) and len(buffered) > 1:
            break
    else:  # the scan ended with few files: parsing here is quicker than starting processes
        for chunk in buffered:
            yield parse_chunk(root, mode, chunk, min_free)
            if cancelled():
                return
        return
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    if context.get_start_method() != "fork":
        _start_resource_tracker()
    pool = ProcessPoolExecutor(max_workers=count_workers, mp_context=context, initializer=_die_with_parent)
    if pools is not None:
        pools.append(pool)
    window: deque[Future] = deque()
    try:
        try:
            for chunk in itertools.chain(buffered, chunks):
                if cancelled():
                    break
                if not chunk:
                    yield []
                    continue
                window.append(pool.submit(_parse_chunk_marshalled, root, mode, chunk, min_free))
                if len(window) >= count_workers * 3:
                    yield marshal.loads(window.popleft().result())
            while window:
                if cancelled():
                    for fut in window:
                        fut.cancel()  # those not started yet; running ones finish
                fut = window.popleft()
                if not fut.cancelled():
                    yield marshal.loads(fut.result())
        finally:
            for fut in window:
                fut.cancel()
    finally:
        # Without ``pools`` the workers are joined here; with it, the caller joins them (see _import): they exit
        # while it writes its last rows.
        pool.shutdown(wait=pools is None)
