"""`make bench`: run every benchmark in turn, showing its output as it comes, then print one table of the issue-15
targets gathered from the ``TARGET | work | measured | target | verdict`` lines each benchmark prints
(``_common.target_row``).

A benchmark that exits non-zero (a failed correctness check, a crash) or is missing adds a FAILED / MISSING row
for itself, and the collector exits 1 after printing the whole table; a target NOT MET does not change the exit.

Run:  .venv/bin/python bench/summary.py bench/import_bench.py bench/load_bench.py ...   (what `make bench` does)
      .venv/bin/python bench/summary.py --from LOG...   (the table of saved outputs, without running anything)
The table is also written to bench/out/targets.txt.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PREFIX = "TARGET |"


def parse(line: str, source: str) -> tuple[str, str, str, str, str] | None:
    """(source, work, measured, target, verdict) of one ``TARGET |`` line; None for any other line."""
    if not line.startswith(PREFIX):
        return None
    fields = [f.strip() for f in line.rstrip("\n").split(" | ")]
    if len(fields) != 5:  # a work text with " | " in it: keep the first and the last three fields
        fields = [fields[0], " | ".join(fields[1:-3]), *fields[-3:]]
    _, work, measured, target, verdict = fields
    return source, work, measured, target, verdict


def run(script: str, extra: list[str]) -> tuple[list[tuple[str, str, str, str, str]], int, float]:
    """Run one benchmark with this interpreter, echoing its output; (its target rows, exit code, seconds)."""
    rows = []
    start = time.perf_counter()
    print(f"\n######## {script} {' '.join(extra)}".rstrip(), flush=True)
    with subprocess.Popen([sys.executable, script, *extra], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            row = parse(line, Path(script).name)
            if row is not None:
                rows.append(row)
    return rows, proc.returncode, time.perf_counter() - start


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    """The rows as an aligned text table, one line per target, the verdict last."""
    header = ("bench", "work", "measured", "target", "verdict")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(5)]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(header, widths, strict=True)),
           line("-" * w for w in widths)]
    out += [line(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scripts", nargs="*", help="benchmark scripts to run, in order")
    parser.add_argument("--from", dest="logs", nargs="+", metavar="LOG", help="collect from saved outputs instead")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str, str]] = []
    failed = False
    if args.logs:
        for log in args.logs:
            rows += [r for line in Path(log).read_text().splitlines() if (r := parse(line, Path(log).name))]
    for script in args.scripts:
        if not (ROOT / script).exists():
            rows.append((Path(script).name, "(the benchmark)", "-", "-", "MISSING"))
            failed = True
            continue
        found, code, seconds = run(script, [])
        rows += found
        print(f"######## {script}: exit {code}, {seconds:.0f} s", flush=True)
        if code != 0:
            rows.append((Path(script).name, "(the benchmark)", f"exit {code}", "exit 0", "FAILED"))
            failed = True
    verdicts = [r[4] for r in rows]
    text = ("\n== targets (issues 15, 16, 18): "
            f"{verdicts.count('MET')} MET, {verdicts.count('NOT MET')} NOT MET, "
            f"{len(verdicts) - verdicts.count('MET') - verdicts.count('NOT MET')} other\n{table(rows)}\n")
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "targets.txt").write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
