"""The CLI picks DICOMweb for a DICOMweb node: nodes add --url, send (STOW-RS), query (QIDO-RS), retrieve
(WADO-RS), echo and doctor, against Orthanc with its DICOMweb plugin started by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.interop.test_dicomweb import orthanc_dicomweb, study_files
from tests.test_cli import run

pytestmark = pytest.mark.interop


def test_send_query_retrieve_echo_doctor_over_dicomweb(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    rows = study_files(tmp_path / "study")
    study_uid = rows[0]["StudyInstanceUID"]
    here, there = str(tmp_path / "here"), str(tmp_path / "there")
    assert run("--db", here, "import", str(tmp_path / "study"), "--copy").returncode == 0
    with orthanc_dicomweb(tmp_path / "orthanc", users={"alice": "s3cret"}) as node:
        added = run("nodes", "add", "web", "--url", node.url, "--user", "alice", "--password-file", str(secret))
        assert added.returncode == 0, added.stderr
        sent = run("--db", here, "send", study_uid, "--to", "web", "--json")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["counts"] == {"success": 6, "warning": 0, "failure": 0}
        found = run("query", "web", "--level", "series", "--study", study_uid, "--json")
        assert found.returncode == 0, found.stderr
        assert sorted(s["Modality"] for s in json.loads(found.stdout)) == ["CT", "MR"]
        named = run("query", "web", "--name", "müller")
        assert "Müller^Hans" in named.stdout and "1 study matches" in named.stderr
        got = run("--db", there, "retrieve", "web", study_uid)
        assert got.returncode == 0, got.stderr
        assert "6 retrieved, 0 already here" in got.stdout
        again = run("--db", there, "retrieve", "web", study_uid)
        assert "0 retrieved, 6 already here" in again.stdout
        echo = run("echo", "web")
        assert echo.returncode == 0 and "answers QIDO-RS" in echo.stdout
        doctor = run("--db", there, "doctor", "web")
        assert doctor.returncode == 0, doctor.stdout
        for step in ("network", "qido", "wado", "stow"):
            assert f"ok   {step}" in doctor.stdout, doctor.stdout
        assert run("query", "web", "--via", "dimse").returncode == 2  # a DICOMweb-only node
        assert run("nodes", "add", "nopw", "--url", node.url).returncode == 0
        refused = run("query", "nopw")
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr and "credentials" in refused.stderr
        doctor = run("doctor", "nopw")
        assert doctor.returncode == 2 and "FAIL qido" in doctor.stdout and "not tried" in doctor.stdout
