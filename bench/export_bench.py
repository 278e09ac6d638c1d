"""Export benchmark: dicomtui's export of database items to a folder side by side with `cp -r` of the same files.

`cp -r` of the database's storage folder is the transfer limit: the same bytes, read and written by the kernel,
nothing looked up and nothing named. Ours resolves the items, reads the rows, names every file from the data
(Patient/Study/Series/NNNN.dcm) and copies each exclusively (no overwriting). Two generated data sets (the ones
import_bench.py writes, cached in bench/out/data/), each copy-imported once into a fresh database:

  small  2,000 files of 64x64 (5 patients x 4 series x 100 slices)
  large  one series of 300 slices of 512x512 (157 MB)

Ours (tree layout, no transform) and `cp -r` alternate round by round, best of 3 (--repeat), each into a fresh
folder deleted afterwards (not timed); the CPU seconds (user + system) printed beside the wall time vary less with
the machine's load. Then once each, for information: the flat layout, an identity transform (every file read and
written by pydicom: what de-identification will cost), a DICOMDIR (pydicom's FileSet).
The issue-16 target: ours >= 50 % of `cp -r`'s speed without transform on both sets (`TARGET |` lines).

Run:  .venv/bin/python bench/export_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "bench"))

from _common import check, list_files, target_row, warm  # noqa: E402
from import_bench import DATA, OUT, write_large, write_patients  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.export import ExportOptions, export_items  # noqa: E402
from dicomtui.core.indexer import import_paths  # noqa: E402
from dicomtui.core.levels import Level  # noqa: E402

TARGET_VS_CP = 0.5  # ours at least half as fast as cp -r


def prepare(name: str, count: int, write, *args) -> Path:
    """The data set ``name`` of ``count`` files in bench/out/data/ (import_bench's cache), written when missing."""
    folder = DATA / name
    stamp = folder.with_suffix(".complete")
    if stamp.exists() and len(list_files(folder)) == count:
        print(f"data {name}: cached ({count:,} files)")
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    written = write(folder, *args)
    check(written == count, f"{name}: wrote {written} files, expected {count}")
    stamp.write_text(f"{count}\n")
    print(f"data {name}: generated {count:,} files in {time.perf_counter() - start:.1f} s")
    return folder


def fresh(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=OUT)) / "out"


def run_ours(db: DicomDatabase, items, n: int, options: ExportOptions | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of this process)."""
    out = fresh("export-ours-")
    try:
        cpu, start = time.process_time(), time.perf_counter()
        report = export_items(db, items, out, options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        check(report.written == n and not report.problems, f"ours: {report.summary()[:300]}")
        return seconds, cpu
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cp(storage: Path, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of cp: user + system)."""
    out = fresh("export-cp-")
    try:
        cpu, start = _children_cpu(), time.perf_counter()
        done = subprocess.run(["cp", "-r", str(storage), str(out)], capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        check(done.returncode == 0, f"cp -r exited {done.returncode}: {done.stderr[:200]}")
        check(len(list_files(out)) == n, "cp -r: not every file copied")
        return seconds, cpu
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def bench_set(label: str, folder: Path, n: int, repeat: int) -> tuple[float, float]:
    """(best seconds ours, best seconds cp -r) for one set; the informational runs printed."""
    db_dir = Path(tempfile.mkdtemp(prefix="export-db-", dir=OUT))
    try:
        db = DicomDatabase.open(db_dir)
        report = import_paths(db, [folder], "copy")
        check(report.instances_added == n, f"import: {report.instances_added} of {n}")
        items = [(Level.PATIENT, p["id"]) for p in db.patients()]
        storage = db_dir / "dicom"
        warm(list_files(storage))
        ours, cp = [], []
        for _ in range(repeat):
            ours.append(run_ours(db, items, n))
            cp.append(run_cp(storage, n))
        mb = sum(os.path.getsize(p) for p in list_files(storage)) / 1e6
        print(f"\n== {label}: {n:,} files, {mb:.0f} MB (best of {repeat}; rounds alternate)")
        print(f"  {'run':44} {'seconds':>8} {'files/s':>9} {'MB/s':>7} {'CPU s':>7}")
        for name, (seconds, cpu) in [("ours export (tree, no transform)", min(ours)),
                                     ("cp -r of the storage folder", min(cp))]:
            print(f"  {name:44} {seconds:8.3f} {n / seconds:9,.0f} {mb / seconds:7.0f} {cpu:7.3f}")
        for name, options in [("ours export (flat)", ExportOptions(layout="flat")),
                              ("ours export (identity transform, pydicom)", ExportOptions(transform=lambda ds: ds)),
                              ("ours export (DICOMDIR, pydicom FileSet)", ExportOptions(dicomdir=True))]:
            seconds, cpu = run_ours(db, items, n, options)
            print(f"  {name:44} {seconds:8.3f} {n / seconds:9,.0f} {mb / seconds:7.0f} {cpu:7.3f}   (once)")
        db.close()
        return min(ours)[0], min(cp)[0]
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N alternating rounds (default 3)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"nproc: {len(os.sched_getaffinity(0))}   load average: {os.getloadavg()[0]:.1f}")
    sets = [("small: 2,000 files of 64x64", prepare("small-2000", 2000, lambda f: write_patients(f, 0, 5, 4, 100)),
             2000),
            ("large: 300 slices of 512x512", prepare("large-300", 300, write_large, 300), 300)]
    results = [(label, n, *bench_set(label, folder, n, args.repeat)) for label, folder, n in sets]
    print("\n== targets")
    for label, n, ours, cp in results:
        ratio = cp / ours
        target_row(f"export {label.split(':')[0]} set ({n:,} files) vs cp -r, no transform",
                   f"{n / ours:,.0f} vs {n / cp:,.0f} files/s ({ratio:.2f}x)", f">= {TARGET_VS_CP:g}x cp -r",
                   ratio >= TARGET_VS_CP)


if __name__ == "__main__":
    main()
