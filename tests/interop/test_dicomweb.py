"""DICOMweb against Orthanc with its DICOMweb plugin (Debian orthanc + orthanc-dicomweb), started by the tests on
127.0.0.1 with a temp config: STOW-RS, QIDO-RS at three levels, WADO-RS into the database (byte-identical,
resumable), HTTP basic auth, a non-ASCII patient name."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtui.core.net.nodes import RemoteNode
from dicomtui.core.synth import SeriesSpec, series_datasets
from tests.conftest import REQUIRE_PEERS, require_program
from tests.interop.orthanc_ready import wait_orthanc
from tests.interop.test_dimse import free_port

pytestmark = pytest.mark.interop
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@contextlib.contextmanager
def orthanc_dicomweb(folder: Path, users: dict[str, str] | None = None) -> Iterator[RemoteNode]:
    """Orthanc with the DICOMweb plugin on a free HTTP port (``users``: HTTP basic auth required); the node
    (DICOMweb only, no credentials) at its /dicom-web base URL. Stopped on exit."""
    program = require_program("Orthanc", "orthanc")
    if not PLUGIN.exists():
        message = f"the Orthanc DICOMweb plugin ({PLUGIN}) is not installed (apt-get install orthanc-dicomweb)"
        if REQUIRE_PEERS:
            pytest.fail(f"DICOMTUI_REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)
    http_port = free_port()
    config = {
        "Name": "dicomtui-web", "StorageDirectory": str(folder / "orthanc-storage"),
        "IndexDirectory": str(folder / "orthanc-index"), "DicomAet": "ORTHANC", "DicomPort": free_port(),
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": bool(users),
        "RegisteredUsers": users or {}, "Plugins": [str(PLUGIN)], "DefaultEncoding": "Utf8",
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orthanc.json").write_text(json.dumps(config))
    with open(folder / "orthanc.log", "w") as log:
        proc = subprocess.Popen([program, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_orthanc(proc, http_port, folder / "orthanc.log")
            yield RemoteNode("orthanc-web", url=f"http://127.0.0.1:{http_port}/dicom-web", timeout=30)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def study_files(folder: Path, name: str = "Müller^Hans", patient_id: str = "WEB0", series: int = 2,
                slices: int = 3) -> list[dict]:
    """A generated study of ``series`` series × ``slices`` instances as files, rows as the send code takes."""
    rows = []
    study_uid = ""
    for se in range(series):
        spec = SeriesSpec(patient_name=name, patient_id=patient_id, series_number=se + 1, slices=slices, rows=16,
                          cols=16, seed=7 + se, modality="CT" if se == 0 else "MR", study_uid=study_uid)
        for i, ds in enumerate(series_datasets(spec)):
            ds.SpecificCharacterSet = "ISO_IR 192"
            study_uid = ds.StudyInstanceUID
            path = folder / f"s{se}i{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            rows.append({"path": str(path), "SOPInstanceUID": ds.SOPInstanceUID, "StudyInstanceUID": study_uid,
                         "SeriesInstanceUID": ds.SeriesInstanceUID})
    return rows


@pytest.fixture
def web_study(tmp_path: Path):
    """Orthanc with the plugin holding one generated study (2 series × 3 instances, patient Müller^Hans), sent by
    our STOW-RS in batches of 4; (node, rows)."""
    from dicomtui.core.net.web_stow import stow

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        rows = study_files(tmp_path / "study")
        report = stow(node, rows, max_count=4)  # two requests
        assert (report.counts, report.error, report.not_sent) == ({"success": 6, "warning": 0, "failure": 0}, "", 0)
        yield node, rows


def test_stow_then_qido_finds_it_at_three_levels(web_study) -> None:
    from dicomtui.core.net.query import QueryFilters
    from dicomtui.core.net.web import qido

    node, rows = web_study
    study_uid, series_uid = rows[0]["StudyInstanceUID"], rows[0]["SeriesInstanceUID"]
    studies = qido(node, "study")
    assert [(s["StudyInstanceUID"], s["NumberOfStudyRelatedSeries"], s["NumberOfStudyRelatedInstances"])
            for s in studies] == [(study_uid, "2", "6")]
    assert len(qido(node, "series", QueryFilters(study_uid=study_uid))) == 2
    assert len(qido(node, "series", page=1)) == 2  # paged one by one (limit/offset) until exhausted
    assert len(qido(node, "image", QueryFilters(study_uid=study_uid))) == 6
    images = qido(node, "image", QueryFilters(study_uid=study_uid, series_uid=series_uid), page=2)
    assert sorted(i["SOPInstanceUID"] for i in images) == sorted(r["SOPInstanceUID"] for r in rows[:3])
    mr = qido(node, "series", QueryFilters(study_uid=study_uid, modality="mr"))
    assert [s["SeriesNumber"] for s in mr] == ["2"]
    both = qido(node, "series", QueryFilters(study_uid=study_uid, modality="CT,MR"))  # one QIDO per value
    assert sorted(s["SeriesNumber"] for s in both) == ["1", "2"]
    assert len(qido(node, "study", QueryFilters(modality="ct,mr,us"))) == 1  # merged: one row per study
    assert qido(node, "study", QueryFilters(date="19990101-19991231")) == []


def test_a_non_ascii_patient_name_round_trips(web_study) -> None:
    """Orthanc 1.10 + DICOMweb 1.7 does not decode %C3%BC: the probe finds that out, the name is sent with
    wildcards for what needs encoding and matched here."""
    from dicomtui.core.net.query import QueryFilters
    from dicomtui.core.net.web import WebClient, decodes_percent, qido

    node, _rows = web_study
    with WebClient(node) as client:
        assert decodes_percent(client) is False
    assert [s["PatientName"] for s in qido(node, "study", QueryFilters(name="müller"))] == ["Müller^Hans"]
    assert [s["PatientName"] for s in qido(node, "study", QueryFilters(name="Müller^Hans"))] == ["Müller^Hans"]
    assert qido(node, "study", QueryFilters(name="mÿller")) == []  # same wildcard sent, refused here
    assert qido(node, "study", QueryFilters(name="*ller*")) != []


def _dataset_bytes(path: str | Path) -> bytes:
    """A Part-10 file's data set as encoded, after its file meta (which a server may write anew)."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.read()


def test_wado_into_an_empty_database_gives_the_same_datasets(tmp_path: Path, web_study) -> None:
    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.net.web_wado import web_retrieve

    node, rows = web_study
    events: list[tuple[int, int]] = []
    with DicomDatabase.open(tmp_path / "db") as db:
        report = web_retrieve(db, node, [rows[0]["StudyInstanceUID"]], progress=lambda d, t: events.append((d, t)))
        assert (report.completed, report.failed, report.errors, report.already_here) == (6, 0, [], 0)
        assert report.bytes_received > sum(Path(r["path"]).stat().st_size for r in rows) * 0.9
        assert events[-1] == (6, 6) and db.stats()["instances"] == 6
        for row in rows:
            stored = db.root / db.find("instance", row["SOPInstanceUID"])["path"]
            assert _dataset_bytes(stored) == _dataset_bytes(row["path"]), row["SOPInstanceUID"]


def test_an_interrupted_retrieve_fetches_only_the_missing_instances(tmp_path: Path, web_study) -> None:
    import threading

    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.net.web_wado import web_retrieve

    node, rows = web_study
    study_uid = rows[0]["StudyInstanceUID"]
    cancel = threading.Event()
    with DicomDatabase.open(tmp_path / "db") as db:
        first = web_retrieve(db, node, [study_uid], progress=lambda d, t: cancel.set() if d >= 2 else None,
                             cancel=cancel)
        assert first.cancelled and first.completed == 2
        assert db.stats()["instances"] == 2  # stored and indexed as they arrived, kept on cancel
        again = web_retrieve(db, node, [study_uid])
        assert (again.requested, again.already_here, again.completed, again.errors) == (6, 2, 4, [])
        assert db.stats()["instances"] == 6
        assert list(tmp_path.joinpath("db", "incoming").glob("*.part")) == []
        series_uid = rows[3]["SeriesInstanceUID"]
        nothing = web_retrieve(db, node, [series_uid])  # a series UID works too; nothing is missing
        assert (nothing.requested, nothing.already_here, nothing.completed) == (3, 3, 0)


def test_http_basic_auth(tmp_path: Path) -> None:
    from dataclasses import replace

    from dicomtui.core.errors import NetworkError
    from dicomtui.core.net.web import qido, web_echo
    from dicomtui.core.net.web_stow import stow

    secret = tmp_path / "password"
    secret.write_text("Pa55-wörd\n")
    with orthanc_dicomweb(tmp_path / "orthanc", users={"alice": "Pa55-wörd"}) as anonymous:
        with pytest.raises(NetworkError, match=r"answered HTTP 401.*check the node's credentials"):
            qido(anonymous, "study")
        assert not web_echo(anonymous).ok
        wrong = tmp_path / "wrong"
        wrong.write_text("nope")
        with pytest.raises(NetworkError, match="HTTP 401"):
            qido(replace(anonymous, user="alice", password_file=str(wrong)), "study")
        node = replace(anonymous, user="alice", password_file=str(secret))
        assert web_echo(node).ok
        rows = study_files(tmp_path / "study", series=1, slices=2)
        assert stow(node, rows).counts["success"] == 2
        assert len(qido(node, "image")) == 2
        refused = stow(anonymous, rows)
        assert "HTTP 401" in refused.error and refused.not_sent == 2


def test_a_wrong_base_url_names_the_url_tried(tmp_path: Path) -> None:
    from dataclasses import replace

    from dicomtui.core.errors import NetworkError
    from dicomtui.core.net.web import qido

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        wrong = replace(node, url=node.url.replace("/dicom-web", "/dicomweb"))
        with pytest.raises(NetworkError, match=r"/dicomweb/studies\?.* answered HTTP 404.*check the node's base URL"):
            qido(wrong, "study")


def test_a_refused_instance_fails_alone_and_the_rest_of_its_batch_is_stored(tmp_path: Path) -> None:
    """Orthanc answers HTTP 400 to a whole STOW-RS request for one unreadable part: the batch is split until
    the bad instance is alone; it fails with the server's answer, the others are stored."""
    from dicomtui.core.net.web import qido
    from dicomtui.core.net.web_stow import stow

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        rows = study_files(tmp_path / "study", series=1, slices=5)
        bad = tmp_path / "bad.dcm"
        bad.write_bytes(b"\0" * 128 + b"DICM" + b"not a data set" * 10)
        rows.insert(2, {"path": str(bad), "SOPInstanceUID": "1.2.826.0.1.3680043.10.1147.999"})
        report = stow(node, rows)
        assert report.counts == {"success": 5, "warning": 0, "failure": 1} and report.error == ""
        failed = [item for item in report.items if item.category == "failure"]
        assert [f.sop_instance_uid for f in failed] == ["1.2.826.0.1.3680043.10.1147.999"]
        assert "HTTP 400" in failed[0].meaning
        assert len(qido(node, "image")) == 5


def test_https_to_a_plain_http_server_is_a_tls_failure_in_words(tmp_path: Path) -> None:
    """A URL written https:// for a server that speaks plain HTTP (Debian's Orthanc 1.10.1 resets every TLS
    connection when SslEnabled, so a real HTTPS peer is not available here: see the h18 note)."""
    from dataclasses import replace

    from dicomtui.core.errors import NetworkError
    from dicomtui.core.net.web import qido
    from dicomtui.core.net.web_doctor import web_doctor

    with orthanc_dicomweb(tmp_path / "orthanc") as node:
        https = replace(node, url=node.url.replace("http://", "https://"))
        with pytest.raises(NetworkError, match=r"the TLS handshake with https://127\.0\.0\.1:\d+/dicom-web/studies"
                                               r"\?.* failed .*check the node's CA file"):
            qido(https, "study")
        checks = list(web_doctor(https))
        assert [c.ok for c in checks] == [True, False, None, None, None], [c.line() for c in checks]
        assert "TLS handshake" in checks[1].detail
        assert [c.ok for c in web_doctor(node)] == [True, None, True, None, True]  # plain http; nothing to fetch
