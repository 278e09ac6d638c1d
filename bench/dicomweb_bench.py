"""DICOMweb against Orthanc + its DICOMweb plugin (issue 18's "Speed"), side by side in one run, best of --repeat,
the contenders alternating:

- STOW-RS of N generated 512x512 instances: ours (``web_stow.stow``, batched multipart) against dicomweb-client's
  ``store_instances`` called once per instance (the plain loop). Orthanc's storage is emptied between runs.
- WADO-RS of the series: ours (``web_wado.web_retrieve``: planning QIDO, streamed, each instance stored durably
  and indexed into a fresh database), dicomweb-client's ``retrieve_series`` (data sets in memory, nothing stored)
  and curl writing the multipart body to a file (the transfer limit).
- Peak memory of our retrieve, in a child process: its RSS growth while retrieving, against the series' size
  (streaming: it must not grow with the study).

Run:  .venv/bin/python bench/dicomweb_bench.py [--instances 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from _common import check, target_row  # noqa: E402
from store_bench import free_port, http_json, server  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.net.nodes import RemoteNode  # noqa: E402
from dicomtui.core.net.web_stow import stow  # noqa: E402
from dicomtui.core.net.web_wado import ACCEPT, web_retrieve  # noqa: E402
from dicomtui.core.synth import SeriesSpec, series_datasets  # noqa: E402

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
RSS_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.nodes import RemoteNode
from dicomtui.core.net.web_wado import web_retrieve
import requests, pydicom  # loaded before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with DicomDatabase.open(sys.argv[3]) as db:
    report = web_retrieve(db, RemoteNode("o", url=sys.argv[2]), [sys.argv[4]])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, report.completed)
"""


def files(folder: Path, n: int) -> list[dict]:
    """N generated 512x512 CT instances, one series; rows as the send code takes them."""
    rows = []
    for i, ds in enumerate(series_datasets(SeriesSpec(slices=n, rows=512, cols=512, patient_id="WEB0001"))):
        path = folder / f"{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        rows.append({"path": str(path), "SOPInstanceUID": ds.SOPInstanceUID, "study": ds.StudyInstanceUID,
                     "series": ds.SeriesInstanceUID})
    return rows


def empty_orthanc(http_port: int) -> None:
    for study in http_json(http_port, "/studies") or []:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{http_port}/studies/{study}",
                                                      method="DELETE"), timeout=30).read()


def best(seconds: list[float]) -> float:
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    check(Path(PLUGIN).exists(), f"{PLUGIN} missing (apt-get install orthanc-dicomweb)")
    from dicomweb_client import DICOMwebClient
    from pydicom import dcmread

    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as name:
        tmp = Path(name)
        (tmp / "files").mkdir()
        rows = files(tmp / "files", args.instances)
        size = sum(Path(r["path"]).stat().st_size for r in rows)
        http_port = free_port()
        config = {"Name": "web-bench", "StorageDirectory": str(tmp / "storage"), "IndexDirectory": str(tmp / "index"),
                  "DicomPort": free_port(), "HttpPort": http_port, "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "Plugins": [PLUGIN], "DicomWeb": {"Enable": True,
                                                                                    "Root": "/dicom-web/"}}
        (tmp / "orthanc.json").write_text(json.dumps(config))
        url = f"http://127.0.0.1:{http_port}/dicom-web"
        node = RemoteNode("orthanc", url=url, timeout=120)
        study, series = rows[0]["study"], rows[0]["series"]
        print(f"{args.instances} instances of 512x512, {size / 1e6:.0f} MB; Orthanc {url}; machine shared "
              f"(2 cores, other work running): compare the ratios, not the seconds")
        with server([ORTHANC, str(tmp / "orthanc.json")], tmp, lambda: http_json(http_port, "/system") is not None):
            client = DICOMwebClient(url)
            datasets = [dcmread(r["path"]) for r in rows]
            ours_stow, theirs_stow = [], []
            for _ in range(args.repeat):
                empty_orthanc(http_port)
                start = time.perf_counter()
                report = stow(node, rows)
                ours_stow.append(time.perf_counter() - start)
                check(report.counts["success"] == len(rows), f"our STOW: {report.summary()} {report.error}")
                empty_orthanc(http_port)
                start = time.perf_counter()
                for ds in datasets:
                    client.store_instances([ds])
                theirs_stow.append(time.perf_counter() - start)
            print(f"  STOW-RS   ours {best(ours_stow):.2f} s   dicomweb-client store_instances loop "
                  f"{best(theirs_stow):.2f} s")
            ours, loose, theirs, curl = [], [], [], []
            body = tmp / "body.bin"
            for i in range(args.repeat):
                start = time.perf_counter()
                subprocess.run(["curl", "-s", "-f", "-o", str(body), "-H", f"Accept: {ACCEPT}",
                                f"{url}/studies/{study}/series/{series}"], check=True)
                curl.append(time.perf_counter() - start)
                start = time.perf_counter()
                got = client.retrieve_series(study, series)
                theirs.append(time.perf_counter() - start)
                check(len(got) == len(rows), f"dicomweb-client got {len(got)}")
                with DicomDatabase.open(tmp / f"db{i}") as db:
                    start = time.perf_counter()
                    report = web_retrieve(db, node, [series])
                    ours.append(time.perf_counter() - start)
                    check(report.completed == len(rows) and db.stats()["instances"] == len(rows),
                          f"our WADO: {report.summary()} {report.errors}")
                with DicomDatabase.open(tmp / f"loose{i}") as db:
                    start = time.perf_counter()
                    report = web_retrieve(db, node, [series], sync="none")
                    loose.append(time.perf_counter() - start)
                    check(report.completed == len(rows), f"our WADO (sync none): {report.summary()}")
            received = body.stat().st_size
            rate = {k: received / best(v) / 1e6 for k, v in (("ours", ours), ("loose", loose), ("theirs", theirs),
                                                              ("curl", curl))}
            print(f"  WADO-RS   ours {best(ours):.2f} s ({rate['ours']:.0f} MB/s, stored + flushed + indexed)   "
                  f"ours without flush (sync none) {best(loose):.2f} s ({rate['loose']:.0f} MB/s)   "
                  f"dicomweb-client {best(theirs):.2f} s ({rate['theirs']:.0f} MB/s, in memory)   "
                  f"curl {best(curl):.2f} s ({rate['curl']:.0f} MB/s, to a file)")
            child = subprocess.run([sys.executable, "-c", RSS_CHILD, str(ROOT), url, str(tmp / "dbrss"), series],
                                   capture_output=True, text=True, check=True).stdout.split()
            grown = (int(child[1]) - int(child[0])) / 1024  # MB (ru_maxrss is in KiB on Linux)
            print(f"  peak RSS of a process running our retrieve: {int(child[0]) / 1024:.0f} MB after its imports, "
                  f"{int(child[1]) / 1024:.0f} MB after retrieving the {size / 1e6:.0f} MB series")
        target_row("WADO-RS retrieve into the database vs curl", f"{rate['ours'] / rate['curl'] * 100:.0f} % of curl's "
                   "bytes/s", ">= 50 %", rate["ours"] >= 0.5 * rate["curl"])
        target_row("WADO-RS retrieve, no flush (sync none), vs curl", f"{rate['loose'] / rate['curl'] * 100:.0f} % of "
                   "curl's bytes/s", ">= 50 %", rate["loose"] >= 0.5 * rate["curl"])
        target_row("WADO-RS retrieve peak memory", f"+{grown:.0f} MB for {size / 1e6:.0f} MB", "< 1/4 of the series",
                   grown < size / 1e6 / 4)
        target_row("STOW-RS send vs dicomweb-client store_instances loop",
                   f"{best(ours_stow):.2f} s vs {best(theirs_stow):.2f} s", "ours <= theirs",
                   best(ours_stow) <= best(theirs_stow))


if __name__ == "__main__":
    main()
