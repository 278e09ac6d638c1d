"""De-identification benchmark (issue 17): ``dicomtui deidentify`` of the 2,000-file set side by side with the
chosen library's own CLI (Kitware's ``dicom-anonymizer``, the same PS3.15 table) and ``gdcmanon --dumb`` (GDCM,
Debian libgdcm-tools; a dumb anonymizer: only the tags named, here the patient module's four).

Each is a fresh process over the same 2,000 files of 64x64 (import_bench's "small" set, 5 patients x 4 series x 100
slices): ours exports them from a database they were copy-imported into (names, mapping, Basic Profile, the
modified-dates option); the others read a flat folder of hard links to the same stored files (dicom-anonymizer does
not descend into folders). Rounds alternate, best of 2 (--repeat); outputs are deleted after each run (not timed).
The issue-17 target: ours >= 1x the library's CLI (``TARGET |`` line).

Run:  .venv/bin/python bench/deid_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
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
from export_bench import prepare  # noqa: E402
from import_bench import OUT, write_patients  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.indexer import import_paths  # noqa: E402

BIN = Path(sys.executable).parent
GDCM_TAGS = ["--empty", "10,10", "--empty", "10,20", "--remove", "10,30", "--remove", "10,40"]
TARGET_VS_LIBRARY = 1.0


def timed(command: list[str], out: Path, n: int) -> float:
    """Wall seconds of ``command`` (which writes ``n`` files under ``out``)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    check(done.returncode == 0, f"{command[0]} exited {done.returncode}: {done.stderr[-300:]}")
    written = len(list_files(out))
    check(written >= n, f"{Path(command[0]).name}: {written} of {n} files written")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="best of N alternating rounds (default 2)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    gdcmanon = shutil.which("gdcmanon")
    print(f"nproc: {len(os.sched_getaffinity(0))}   load average: {os.getloadavg()[0]:.1f}")
    n = 2000
    folder = prepare("small-2000", n, lambda f: write_patients(f, 0, 5, 4, 100))
    work = Path(tempfile.mkdtemp(prefix="deid-bench-", dir=OUT))
    try:
        with DicomDatabase.open(work / "db") as db:
            check(import_paths(db, [folder], "copy").instances_added == n, "import: not every file added")
            patients = [str(p["PatientID"]) for p in db.patients()]
        flat = work / "flat"
        flat.mkdir()
        for i, path in enumerate(list_files(work / "db" / "dicom")):
            os.link(path, flat / f"{i:05d}.dcm")
        warm(list_files(flat))
        runs: dict[str, list[float]] = {"ours": [], "library": [], "gdcm": []}
        for r in range(args.repeat):
            out = work / f"out-{r}"
            runs["ours"].append(timed([str(BIN / "dicomtui"), "--db", str(work / "db"), "deidentify", *patients,
                                       "-o", str(out), "--profile-option", "modified-dates"], out, n))
            out.mkdir()
            runs["library"].append(timed([str(BIN / "dicom-anonymizer"), str(flat), str(out)], out, n))
            if gdcmanon:
                runs["gdcm"].append(timed([gdcmanon, "--dumb", "--continue", *GDCM_TAGS, "-i", str(flat), "-o",
                                           str(out)], out, n))
        print(f"\n== de-identify {n:,} files (best of {args.repeat}; rounds alternate)")
        for name, label in [("ours", "dicomtui deidentify (Basic Profile + dates)"),
                            ("library", "dicom-anonymizer CLI (Basic Profile)"),
                            ("gdcm", "gdcmanon --dumb (4 tags)")]:
            if runs[name]:
                best = min(runs[name])
                print(f"  {label:46} {best:8.2f} s {n / best:8,.0f} files/s")
            else:
                print(f"  {label:46} not run (gdcmanon missing: apt-get install libgdcm-tools)")
        ours, library = min(runs["ours"]), min(runs["library"])
        print("\n== targets")
        target_row(f"de-identify the small set ({n:,} files) vs dicom-anonymizer's CLI",
                   f"{n / ours:,.0f} vs {n / library:,.0f} files/s ({library / ours:.2f}x)",
                   f">= {TARGET_VS_LIBRARY:g}x", library / ours >= TARGET_VS_LIBRARY)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
