"""Helpers the benchmark scripts share: listing and warming files, checks that stop a run."""

from __future__ import annotations

import os
import time
from pathlib import Path


def list_files(folder: Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)


def warm(paths: list[str]) -> None:
    """Read every file once, so that all runs measure the same warm page cache."""
    start, total = time.perf_counter(), 0
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    print(f"  page cache warmed: {len(paths):,} files, {total / 1e6:.0f} MB read in "
          f"{time.perf_counter() - start:.2f} s")


def check(ok: bool, message: str) -> None:
    """A failed correctness check ends the benchmark with a non-zero exit: its numbers would mean nothing."""
    if not ok:
        raise SystemExit(f"benchmark check failed: {message}")


def target_row(work: str, measured: str, target: str, met: bool | None) -> str:
    """One line of the issue-15 target table, printed by every benchmark and collected by `make bench`.

    ``met`` None means the row could not be measured (a peer missing): the line says SKIPPED, never MET.
    """
    verdict = "SKIPPED" if met is None else "MET" if met else "NOT MET"
    line = f"TARGET | {work} | {measured} | {target} | {verdict}"
    print(line, flush=True)
    return line


def settle() -> None:
    """Before a timed run of a side-by-side bench: the disk written (``sync``: a run's syncfs would otherwise write
    the last run's data too) and the last run's garbage collected (``gc.collect``: a pydicom loop leaves its data
    sets in reference cycles, hundreds of MB of pixel data collected during whichever run comes next)."""
    import gc

    os.sync()
    gc.collect()
