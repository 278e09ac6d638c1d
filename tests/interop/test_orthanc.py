"""Query/retrieve against Orthanc (Debian package), started by the tests on 127.0.0.1 with a temp config."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import NetworkError
from dicomtui.core.net.doctor import doctor
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.query import QueryFilters, query
from dicomtui.core.net.retrieve import retrieve
from dicomtui.core.net.send import send
from dicomtui.core.net.wire import EXPLICIT_LE
from dicomtui.core.synth import SeriesSpec, series_datasets
from tests.conftest import require_program
from tests.interop.orthanc_ready import wait_orthanc
from tests.interop.test_dimse import free_port

pytestmark = pytest.mark.interop


def _orthanc_files(folder: Path) -> list[Path]:
    """Two patients with non-ASCII names in two character sets, 2 series each."""
    paths = []
    for p, (name, charset) in enumerate([("Müller^Hans", "ISO_IR 100"), ("山田^太郎", "ISO_IR 192")]):
        for se in range(2):
            spec = SeriesSpec(patient_name=name, patient_id=f"INT{p}", series_number=se + 1, slices=3, rows=16,
                              cols=16, seed=100 + p, modality="CT" if se == 0 else "MR",
                              series_description=f"Series {se + 1}", study_description=f"Study of {p}")
            for i, ds in enumerate(series_datasets(spec)):
                ds.SpecificCharacterSet = charset
                path = folder / f"p{p}s{se}i{i}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                paths.append(path)
    return paths


@pytest.fixture
def orthanc(tmp_path: Path):
    """Orthanc with its own DICOM and HTTP ports, knowing our AE (DICOMTUI) at a port kept for our listener."""
    program = require_program("Orthanc", "orthanc")
    dicom_port, http_port, our_port = free_port(), free_port(), free_port()
    config = {
        "Name": "dicomtui-test", "StorageDirectory": str(tmp_path / "orthanc-storage"),
        "IndexDirectory": str(tmp_path / "orthanc-index"), "DicomAet": "ORTHANC", "DicomPort": dicom_port,
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
        "DicomModalities": {"dicomtui": ["DICOMTUI", "127.0.0.1", our_port]}, "DicomScuTimeout": 10,
        "DefaultEncoding": "Utf8",  # answers in UTF-8 (its default, Latin1, cannot hold 山田)
    }
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    log = open(tmp_path / "orthanc.log", "w")  # noqa: SIM115 - Orthanc writes it until the finaliser closes it
    proc = subprocess.Popen([program, str(tmp_path / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_orthanc(proc, http_port, tmp_path / "orthanc.log")
        node = RemoteNode("orthanc", "ORTHANC", "127.0.0.1", dicom_port, charset="ISO_IR 192", timeout=20)
        files = _orthanc_files(tmp_path / "seed")
        rows = [{"SOPInstanceUID": str(i), "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "path": str(p),
                 "TransferSyntaxUID": EXPLICIT_LE} for i, p in enumerate(files)]
        for row, path in zip(rows, files, strict=True):
            import pydicom

            ds = pydicom.dcmread(path)
            row["SOPClassUID"], row["SOPInstanceUID"] = ds.SOPClassUID, ds.SOPInstanceUID
        report = send(rows, node, LocalNode(ae_title="SEEDER"))
        assert report.counts["success"] == len(files), report.items
        yield node, LocalNode(ae_title="DICOMTUI", port=our_port, bind="127.0.0.1")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_query_levels_and_character_sets(orthanc) -> None:
    node, local = orthanc
    studies = query(node, "study", local=local)
    assert sorted(s["PatientName"] for s in studies) == ["Müller^Hans", "山田^太郎"]
    found = query(node, "study", QueryFilters(name="müller"), local)
    assert [s["PatientName"] for s in found] == ["Müller^Hans"]
    found = query(node, "study", QueryFilters(name="山田"), local)
    assert [s["PatientID"] for s in found] == ["INT1"]
    study_uid = found[0]["StudyInstanceUID"]
    series = query(node, "series", QueryFilters(study_uid=study_uid), local)
    assert sorted(s["Modality"] for s in series) == ["CT", "MR"]
    mr = query(node, "series", QueryFilters(study_uid=study_uid, modality="mr"), local)
    assert [s["SeriesNumber"] for s in mr] == ["2"]
    images = query(node, "image", QueryFilters(study_uid=study_uid, series_uid=mr[0]["SeriesInstanceUID"]),
                         local)
    assert len(images) == 3
    assert query(node, "study", QueryFilters(date="2024-01-01..2024-12-31"), local)
    assert query(node, "study", QueryFilters(date="19990101-19991231"), local) == []


def test_move_to_our_listener_resumes_without_refetching(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    study_uid = query(node, "study", QueryFilters(patient_id="INT0"), local)[0]["StudyInstanceUID"]
    with DicomDatabase.open(tmp_path / "db") as db:
        events = []
        report = retrieve(db, node, [study_uid], "move", local, progress=lambda d, t: events.append((d, t)))
        assert report.errors == [] and report.completed == 6 and report.failed == 0
        assert db.stats()["instances"] == 6 and events[-1] == (6, 6)
        again = retrieve(db, node, [study_uid], "move", local)
        assert again.already_here == 6 and again.completed == 0


def test_move_with_a_running_listener(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    series_uid = query(node, "series", QueryFilters(patient_id="INT1", modality="CT"), local)[0][
        "SeriesInstanceUID"]
    with Listener(tmp_path / "db", local) as listener, DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [series_uid], "move", local)
        assert report.completed == 3 and not report.errors
        deadline = time.monotonic() + 10
        while listener.indexed < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stats()["instances"] == 3


def test_get_into_the_database(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    study_uid = query(node, "study", QueryFilters(patient_id="INT1"), local)[0]["StudyInstanceUID"]
    with DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [study_uid], "get", local)
        assert report.errors == [] and report.completed == 6
        assert db.stats()["instances"] == 6
        assert [p["PatientName"] for p in db.patients()] == ["山田^太郎"]


def test_a_cancelled_get_keeps_what_arrived_and_resumes(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    study_uid = query(node, "study", QueryFilters(patient_id="INT1"), local)[0]["StudyInstanceUID"]
    cancel = threading.Event()
    with DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [study_uid], "get", local, cancel=cancel,
                                progress=lambda done, _total: cancel.set() if done >= 1 else None)
        assert report.cancelled
        kept = db.stats()["instances"]
        assert kept >= 1 and report.completed == kept  # what arrived is counted and indexed
        stored = list((tmp_path / "db" / "dicom").rglob("*.dcm"))
        assert len(stored) == kept  # every file that arrived is indexed, none is half-written
        again = retrieve(db, node, [study_uid], "get", local)
        assert again.already_here == kept and not again.cancelled
        assert db.stats()["instances"] == 6


def test_move_destination_unknown_gives_the_doctors_words(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    study_uid = query(node, "study", local=local)[0]["StudyInstanceUID"]
    with DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [study_uid], "move", local, destination="NOBODY")
    assert len(report.errors) == 1
    # Orthanc 1.10 answers 0xC000 (its log: "Unknown modality for AET"); DCMTK and most PACS answer 0xA801
    assert "status 0xC000" in report.errors[0] and "does not know the move destination NOBODY" in report.errors[0]
    assert '"DicomModalities"' in report.errors[0]


def test_an_unknown_caller_is_refused_in_plain_words(orthanc) -> None:
    node, _local = orthanc
    with pytest.raises(NetworkError, match="ORTHANC@127.0.0.1"):
        query(node, "study", local=LocalNode(ae_title="STRANGER"))


def test_cli_query_and_retrieve(tmp_path: Path, orthanc) -> None:
    import sys

    node, local = orthanc

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), *args],
                              capture_output=True, text=True, timeout=120)

    setup = cli("nodes", "local", "--ae", local.ae_title, "--port", str(local.port), "--bind", "127.0.0.1")
    assert setup.returncode == 0
    assert cli("nodes", "add", "pacs", node.address).returncode == 0
    out = cli("query", "pacs", "--name", "müller", "--json")
    assert out.returncode == 0, out.stderr
    (study,) = json.loads(out.stdout)
    assert study["PatientName"] == "Müller^Hans"
    out = cli("retrieve", "pacs", study["StudyInstanceUID"], "--method", "get", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["completed"] == 6
    out = cli("retrieve", "pacs", study["StudyInstanceUID"])  # move, resumes: nothing left to fetch
    assert out.returncode == 0 and "0 retrieved, 6 already here" in out.stdout


def test_doctor(tmp_path: Path, orthanc) -> None:
    node, local = orthanc
    with DicomDatabase.open(tmp_path / "db") as db:
        checks = doctor(db, node, local)
        assert [(c.name, c.ok) for c in checks] == [("network", True), ("echo", True), ("query", True),
                                                    ("move to us", True)], checks
        unknown = doctor(db, node, LocalNode(ae_title="NOBODY", port=local.port, bind="127.0.0.1"))
        assert [(c.name, c.ok) for c in unknown][:3] == [("network", True), ("echo", True), ("query", False)]
        closed = doctor(db, RemoteNode("x", "X", "127.0.0.1", free_port(), timeout=3), local)
        assert [c.ok for c in closed] == [False, None, None, None] and "cannot connect" in closed[0].detail


def test_one_listener_serves_every_c_move_of_a_retrieve(tmp_path: Path, orthanc,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A study of 2 series is 2 C-MOVEs: the listener started for them starts once (it used to start and stop per
    series: 45-70 ms each, plus the storage scan of its start-up catch-up, on a large database seconds)."""
    node, local = orthanc
    starts = []
    real_start = Listener.start
    monkeypatch.setattr(Listener, "start", lambda self: (starts.append(self), real_start(self))[1])
    study_uid = query(node, "study", local=local)[0]["StudyInstanceUID"]
    with DicomDatabase.open(tmp_path / "db") as db:
        report = retrieve(db, node, [study_uid], "move", local)
        assert report.completed == 6 and not report.errors and db.stats()["instances"] == 6
    assert len(starts) == 1
