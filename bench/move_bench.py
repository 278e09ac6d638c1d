"""C-MOVE versus C-GET from Orthanc into the database (issue 15: "C-MOVE of 100 small instances ≤ C-GET's time per
instance").

Orthanc (Debian package) runs on 127.0.0.1 with a temp configuration that knows our AE title and listener port,
seeded with one generated study of N small instances (64x64, no real patients). Each run retrieves the whole study
into a fresh database with ``dicomtui.core.net.retrieve.retrieve`` (planning C-FINDs included, as the user waits
for them): by C-GET on the query association, by C-MOVE to our listener started for the duration (nothing listens
on our port), and by C-MOVE to a listener that is already running. Best of --repeat runs, alternating the methods.
Orthanc runs without TCP_NODELAY=1 in its environment, as users run it: its DCMTK then sends with Nagle's algorithm
on (C-GET's C-STOREs and the C-MOVE sub-associations), so the rows show whether we acknowledge at once
(wire.quick_ack).

Run:  .venv/bin/python bench/move_bench.py [--instances 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from _common import check, target_row  # noqa: E402
from store_bench import NAGLE_ENV, free_port, http_json, server  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.net.listener import Listener  # noqa: E402
from dicomtui.core.net.nodes import LocalNode, RemoteNode  # noqa: E402
from dicomtui.core.net.retrieve import retrieve  # noqa: E402
from dicomtui.core.net.send import send  # noqa: E402
from dicomtui.core.net.wire import EXPLICIT_LE  # noqa: E402
from dicomtui.core.synth import SeriesSpec, series_datasets  # noqa: E402

OUT = ROOT / "bench" / "out"
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


def orthanc(tmp: Path, our_port: int):
    """Orthanc knowing our AE title at ``our_port`` (store_bench's server(): started, waited for, stopped)."""
    dicom_port, http_port = free_port(), free_port()
    config = {"Name": "move-bench", "StorageDirectory": str(tmp / "storage"), "IndexDirectory": str(tmp / "index"),
              "DicomAet": "ORTHANC", "DicomPort": dicom_port, "HttpPort": http_port, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "Plugins": [], "DicomScuTimeout": 10,
              "DicomModalities": {"dicomtui": ["DICOMTUI", "127.0.0.1", our_port]}}
    (tmp / "orthanc.json").write_text(json.dumps(config))
    node = RemoteNode("orthanc", "ORTHANC", "127.0.0.1", dicom_port, timeout=30)
    return node, server([ORTHANC, str(tmp / "orthanc.json")], tmp, lambda: http_json(http_port, "/system") is not None,
                        NAGLE_ENV)  # as Orthanc runs for users: its DCMTK keeps Nagle on without TCP_NODELAY=1


def seed(node: RemoteNode, tmp: Path, n: int) -> str:
    """Send one study of n small instances to Orthanc; its StudyInstanceUID."""
    rows = []
    for i, ds in enumerate(series_datasets(SeriesSpec(slices=n, rows=64, cols=64, patient_id="MOVE0001"))):
        path = tmp / "seed" / f"{i:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        rows.append({"SOPInstanceUID": ds.SOPInstanceUID, "SOPClassUID": ds.SOPClassUID, "path": str(path),
                     "TransferSyntaxUID": EXPLICIT_LE})
    report = send(rows, node, LocalNode(ae_title="SEEDER"))
    check(report.counts["success"] == n, f"seeding Orthanc: {report.counts} {report.error}")
    return str(ds.StudyInstanceUID)


def one_run(kind: str, node: RemoteNode, local: LocalNode, study: str, n: int, tmp: Path) -> float:
    db_path = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp)) / "db"
    with DicomDatabase.open(db_path) as db:
        running = Listener(db_path, local) if kind == "move, listener running" else None
        if running is not None:
            running.start()
        try:
            start = time.perf_counter()
            report = retrieve(db, node, [study], "get" if kind == "get" else "move", local)
            if running is not None:  # done when the running listener has indexed what it received
                deadline = time.monotonic() + 30
                while running.indexed < n and time.monotonic() < deadline:
                    time.sleep(0.001)
            seconds = time.perf_counter() - start
        finally:
            if running is not None:
                running.stop()
        check(report.completed == n and not report.errors, f"{kind}: {report.summary()} {report.errors}")
        check(db.stats()["instances"] == n, f"{kind}: the database holds {db.stats()['instances']}, expected {n}")
    shutil.rmtree(db_path.parent, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each (default 3)")
    args = parser.parse_args()
    work = f"C-MOVE of {args.instances} small instances from Orthanc into the database"
    if not shutil.which(ORTHANC) and not Path(ORTHANC).exists():
        print(f"note: Orthanc not found at {ORTHANC}")
        target_row(work, "-", "<= C-GET's time per instance", None)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="move-", dir=OUT))
    local = LocalNode(ae_title="DICOMTUI", port=free_port(), bind="127.0.0.1")
    node, running = orthanc(tmp, local.port)
    kinds = ["get", "move, listener started", "move, listener running"]
    best = {kind: float("inf") for kind in kinds}
    try:
        with running:
            study = seed(node, tmp, args.instances)
            for _ in range(args.repeat):  # alternating, so that the machine's load falls on every method alike
                for kind in kinds:
                    best[kind] = min(best[kind], one_run(kind, node, local, study, args.instances, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.instances
    print(f"\n== retrieve of {n} instances (64x64) from Orthanc, best of {args.repeat} (a shared, loaded machine)")
    print(f"  {'method':<28}{'seconds':>9}{'ms/instance':>13}")
    for kind in kinds:
        print(f"  {kind:<28}{best[kind]:>9.3f}{best[kind] / n * 1000:>13.2f}")
    get_per = best["get"] / n
    for kind in kinds[1:]:
        per = best[kind] / n
        target_row(f"{work} ({kind})", f"{per * 1000:.2f} ms/instance ({best[kind]:.2f} s)",
                   f"<= C-GET's {get_per * 1000:.2f} ms/instance", per <= get_per)


if __name__ == "__main__":
    main()
