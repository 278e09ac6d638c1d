"""Our de-identification side by side with Orthanc's ``/instances/{id}/anonymize`` (Basic Profile of PS3.15
Table E.1-1; Orthanc 1.10 applies the 2021b table) and GDCM's ``gdcmanon -e`` (Basic Profile, the originals
encrypted into EncryptedAttributesSequence) on issue 17's fixture: every attribute a peer removes or replaces,
ours removes or replaces too (or a sequence holding it), at any depth. A difference must be listed in EXPLAINED
with its reason."""

from __future__ import annotations

import io
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicomtui.core.export.deidentify import Deidentifier
from tests.conftest import require_program
from tests.interop.orthanc_ready import wait_orthanc
from tests.interop.test_dimse import free_port
from tests.test_deidentify import _fixture

pytestmark = pytest.mark.interop

EXPLAINED: dict[str, str] = {}  # keyword → why ours keeps what Orthanc changes (none so far)


def _http(port: int, path: str, body: bytes, content_type: str) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()


def _acted(original: Any, other: Any) -> list[str]:
    """The keywords (dotted paths into sequences) of ``original``'s non-empty elements ``other`` removed or
    changed; sequences both keep are compared item by item."""
    found = []
    for elem in original:
        if elem.tag.is_private or not elem.value:
            continue
        name = elem.keyword or str(elem.tag)
        if elem.tag not in other:
            found.append(name)
        elif elem.VR == "SQ":
            theirs = other[elem.tag].value
            if len(theirs) != len(elem.value):
                found.append(name)
            else:
                found += [f"{name}.{sub}" for a, b in zip(elem.value, theirs, strict=True) for sub in _acted(a, b)]
        elif other[elem.tag].value != elem.value:
            found.append(name)
    return found


def _missed(original: Any, theirs: Any, ours: Any) -> list[str]:
    """What the peer acted on and ours did not (neither on it nor on a sequence around it), less EXPLAINED."""
    done = set(_acted(original, ours))
    return sorted(path for path in set(_acted(original, theirs)) - set(EXPLAINED)
                  if not any(path == d or path.startswith(d + ".") or path.startswith(d + "[") for d in done))


def test_we_remove_or_replace_all_that_gdcmanon_does(tmp_path: Path) -> None:
    gdcmanon = require_program("gdcmanon", "libgdcm-tools")
    openssl = require_program("openssl", "openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem"), "-days", "2", "-subj", "/CN=dicomtui-test"],
                   check=True, capture_output=True)
    unexplained = {}
    for path in _fixture(tmp_path / "in"):
        out = tmp_path / f"gdcm-{path.parent.name}-{path.name}"
        subprocess.run([gdcmanon, "-e", "--certificate", str(tmp_path / "cert.pem"), "-i", str(path), "-o",
                        str(out)], check=True, capture_output=True)
        ours = Deidentifier()(pydicom.dcmread(path))
        assert ours is not None
        missed = _missed(pydicom.dcmread(path), pydicom.dcmread(out), ours)
        if missed:
            unexplained[out.name] = missed
    assert unexplained == {}


def test_we_remove_or_replace_all_that_orthanc_does(tmp_path: Path) -> None:
    program = require_program("Orthanc", "orthanc")
    http_port = free_port()
    config = {"Name": "dicomtui-deid", "StorageDirectory": str(tmp_path / "storage"),
              "IndexDirectory": str(tmp_path / "index"), "DicomPort": free_port(), "HttpPort": http_port,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": []}
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    log = open(tmp_path / "orthanc.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen([program, str(tmp_path / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_orthanc(proc, http_port, tmp_path / "orthanc.log")
        unexplained = {}
        for path in _fixture(tmp_path / "in"):
            instance = json.loads(_http(http_port, "/instances", path.read_bytes(), "application/dicom"))["ID"]
            theirs = pydicom.dcmread(io.BytesIO(_http(http_port, f"/instances/{instance}/anonymize", b"{}",
                                                      "application/json")))
            ours = Deidentifier()(pydicom.dcmread(path))
            assert ours is not None
            missed = _missed(pydicom.dcmread(path), theirs, ours)
            if missed:
                unexplained[path.name] = missed
        assert unexplained == {}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
