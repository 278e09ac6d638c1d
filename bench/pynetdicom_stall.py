"""The send stall of pynetdicom 3.0.4's requestor, reproduced: why dicomtui.core.net.send no longer uses it.

Root cause: ``Association.send_c_store`` (and every ``send_*``) "pauses" the association reactor with
``_reactor_checkpoint.clear(); while not self._is_paused: sleep`` and resumes it with ``set()`` once it has the
response. But ``_is_paused`` stays True from the moment the reactor blocks in ``_reactor_checkpoint.wait()``
until that thread runs again after the previous ``set()``. When the next ``send_c_store`` clears the checkpoint
in that gap (the reactor thread has been woken but has not had the GIL yet), it sees ``_is_paused`` True, sends
its request and waits in ``dimse.get_msg(block=True)``, while the reactor — no longer paused — goes on to
``dimse.get_msg(block=False)``. If the peer's C-STORE-RSP is in the queue by then, the reactor takes it, logs
"Received unexpected C-STORE service message" and drops it; ``send_c_store`` waits for the DIMSE timeout and
aborts. On localhost against DCMTK storescp the window is hit about once per few hundred to thousand stores.

    .venv/bin/python bench/pynetdicom_stall.py            # plain pynetdicom: count stalls over N stores
    .venv/bin/python bench/pynetdicom_stall.py --widen    # the reactor wakes late (as when it waits for the
                                                          # GIL): nearly every store stalls
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pynetdicom.association  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402

from dicomtui.core.synth import SeriesSpec, write_series  # noqa: E402


class _LateWake(threading.Event):
    """The reactor's checkpoint: after a wake-up the reactor thread runs again only once the next response is in
    the DIMSE queue (or 50 ms later) — a GIL hand-over delay, made long."""

    assoc = None

    def wait(self, timeout=None):
        woken = super().wait(timeout)
        end = time.monotonic() + 0.05
        while self.assoc is not None and self.assoc.dimse.msg_queue.qsize() == 0 and time.monotonic() < end:
            time.sleep(0.00005)
        return woken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widen", action="store_true", help="make the reactor wake late after each resume")
    parser.add_argument("-n", type=int, default=500, help="C-STOREs to send (default 500)")
    args = parser.parse_args()

    dropped = []

    class Catch(logging.Handler):
        def emit(self, record):
            if "unexpected" in record.getMessage():
                dropped.append(record.getMessage())

    logging.getLogger("pynetdicom").addHandler(Catch())
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    if args.widen:
        original = pynetdicom.association.Association.__init__

        def init(self, *a, **k):
            original(self, *a, **k)
            self._reactor_checkpoint = _LateWake()
            self._reactor_checkpoint.assoc = self
            self._reactor_checkpoint.set()

        pynetdicom.association.Association.__init__ = init

    with tempfile.TemporaryDirectory() as tmp:
        files = write_series(Path(tmp) / "in", SeriesSpec(slices=min(args.n, 50), rows=16, cols=16))
        out = Path(tmp) / "out"
        out.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        scp = subprocess.Popen(["storescp", "-aet", "REF", "-od", str(out), str(port)],
                               env={**os.environ, "TCP_NODELAY": "1"}, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            ae = AE(ae_title="STALL")
            ae.dimse_timeout = 2
            from pydicom import dcmread

            sop_class = dcmread(files[0]).SOPClassUID
            ae.add_requested_context(sop_class)
            nodelay = (evt.EVT_CONN_OPEN, lambda e: e.assoc.dul.socket.socket.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
            stalls, sent, start = 0, 0, time.perf_counter()
            assoc = ae.associate("127.0.0.1", port, ae_title="REF", evt_handlers=[nodelay])
            while sent < args.n:
                status = assoc.send_c_store(files[sent % len(files)])
                sent += 1
                if not status:  # no response within the DIMSE timeout: the association was aborted
                    stalls += 1
                    assoc = ae.associate("127.0.0.1", port, ae_title="REF", evt_handlers=[nodelay])
            assoc.release()
        finally:
            scp.terminate()
            scp.wait()
    print(f"pynetdicom {pynetdicom.__version__}{' (reactor wakes late)' if args.widen else ''}: {sent} C-STOREs in "
          f"{time.perf_counter() - start:.1f} s, {stalls} never answered; responses the reactor took and dropped "
          f"('Received unexpected C-STORE service message'): {len(dropped)}")


if __name__ == "__main__":
    main()
