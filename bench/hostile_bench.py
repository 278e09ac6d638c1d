"""Hostile-peer benchmark: the listener's memory and threads under connections that announce large PDUs and never
send them (issue 13, item 2: 150 such connections took it from 84 MB to 701 MB and 154 threads).

The listener (dicomtui.core.net.listener.Listener with the defaults of `nodes local`, on 127.0.0.1) runs in a
child process; its VmRSS and Threads are read from /proc/PID/status when idle and again while this script holds
the connections open:

  rq      150 connections, each sending the 6-byte header of an A-ASSOCIATE-RQ announcing 4 MiB and 2 bytes more
  pdata   as many established associations as allowed (max_associations), each sending the header of a P-DATA-TF
          announcing 1 MiB (our maximum PDU) and 2 bytes more; then 150 - that many connections as in rq

Run:  .venv/bin/python bench/hostile_bench.py          (about 15 s)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from _common import check  # noqa: E402

from dicomtui.core.net import wire  # noqa: E402

TARGET_MB = 50.0  # RSS growth under the hostile connections, at most (issue 13)
SETTLE_S = 1.0  # after opening the connections, before reading the RSS

CHILD = """
import sys, time
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode
with Listener(sys.argv[1], LocalNode(port=0, bind="127.0.0.1")) as server:
    print(server.port, server.local.max_associations, server.local.max_connections, flush=True)
    sys.stdin.read()
"""


def status(pid: int) -> tuple[float, int]:
    """(VmRSS in MB, threads) of process ``pid``."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(body)) + body


def associate_rq() -> bytes:
    body = struct.pack(">HH", 1, 0) + b"DICOMTUI".ljust(16) + b"HOSTILE".ljust(16) + bytes(32)
    body += _item(0x10, wire.APPLICATION_CONTEXT.encode())
    body += _item(0x20, bytes([1, 0, 0, 0]) + _item(0x30, wire.VERIFICATION.encode())
                  + _item(0x40, wire.IMPLICIT_LE.encode()))
    body += _item(0x50, _item(0x51, struct.pack(">L", 16384)))
    return struct.pack(">BxL", 1, len(body)) + body


def hold(port: int, n: int, established: int) -> tuple[list[socket.socket], int]:
    """Open ``established`` associations announcing a 1 MiB P-DATA-TF and ``n - established`` connections
    announcing a 4 MiB A-ASSOCIATE-RQ, 8 bytes sent on each; (the sockets, how many the listener accepted)."""
    opened, accepted = [], 0
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        opened.append(sock)
        if i < established:
            sock.sendall(associate_rq())
            reply = sock.recv(65536)
            accepted += bool(reply) and reply[0] == wire.ASSOCIATE_AC
            sock.sendall(wire.PDU_HEADER.pack(wire.P_DATA, wire.MAX_PDU) + bytes(2))
        else:
            with contextlib.suppress(OSError):  # refused at the connection cap
                sock.sendall(wire.PDU_HEADER.pack(wire.ASSOCIATE_RQ, 4 << 20) + bytes(2))
    return opened, accepted


def scenario(name: str, n: int, established: int) -> float:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        log = open(Path(tmp) / "listener.log", "w+")  # noqa: SIM115 - closed below, read after the child ends
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(Path(tmp) / "db")], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert child.stdout is not None
            port, max_assoc, max_conn = map(int, child.stdout.readline().split())
            established = min(established, max_assoc)
            time.sleep(SETTLE_S)
            idle_mb, idle_threads = status(child.pid)
            opened, accepted = hold(port, n, established)
            time.sleep(SETTLE_S)
            busy_mb, busy_threads = status(child.pid)
            check(accepted == established, f"{name}: {accepted} of {established} associations accepted")
            for sock in opened:
                sock.close()
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(30)
            log.seek(0)
            lines = log.read().splitlines()
            log.close()
        refused = sum("refused a connection" in line for line in lines)
        longest = max(map(len, lines), default=0)
        grown = busy_mb - idle_mb
        print(f"  {name:<8}{n:>7}{established:>13}{idle_mb:>9.0f}{busy_mb:>9.0f}{grown:>9.1f}"
              f"{idle_threads:>9}{busy_threads:>9}{refused:>9}{longest:>9}")
        return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=150)
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    print(f"Python {platform.python_version()}   nproc: {len(os.sched_getaffinity(0))}   commit {commit}")
    print(f"\n== listener RSS (MB) and threads, idle and holding the connections\n"
          f"  {'case':<8}{'conns':>7}{'established':>13}{'idle':>9}{'held':>9}{'grown':>9}{'threads':>9}{'held':>9}"
          f"{'refused':>9}{'log line':>9}")
    print("  (refused: connections closed unanswered at the connection cap; log line: the longest, in characters)")
    results = {name: scenario(name, args.connections, established)
               for name, established in (("rq", 0), ("pdata", args.connections))}
    print("\n== targets")
    for name, grown in results.items():
        label = f"RSS growth under {args.connections} connections ({name}) <= {TARGET_MB:.0f} MB"
        print(f"  {label:<58}{grown:>7.1f} MB   {'MET' if grown <= TARGET_MB else 'NOT MET'}")


if __name__ == "__main__":
    main()
