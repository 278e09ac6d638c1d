"""The `make bench` collector: it gathers every benchmark's TARGET lines into one table and says what failed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_a_target_row_printed_by_a_bench_is_parsed_back_by_the_collector(capsys):
    common, summary = _module("_common"), _module("summary")
    line = common.target_row("load -o x.nii", "0.10 s vs 0.18 s (1.80x)", ">= 1.2x dcm2niix", True)
    skipped = common.target_row("C-MOVE", "-", "<= C-GET", None)
    assert summary.parse(line, "load_bench.py") == ("load_bench.py", "load -o x.nii", "0.10 s vs 0.18 s (1.80x)",
                                                    ">= 1.2x dcm2niix", "MET")
    assert summary.parse(skipped, "b")[-1] == "SKIPPED"
    assert summary.parse("  load process  0.2 s", "b") is None
    text = summary.table([summary.parse(line, "load_bench.py")])
    assert text.splitlines()[0].split() == ["bench", "work", "measured", "target", "verdict"]
    assert text.splitlines()[-1].endswith("MET")


def test_a_missing_or_failing_bench_is_a_row_and_a_non_zero_exit(tmp_path, monkeypatch, capsys):
    summary = _module("summary")
    log = tmp_path / "run.log"
    log.write_text("noise\nTARGET | link import | 45,000 files/s | >= 40,000 files/s | MET\n")
    failing = tmp_path / "failing_bench.py"
    failing.write_text("print('TARGET | x | 1 | 2 | NOT MET')\nraise SystemExit(3)\n")
    monkeypatch.setattr(summary, "OUT", tmp_path / "out")
    monkeypatch.setattr(sys, "argv", ["summary.py", "--from", str(log), "--", "no_such_bench.py", str(failing)])
    assert summary.main() == 1
    out = capsys.readouterr().out
    table = out[out.index("== targets (issues 15, 16, 18)"):]
    assert "link import" in table and "45,000 files/s" in table
    assert "no_such_bench.py" in table and "MISSING" in table
    assert "failing_bench.py" in table and "exit 3" in table and "FAILED" in table
    assert "1 MET, 1 NOT MET" in table
    assert "MISSING" in (tmp_path / "out" / "targets.txt").read_text()
