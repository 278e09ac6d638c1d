"""Queue hygiene (issue 20): deleting studies (``rm``, the browser's delete and ``db prune`` all go through
``DicomDatabase.delete``) drops their forwards not sent yet, instead of retrying a vanished file; a file gone any
other way fails its forward at once ("deleted before it was sent"); ``route queue --clear-sent [--older-than]``
keeps the queue file from growing."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest

from dicomtui.cli import main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.forward_queue import ForwardQueue
from dicomtui.core.net.forwarder import Forwarder
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.interop.test_dimse import free_port


def _two_studies_queued(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A database with two studies (3 instances each, copied) and a forward queued for each instance: study
    "A" has one failed and one sent; returns the database folder and study UID → SOP Instance UIDs."""
    root = tmp_path / "db"
    studies: dict[str, list[str]] = {}
    for n, pid in enumerate(("PA", "PB")):
        paths = write_series(tmp_path / pid, SeriesSpec(patient_id=pid, slices=3, rows=8, cols=8, seed=n))
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        studies[str(datasets[0].StudyInstanceUID)] = [str(d.SOPInstanceUID) for d in datasets]
        assert main(["--db", str(root), "import", str(tmp_path / pid), "--copy"]) == 0
    with DicomDatabase.open(root) as db:
        rows = db.conn.execute("SELECT i.SOPInstanceUID, i.SOPClassUID, i.path, st.StudyInstanceUID FROM instances i "
                               "JOIN series s ON s.id = i.series_fk JOIN studies st ON st.id = s.study_fk").fetchall()
    with ForwardQueue(root) as queue:
        queue.enqueue([({"SOPInstanceUID": sop, "SOPClassUID": cls, "StudyInstanceUID": study,
                         "path": str(root / path)}, "pacs", None, 0.0) for sop, cls, path, study in rows])
        first = next(iter(studies))
        by_uid = {f.SOPInstanceUID: f for f in queue.due()}
        queue.mark_failed_try(by_uid[studies[first][0]].id, "refused", None)
        queue.mark_sent(by_uid[studies[first][1]].id)
    return root, studies


def test_rm_drops_the_forwards_not_sent_of_the_deleted_study(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, studies = _two_studies_queued(tmp_path)
    gone, kept = studies
    capsys.readouterr()
    assert main(["--db", str(root), "rm", gone, "--yes"]) == 0
    assert "2 forwards not sent, dropped" in capsys.readouterr().out
    with ForwardQueue(root) as queue:
        left = {f.SOPInstanceUID: f.state for f in queue.listing(["pending", "failed", "sent"])}
    assert left == {studies[gone][1]: "sent"} | {uid: "pending" for uid in studies[kept]}  # history stays


def test_db_prune_drops_them_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, studies = _two_studies_queued(tmp_path)
    time.sleep(1.1)
    assert main(["--db", str(root), "db", "prune", "--older-than", "1s"]) == 0
    with ForwardQueue(root) as queue:
        assert queue.counts() == {"pacs": {"sent": 1}}


def test_a_repair_that_reindexes_a_changed_file_keeps_its_forward(tmp_path: Path) -> None:
    root, studies = _two_studies_queued(tmp_path)
    with DicomDatabase.open(root) as db:
        [(row_id,)] = db.conn.execute("SELECT id FROM instances WHERE SOPInstanceUID = ?",
                                      (studies[list(studies)[1]][0],)).fetchall()
        assert db.delete([("instance", row_id)], keep_files=True).forwards_dropped == 0
    with ForwardQueue(root) as queue:
        assert queue.counts()["pacs"]["pending"] == 4


def test_a_file_deleted_otherwise_fails_its_forward_at_once(tmp_path: Path) -> None:
    row = {"SOPInstanceUID": "1.2.3.4", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "StudyInstanceUID": "1.2.3",
           "path": str(tmp_path / "gone.dcm")}
    with ForwardQueue(tmp_path) as queue:
        queue.enqueue([(row, "pacs", None, 0.0)])
    node = RemoteNode(name="pacs", ae_title="PACS", host="127.0.0.1", port=free_port())
    forwarder = Forwarder(tmp_path, LocalNode(), nodes=lambda: Nodes(LocalNode(), {"pacs": node}))
    forwarder.start()
    try:
        with ForwardQueue(tmp_path) as queue:
            deadline = time.monotonic() + 20
            while queue.counts() != {"pacs": {"failed": 1}} and time.monotonic() < deadline:
                time.sleep(0.05)
            [failed] = queue.listing(["failed"])
    finally:
        forwarder.stop()
    assert failed.tries == 1 and failed.last_error.startswith("deleted before it was sent:")


def test_route_queue_clear_sent_forgets_sent_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, studies = _two_studies_queued(tmp_path)
    with ForwardQueue(root) as queue:
        old = next(f for f in queue.due() if f.SOPInstanceUID == studies[list(studies)[1]][0])
        queue.mark_sent(old.id, now=time.time() - 3 * 86400)
    assert main(["--db", str(root), "route", "queue", "--older-than", "1d"]) == 2
    capsys.readouterr()
    assert main(["--db", str(root), "route", "queue", "--clear-sent", "--older-than", "2d"]) == 0
    assert capsys.readouterr().out.startswith("1 sent forwards forgotten")
    with ForwardQueue(root) as queue:
        assert queue.counts() == {"pacs": {"failed": 1, "pending": 3, "sent": 1}}
    assert main(["--db", str(root), "route", "queue", "--clear-sent"]) == 0
    with ForwardQueue(root) as queue:
        assert queue.counts() == {"pacs": {"failed": 1, "pending": 3}}
