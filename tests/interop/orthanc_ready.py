"""Waiting for an Orthanc started by a test: its REST API answers (HTTP 401 counts: up, with authentication)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def wait_orthanc(proc: subprocess.Popen, http_port: int, log: Path, seconds: float = 30.0) -> None:
    """Return once ``GET /system`` answers; RuntimeError with the log's end when Orthanc exits or takes longer."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/system", timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("Orthanc did not start: " + log.read_text()[-2000:]) from None
            time.sleep(0.1)
