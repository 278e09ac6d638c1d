"""Patcher benchmark (issue 17): ``core.patcher.patch`` over the 2,000-file set, broken the way anonymisers break
files (StudyDate written 2024.01.15, SeriesInstanceUID removed), side by side with the plain pydicom loop a user
would write for exactly that damage (read, fix the date, one series UID per folder, write).

Ours runs every rule (uids, dates, ids, spacing, syntax, meta, split: two passes, every element decoded and
checked); the loop fixes only the two known faults. Rounds alternate, best of N (--repeat), both in this process
over a warm page cache; outputs are deleted after each run (not timed). The target: ours >= 0.5x the loop (the
price of looking for every fault, not only the known ones).

Run:  .venv/bin/python bench/patch_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "bench"))

import pydicom  # noqa: E402
from _common import check, list_files, settle, target_row, warm  # noqa: E402
from export_bench import prepare  # noqa: E402
from import_bench import OUT, write_patients  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicomtui.core.patcher import patch  # noqa: E402

TARGET_VS_LOOP = 0.5


def break_files(source: Path, broken: Path) -> int:
    """Copies of ``source`` with StudyDate as 2024.01.15 and no SeriesInstanceUID."""
    for path in list_files(source):
        ds = pydicom.dcmread(path)
        ds.StudyDate = f"{ds.StudyDate[:4]}.{ds.StudyDate[4:6]}.{ds.StudyDate[6:]}"
        del ds.SeriesInstanceUID
        target = broken / Path(path).relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target)
    return len(list_files(broken))


def plain_loop(source: Path, out: Path) -> int:
    """The loop a user writes for the known damage: pydicom read, date fixed, a series UID per folder, write."""
    series: dict[str, str] = {}
    for path in list_files(source):
        ds = pydicom.dcmread(path)
        ds.StudyDate = ds.StudyDate.replace(".", "")
        folder = os.path.dirname(path)
        ds.SeriesInstanceUID = series.setdefault(folder, generate_uid())
        target = out / Path(path).relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target)
    return len(list_files(out))


def ours(source: Path, out: Path) -> int:
    report = patch(source, out)
    check(not report.skipped, f"patch skipped {len(report.skipped)} files: {report.skipped[:2]}")
    return sum(len(f.outputs) for f in report.changed)


def timed(run, source: Path, out: Path, n: int) -> float:
    settle()
    start = time.perf_counter()
    written = run(source, out)
    seconds = time.perf_counter() - start
    check(written == n, f"{run.__name__}: {written} of {n} files written/changed")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N alternating rounds (default 3)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydicom warns about the invalid dates the set holds on purpose
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"nproc: {len(os.sched_getaffinity(0))}   load average: {os.getloadavg()[0]:.1f}")
    n = 2000
    folder = prepare("small-2000", n, lambda f: write_patients(f, 0, 5, 4, 100))
    work = Path(tempfile.mkdtemp(prefix="patch-bench-", dir=OUT))
    try:
        broken = work / "broken"
        check(break_files(folder, broken) == n, "not every file broken")
        warm(list_files(broken))
        runs: dict[str, list[float]] = {"ours": [], "loop": []}
        for r in range(args.repeat):
            runs["ours"].append(timed(ours, broken, work / f"ours-{r}", n))
            runs["loop"].append(timed(plain_loop, broken, work / f"loop-{r}", n))
        best = {name: min(times) for name, times in runs.items()}
        ratio = best["loop"] / best["ours"]
        print(f"\n== patch {n:,} files (best of {args.repeat}; rounds alternate)")
        print(f"  {'dicomtui patch (every rule)':40} {best['ours']:8.2f} s {n / best['ours']:8,.0f} files/s")
        print(f"  {'pydicom loop (the two known faults)':40} {best['loop']:8.2f} s {n / best['loop']:8,.0f} files/s")
        print("\n== targets")
        target_row(f"patch the small set ({n:,} files, every rule) vs a plain pydicom fix loop",
                   f"{n / best['ours']:,.0f} vs {n / best['loop']:,.0f} files/s ({ratio:.2f}x)",
                   f">= {TARGET_VS_LOOP:g}x", ratio >= TARGET_VS_LOOP)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
