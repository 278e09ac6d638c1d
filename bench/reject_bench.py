"""Reject benchmark: how long, and how much memory, the import's header read takes on huge files (issue 13 item 7).

Each case is a 4 GB sparse file (no disk space used) read by ``read_checked`` (the import's per-file step) in a
fresh process, which reports the seconds of the call and its peak RSS:

  zeros        ``truncate -s 4G``: no DICM, first element (0000,0000): not DICOM from its first bytes
  random head  the first MiB random, the rest zeros (a video, an archive, a NIfTI with a header)
  DICM zeros   a preamble and ``DICM``, then zeros: a damaged file, refused at its first data element
  huge value   a valid CT header, then a private OB value of ~4 GB before Pixel Data: accepted, the value never
               read (the walk reads 16 KiB windows around the element headers)

Targets: each well under a second (< 1 s) and under 100 MB RSS.

Run:  .venv/bin/python bench/reject_bench.py
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from _common import check  # noqa: E402

from dicomtui.core.synth import SeriesSpec, write_series  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZE = 4 << 30
TARGET_SECONDS, TARGET_RSS_MB = 1.0, 100

CHILD = """
import json, resource, sys, time
from dicomtui.core.database.records import read_checked
from dicomtui.core.errors import HeaderError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    header, warning = read_checked(sys.argv[1])
    verdict = "accepted" + (f" with warning: {warning}" if warning else "")
except HeaderError as exc:
    verdict = f"rejected: {exc}"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_mb": peak / 1024, "import_rss_mb": before / 1024, "verdict": verdict}))
"""


def sparse(path: Path, head: bytes) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(SIZE)
    return path


def huge_value(path: Path, tmp: Path) -> Path:
    """A synthetic CT slice with a private (7FDF,1000) OB value filling the file up to its Pixel Data."""
    data = write_series(tmp / "src", SeriesSpec(slices=1))[0].read_bytes()
    at = data.index(b"\xe0\x7f\x10\x00OW")
    pixels = data[at:]
    creator = b"\xdf\x7f\x10\x00LO\x04\x00BIG "
    length = SIZE - at - len(creator) - 12 - len(pixels)
    with open(path, "wb") as f:
        f.write(data[:at] + creator + b"\xdf\x7f\x00\x10OB\x00\x00" + struct.pack("<I", length))
        f.seek(length, os.SEEK_CUR)
        f.write(pixels)
    check(os.path.getsize(path) == SIZE, "huge value file size")
    return path


def measure(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env,
                         timeout=600)
    check(out.returncode == 0, f"{path.name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="reject-", dir=OUT))
    try:
        cases = {
            "zeros": sparse(tmp / "zeros.nii", b""),
            "random head": sparse(tmp / "random.bin", os.urandom(1 << 20)),
            "DICM zeros": sparse(tmp / "dicm.dcm", b"\0" * 128 + b"DICM"),
            "huge value": huge_value(tmp / "huge.dcm", tmp),
        }
        print(f"4 GB sparse files ({SIZE:,} bytes), read_checked in a fresh process each")
        print(f"  {'case':<14}{'seconds':>9}{'peak RSS':>10}{'(import)':>10}   verdict")
        results = {}
        for name, path in cases.items():
            r = measure(path)
            results[name] = r
            print(f"  {name:<14}{r['seconds']:>9.3f}{r['rss_mb']:>7.0f} MB{r['import_rss_mb']:>7.0f} MB   "
                  f"{r['verdict'][:110]}")
        check(results["zeros"]["verdict"].startswith("rejected: not a DICOM file"), "zeros not rejected as non-DICOM")
        check(results["huge value"]["verdict"].startswith("accepted"), "the huge-value file was not accepted")
        print("\n== targets")
        for name, r in results.items():
            ok = r["seconds"] < TARGET_SECONDS and r["rss_mb"] < TARGET_RSS_MB
            print(f"  {name:<14} < {TARGET_SECONDS:g} s and < {TARGET_RSS_MB} MB RSS"
                  f"{r['seconds']:>10.3f} s {r['rss_mb']:>5.0f} MB   {'MET' if ok else 'NOT MET'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
