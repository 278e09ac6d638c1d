"""Store benchmark: our C-STORE listener and our sender side by side with DCMTK, pynetdicom and Orthanc.

Measures images per second over one association on 127.0.0.1, with a warm page cache, on two generated data sets
(no real patients):

  large  one series of 300 slices of 512x512 (bench/out/data/large-300, shared with import_bench.py)
  small  2,000 files of 64x64: the first 2,000 of import_bench's small set, copied once to small-2000-store

Receivers, each fed by DCMTK `storescu +sd +r FOLDER`, timed until storescu exits and the receiver holds every
image (files in its output folder, Orthanc's /statistics, our Listener.indexed):
  DCMTK storescp, pynetdicom's storescp app, Orthanc, ours (dicomtui.core.net.listener.Listener, in process;
  ours fsyncs every file and its folder before answering success, the others do not, except Orthanc)
Senders, each to DCMTK storescp: DCMTK storescu, ours (net.send.send of the rows of a link-mode import; the import
is not timed). Every DCMTK tool and Orthanc runs with TCP_NODELAY=1 (Debian's DCMTK waits ~45 ms per image
otherwise). Every server is started on a free port and stopped by this script.

Run:  .venv/bin/python bench/store_bench.py            (a few minutes)
      .venv/bin/python bench/store_bench.py --quick    (50 large slices, 300 small files; indicative only)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import pydicom  # noqa: E402
import pynetdicom  # noqa: E402
from _common import check, list_files, target_row, warm  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.indexer import import_paths  # noqa: E402
from dicomtui.core.net import send as net_send  # noqa: E402
from dicomtui.core.net.listener import Listener  # noqa: E402
from dicomtui.core.net.nodes import LocalNode, RemoteNode  # noqa: E402
from dicomtui.core.synth import SeriesSpec, write_collection, write_series  # noqa: E402

OUT = ROOT / "bench" / "out"
DATA = OUT / "data"
ENV = {**os.environ, "TCP_NODELAY": "1"}
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
RECV, SEND, PYNET = "ours Listener", "ours net.send", "pynetdicom storescp app"
TARGETS = [("large", RECV, "DCMTK storescp", 0.40), ("large", RECV, PYNET, 2.0), ("small", RECV, PYNET, 2.0),
           ("large", RECV, "Orthanc", 1.0), ("small", RECV, "Orthanc", 1.0),  # (set, ours, peer, minimum ratio)
           ("large", SEND, "DCMTK storescu", 0.35), ("small", SEND, "DCMTK storescu", 0.20)]


# ---- data -------------------------------------------------------------------------------------------------------

def prepare(name: str, n: int) -> Path:
    """A folder of exactly n files: import_bench's cache when it fits, else its first n files copied once, else
    generated."""
    direct, source = DATA / f"{name}-{n}", DATA / ("large-300" if name == "large" else "small-20000")
    if name == "large" and direct.with_suffix(".complete").exists() and len(list_files(direct)) == n:
        return direct
    folder = DATA / f"{name}-{n}-store"
    stamp = folder.with_suffix(".complete")
    if stamp.exists() and len(list_files(folder)) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    files = list_files(source)[:n] if source.with_suffix(".complete").exists() else []
    if len(files) == n:
        for path in files:
            dest = folder / os.path.relpath(path, source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    elif name == "large":
        write_series(folder, SeriesSpec(slices=n, rows=512, cols=512, patient_id="BIG0001", series_description="Large"))
    else:
        write_collection(folder, patients=max(1, n // 400), series_per_patient=min(4, n // 100), slices=100)
    check(len(list_files(folder)) == n, f"data {folder}: expected {n} files")
    stamp.write_text(f"{n}\n")
    return folder


# ---- servers ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(ready, what: str, timeout: float = 60.0, step: float = 0.002) -> None:
    end = time.monotonic() + timeout
    while not ready():
        check(time.monotonic() < end, f"{what}: not done after {timeout:g} s")
        time.sleep(step)


def echo_ok(port: int, ae: str) -> bool:
    return subprocess.run(["echoscu", "-aec", ae, "127.0.0.1", str(port)], env=ENV, capture_output=True).returncode == 0


def http_json(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return json.load(r)
    except OSError:
        return None


@contextmanager
def server(cmd: list[str], tmp: Path, ready, env: dict[str, str] = ENV):
    with open(tmp / "server.log", "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        wait_for(lambda: proc.poll() is None and ready(), f"start of {cmd[0]} (log in {tmp}/server.log)", 30, 0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dcmtk_scp(tmp: Path, port: int, out: Path):
    return server(["storescp", "-aet", "REF", "-od", str(out), str(port)], tmp, lambda: echo_ok(port, "REF"))


def storescu(folder: Path, port: int, ae: str, env: dict[str, str] = ENV) -> None:
    r = subprocess.run(["storescu", "-aec", ae, "127.0.0.1", str(port), "+sd", "+r", str(folder)], env=env,
                       capture_output=True, text=True)
    check(r.returncode == 0, f"storescu to {ae}: {r.stderr.strip()[-400:]}")


# ---- runs (each returns seconds) --------------------------------------------------------------------------------

def fed(folder: Path, n: int, port: int, ae: str, count, env: dict[str, str] = ENV) -> float:
    start = time.perf_counter()
    storescu(folder, port, ae, env)
    wait_for(lambda: count() >= n, f"{ae} receiving {n} images")
    seconds = time.perf_counter() - start
    check(count() == n, f"{ae} holds {count()} images, expected {n}")
    return seconds


def receive(kind: str, folder: Path, n: int, tmp: Path) -> float:
    port, out = free_port(), tmp / "received"
    out.mkdir()
    on_disk = lambda: len(list_files(out))  # noqa: E731
    if kind == "DCMTK storescp":
        with dcmtk_scp(tmp, port, out):
            return fed(folder, n, port, "REF", on_disk)
    if kind == PYNET:
        cmd = [sys.executable, "-m", "pynetdicom", "storescp", str(port), "-aet", "REF", "-od", str(out)]
        with server(cmd, tmp, lambda: echo_ok(port, "REF")):
            return fed(folder, n, port, "REF", on_disk)
    if kind == "Orthanc":
        http = free_port()
        config = {"Name": "bench", "StorageDirectory": str(tmp / "storage"), "IndexDirectory": str(tmp / "index"),
                  "DicomAet": "ORTHANC", "DicomPort": port, "HttpPort": http, "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "Plugins": []}
        (tmp / "orthanc.json").write_text(json.dumps(config))
        with server([ORTHANC, str(tmp / "orthanc.json")], tmp, lambda: http_json(http, "/system") is not None):
            count = lambda: (http_json(http, "/statistics") or {}).get("CountInstances", -1)  # noqa: E731
            return fed(folder, n, port, "ORTHANC", count)
    listener = Listener(tmp / "db", LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1"))
    listener.start()
    try:
        seconds = fed(folder, n, listener.port, "DICOMTUI", lambda: listener.indexed)
    finally:
        listener.stop()
    check(not listener.index_errors, f"listener index errors: {listener.index_errors[:3]}")
    with DicomDatabase.open(tmp / "db") as db:
        check(db.stats()["instances"] == n, f"listener database holds {db.stats()['instances']}, expected {n}")
    return seconds


def send(kind: str, folder: Path, n: int, tmp: Path) -> float:
    port, out = free_port(), tmp / "received"
    out.mkdir()
    if kind == SEND:
        with DicomDatabase.open(tmp / "db") as db:
            check(import_paths(db, [folder], "link").instances_added == n, "import before send")
            rows = [dict(r, path=str(db.abspath(r["path"], bool(r["stored"])))) for r in db.instances()]
    with dcmtk_scp(tmp, port, out):
        start = time.perf_counter()
        if kind == "DCMTK storescu":
            storescu(folder, port, "REF")
        else:
            report = net_send.send(rows, RemoteNode("ref", "REF", "127.0.0.1", port))
            bad = [f"{i.path}: {i.meaning}" for i in report.items if i.category != "success"][:2]
            check(report.counts["success"] == n and not report.error, f"send: {report.counts} {report.error} {bad}")
        seconds = time.perf_counter() - start
        wait_for(lambda: len(list_files(out)) >= n, f"storescp receiving from {kind}", 10)
    check(len(list_files(out)) == n, f"{kind}: storescp wrote {len(list_files(out))} files, expected {n}")
    return seconds


def timed(fn, kind: str, folder: Path, n: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="store-", dir=OUT))  # every output folder and database, deleted afterwards
    try:
        return fn(kind, folder, n, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- issue 15's rows: Nagle and durable receive ------------------------------------------------------------------

NAGLE_ENV = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}  # Debian's DCMTK: Nagle on without it


def listener_run(folder: Path, n: int, tmp: Path, sync: str = "file", env: dict[str, str] = ENV) -> float:
    """storescu → our Listener (``--sync``), until storescu exits and every image is indexed."""
    listener = Listener(tmp / "db", LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1", sync=sync))
    listener.start()
    try:
        seconds = fed(folder, n, listener.port, "DICOMTUI", lambda: listener.indexed, env)
    finally:
        listener.stop()
    check(not listener.index_errors, f"listener index errors: {listener.index_errors[:3]}")
    return seconds


def best_of(runs: dict[str, object], repeat: int) -> dict[str, float]:
    """Best of ``repeat`` for each run, alternating the runs so that the machine's load falls on all alike."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            tmp = Path(tempfile.mkdtemp(prefix="store-", dir=OUT))
            try:
                best[name] = min(best[name], run(tmp))  # type: ignore[operator]
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return best


def issue15_rows(repeat: int, quick: bool) -> None:
    """The two store rows of issue 15's table, each measured side by side, best of ``repeat``."""
    small_n, large_n = (100, 50) if quick else (200, 300)
    small = prepare("small", small_n)
    warm(list_files(small))
    print(f"\n== storescu with and without Nagle -> our listener, {small_n} small files, best of {repeat}")
    best = best_of({"Nagle on": lambda tmp: listener_run(small, small_n, tmp, env=NAGLE_ENV),
                    "TCP_NODELAY=1": lambda tmp: listener_run(small, small_n, tmp)}, repeat)
    for name, seconds in best.items():
        print(f"  storescu {name:<16}{seconds:>9.3f} s{small_n / seconds:>9,.0f} images/s")
    ratio = best["TCP_NODELAY=1"] / best["Nagle on"]
    target_row(f"storescu (Nagle on) -> listener, {small_n} small files",
               f"{best['Nagle on']:.3f} s ({ratio:.2f}x of TCP_NODELAY's {best['TCP_NODELAY=1']:.3f} s)",
               ">= 0.7x of the TCP_NODELAY time and < 1 s", ratio >= 0.7 and best["Nagle on"] < 1.0)

    large = prepare("large", large_n)
    warm(list_files(large))
    print(f"\n== storescu -> receiver, {large_n} x 512x512, storing + flush + indexing, best of {repeat}")

    def storescp_run(tmp: Path) -> float:
        port, out = free_port(), tmp / "received"
        out.mkdir()
        with dcmtk_scp(tmp, port, out):
            return fed(large, large_n, port, "REF", lambda: len(list_files(out)))

    best = best_of({"DCMTK storescp (no flush)": storescp_run,
                    **{f"ours --sync {mode}": (lambda tmp, mode=mode: listener_run(large, large_n, tmp, mode))
                       for mode in ("file", "batch", "none")}}, repeat)
    peer = large_n / best["DCMTK storescp (no flush)"]
    for name, seconds in best.items():
        print(f"  {name:<28}{seconds:>9.3f} s{large_n / seconds:>9,.0f} images/s{large_n / seconds / peer:>8.2f}x")
    for mode, minimum in (("file", 0.8), ("batch", 1.0)):
        rate = large_n / best[f"ours --sync {mode}"]
        target_row(f"storescu -> listener, {large_n} x 512^2, storing + flush + indexing, --sync {mode}",
                   f"{rate:,.0f} img/s ({rate / peer:.2f}x of storescp's {peer:,.0f} img/s)",
                   f">= {minimum:.1f}x DCMTK storescp (no flush)", rate / peer >= minimum)
    print("  (a shared 2-core machine, other work running: ratios measured side by side, best of "
          f"{repeat}; --sync none is storescp's own behaviour, shown for the cost of flushing)")


# ---- main -------------------------------------------------------------------------------------------------------

def bench_set(name: str, folder: Path, repeat: int, receivers: list[str]) -> dict[str, float]:
    paths = list_files(folder)
    n, megabytes = len(paths), sum(map(os.path.getsize, paths)) / 1e6
    print(f"\n== {name}: {n:,} files in {folder.relative_to(ROOT)}, {os.path.getsize(paths[0]) / 1024:.1f} KB each")
    warm(paths)
    rates: dict[str, float] = {}
    for title, fn, kinds, ours in (("receivers (fed by DCMTK storescu)", receive, receivers, RECV),
                                   ("senders (to DCMTK storescp)", send, ["DCMTK storescu", SEND], SEND)):
        print(f"  {title:<34}{'images':>8}{'seconds':>10}{'images/s':>11}{'MB/s':>9}{'ours/peer':>11}")
        rows = [(kind, min(timed(fn, kind, folder, n) for _ in range(repeat))) for kind in kinds]
        rates.update((kind, n / seconds) for kind, seconds in rows)
        for kind, seconds in rows:
            ratio = "-" if kind == ours else f"{rates[ours] / rates[kind]:.2f}x"
            print(f"  {kind:<34}{n:>8,}{seconds:>10.3f}{n / seconds:>11,.0f}{megabytes / seconds:>9,.0f}{ratio:>11}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 large slices and 300 small files")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each (default 1; issue 15's rows: 3)")
    parser.add_argument("--targets-only", action="store_true", help="only issue 15's rows (Nagle, durable receive)")
    args = parser.parse_args()

    check(all(shutil.which(t) for t in ("storescu", "storescp", "echoscu")), "DCMTK not found on PATH")
    have_orthanc = os.access(ORTHANC, os.X_OK)
    dcmtk = subprocess.run(["storescu", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    orthanc = subprocess.run([ORTHANC, "--version"], capture_output=True, text=True).stdout.split("\n")[0] \
        if have_orthanc else "Orthanc not found"
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    print(f"Python {platform.python_version()}   nproc: {len(os.sched_getaffinity(0))}   pydicom {pydicom.__version__}"
          f"   pynetdicom {pynetdicom.__version__}   {dcmtk.strip('$ ')}   {orthanc}   commit {commit}")
    OUT.mkdir(parents=True, exist_ok=True)
    issue15_rows(max(args.repeat, 3), args.quick)
    if args.targets_only:
        return
    receivers = ["DCMTK storescp", PYNET] + ["Orthanc"] * have_orthanc + [RECV]
    if not have_orthanc:
        print(f"note: Orthanc not found at {ORTHANC}: its runs and targets are SKIPPED")
    sizes = {"large": 50, "small": 300} if args.quick else {"large": 300, "small": 2000}
    results = {name: bench_set(name, prepare(name, n), args.repeat, receivers) for name, n in sizes.items()}

    print("\n== targets (images/s, ours / peer" + (", --quick: indicative only)" if args.quick else ")"))
    for name, ours, peer, minimum in TARGETS:
        label = f"{ours} >= {minimum:.2f}x {peer} ({name})"
        if peer not in results[name]:
            print(f"  {label:<58}{'-':>8}   SKIPPED")
            continue
        ratio = results[name][ours] / results[name][peer]
        print(f"  {label:<58}{ratio:>7.2f}x   {'MET' if ratio >= minimum else 'NOT MET'}")


if __name__ == "__main__":
    main()
