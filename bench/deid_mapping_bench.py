"""De-identification mapping benchmark (issue 17): one job of 100,000 new UIDs (one patient) against a mapping
that already holds ``--existing`` UIDs (1,000,000 by default: a site's years of jobs), and against an empty one.

"before" is the first version's way, reproduced here: the whole ``deidentification-map.json`` read at the start of
the job and rewritten whole (a temp file renamed over it) at its end. "after" is :mod:`dicomtui.core.export.
deid_mapping`: SQLite, each UID looked up by primary key, each new entry committed as it is made (INSERT OR IGNORE
and read back, so that jobs at once agree; WAL, synchronous=NORMAL, synced at save). Timed:
opening the mapping, the 100,000 ``uid()`` calls and the save; building the existing mapping is not timed. Rounds
alternate, best of ``--repeat``.

Target (``TARGET |`` line): the job beside the large mapping costs at most 1.5x the job beside an empty one (it
appends; it does not rewrite what is there).

Run:  .venv/bin/python bench/deid_mapping_bench.py [--existing N] [--job N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "bench"))

from _common import check, target_row  # noqa: E402

from dicomtui.core.export.deid_mapping import MAPPING_NAME, database_mapping  # noqa: E402

TARGET_LARGE_VS_EMPTY = 1.5


def existing_uids(n: int) -> dict[str, str]:
    return {f"1.2.826.0.1.3680043.10.1147.{i}": f"2.25.{10**30 + i}" for i in range(n)}


def json_job(path: Path, job: list[str]) -> float:
    """The first version: load the whole JSON, map, rewrite the whole JSON."""
    start = time.perf_counter()
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"version": 1, "patients": {},
                                                                              "uids": {}}
    uids = data["uids"]
    for original in job:
        if original not in uids:
            uids[original] = f"2.25.{uuid.uuid4().int}"  # as the mapping makes them
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(partial, path)
    return time.perf_counter() - start


def sqlite_job(folder: Path, job: list[str]) -> float:
    start = time.perf_counter()
    mapping = database_mapping(folder)
    for original in job:
        mapping.uid(original)
    mapping.save()
    mapping.close()
    return time.perf_counter() - start


def prepare(work: Path, existing: int) -> tuple[Path, Path]:
    """A JSON file and a SQLite mapping holding ``existing`` UIDs (not timed)."""
    (work / "json").mkdir(parents=True)
    (work / "sqlite").mkdir()
    uids = existing_uids(existing)
    json_path = work / "json" / "deidentification-map.json"
    json_path.write_text(json.dumps({"version": 1, "patients": {}, "uids": uids}), encoding="utf-8")
    database_mapping(work / "sqlite").save()  # the file and its tables
    with sqlite3.connect(work / "sqlite" / MAPPING_NAME) as conn:
        conn.executemany("INSERT INTO uids VALUES (?, ?)", uids.items())
    return json_path, work / "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--existing", type=int, default=1_000_000, help="UIDs already in the mapping")
    parser.add_argument("--job", type=int, default=100_000, help="new UIDs of the job")
    parser.add_argument("--repeat", type=int, default=2, help="best of N alternating rounds (default 2)")
    args = parser.parse_args()
    print(f"nproc: {len(os.sched_getaffinity(0))}   load average: {os.getloadavg()[0]:.1f}")
    results: dict[str, list[float]] = {}
    for r in range(args.repeat):
        for size in (0, args.existing):
            work = Path(tempfile.mkdtemp(prefix="deid-map-bench-"))
            try:
                json_path, folder = prepare(work, size)
                job = [f"1.2.840.99999.{r}.{size}.{i}" for i in range(args.job)]
                results.setdefault(f"json-{size}", []).append(json_job(json_path, job))
                results.setdefault(f"sqlite-{size}", []).append(sqlite_job(folder, job))
                with sqlite3.connect(folder / MAPPING_NAME) as conn:
                    count = conn.execute("SELECT count(*) FROM uids").fetchone()[0]
                check(count == size + args.job, f"the SQLite mapping holds {count} UIDs, not {size + args.job}")
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print(f"\n== a job of {args.job:,} new UIDs (best of {args.repeat}; rounds alternate)")
    best = {key: min(values) for key, values in results.items()}
    for size in (0, args.existing):
        print(f"  beside {size:>9,} existing: before (JSON, whole file) {best[f'json-{size}']:7.2f} s   "
              f"after (SQLite, appended) {best[f'sqlite-{size}']:7.2f} s")
    large, empty = best[f"sqlite-{args.existing}"], best["sqlite-0"]
    print("\n== targets")
    target_row(f"a {args.job:,}-UID job beside {args.existing:,} existing UIDs vs beside none (SQLite mapping)",
               f"{large:.2f} s vs {empty:.2f} s ({large / empty:.2f}x; JSON before: "
               f"{best[f'json-{args.existing}']:.2f} s)", f"<= {TARGET_LARGE_VS_EMPTY:g}x",
               large / empty <= TARGET_LARGE_VS_EMPTY)


if __name__ == "__main__":
    main()
