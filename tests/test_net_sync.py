"""The listener's sync modes (``--sync file|batch|none``, issue 15): what each flushes before the success response,
and the batch mode's group commit (each response waits for a flush that started after its file was renamed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dicomtui.core import storage
from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import NodeError
from dicomtui.core.net import durable, incoming
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import SYNC_MODES, LocalNode, RemoteNode
from dicomtui.core.net.send import send
from dicomtui.core.synth import SeriesSpec, write_series
from tests.test_net_loopback import _rows, _wait

FILES = 6


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_each_sync_mode_flushes_what_it_says_before_answering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              mode: str) -> None:
    calls: list[str] = []
    real_flush, real_dir, real_wait = incoming.flush_data, storage.fsync_dir, durable.GroupSync.wait
    monkeypatch.setattr(incoming, "flush_data", lambda fd: (calls.append("file"), real_flush(fd)))
    monkeypatch.setattr(storage, "fsync_dir", lambda path: (calls.append("folder"), real_dir(path)))
    monkeypatch.setattr(durable.GroupSync, "wait", lambda self, path: (calls.append("syncfs"), real_wait(self, path)))
    files = write_series(tmp_path / "in", SeriesSpec(slices=FILES, rows=16, cols=16))
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", sync=mode)) as server:
        report = send(_rows(files), RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port))
        assert report.counts["success"] == FILES, report.items
        assert _wait(lambda: server.indexed >= FILES)
    expected = {"file": ["file", "folder"], "batch": ["syncfs"], "none": []}[mode]
    assert calls == expected * FILES
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.stats()["instances"] == FILES


def test_an_unknown_sync_mode_is_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="sync must be one of file, batch, none"):
        Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", sync="sometimes")).start()


class _SlowRounds(durable.GroupSync):
    """Each flush takes 30 ms and records when it started and ended."""

    def __init__(self, root: Path):
        self.rounds: list[tuple[float, float]] = []
        super().__init__(root)

    def _flush(self) -> None:
        start = time.monotonic()
        time.sleep(0.03)
        super()._flush()
        self.rounds.append((start, time.monotonic()))


def test_group_sync_shares_rounds_and_each_waits_for_one_started_after_it(tmp_path: Path) -> None:
    group = _SlowRounds(tmp_path)
    waits: list[tuple[float, float]] = []
    lock = threading.Lock()

    def waiter(delay: float) -> None:
        time.sleep(delay)
        called = time.monotonic()
        group.wait()
        with lock:
            waits.append((called, time.monotonic()))

    threads = [threading.Thread(target=waiter, args=(i * 0.005,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    group.close()
    assert len(waits) == 12
    assert len(group.rounds) < 12  # waiters arriving during a round share the next one
    for called, returned in waits:  # durable: a whole round ran between the call and the return
        assert any(called <= start and end <= returned for start, end in group.rounds), (called, group.rounds)


def test_a_file_cut_by_a_power_loss_in_batch_mode_is_not_indexed_at_start(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """--sync batch renames before flushing: after a power loss a renamed file can be incomplete (no success was
    sent for it). The listener's start-up catch-up must not index it; a whole one beside it is indexed."""
    whole, cut = write_series(tmp_path / "in", SeriesSpec(slices=2, rows=32, cols=32))
    DicomDatabase.open(tmp_path / "db").close()
    for path, keep in ((whole, None), (cut, -100)):
        dest = tmp_path / "db" / storage.relative_path(*_uids(path))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes()[:keep])
    with caplog.at_level("WARNING"), Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", sync="batch")):
        pass
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.stats()["instances"] == 1
    assert "not indexed" in caplog.text and "truncated" in caplog.text


def _uids(path: Path) -> tuple[str, str, str]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
