"""DICOMweb over HTTPS (issue 18) against Orthanc with ``SslEnabled`` and its DICOMweb plugin, started on
127.0.0.1 by the test with a certificate signed by a CA the test makes with ``openssl``: STOW-RS, QIDO-RS, WADO-RS
and a rendered thumbnail with the node's CA file (``--tls-ca``); without it, the TLS failure in words.

Debian 12's Orthanc 1.10.1 crashes (SIGSEGV) on every TLS connection: its CivetWeb (libcivetweb1 1.15) loads
OpenSSL at run time by name and calls ``SSL_get_peer_certificate``, which OpenSSL 3 no longer exports (a macro for
``SSL_get1_peer_certificate`` now), through a NULL pointer; curl sees "connection reset by peer". The test gives
it the symbol: a shim ``libssl.so`` (compiled here, linked to the real ``libssl.so.3``) found first through
``LD_LIBRARY_PATH``; CivetWeb's lookup in it finds the rest in its dependency. With the shim, TLS works."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtui.core.errors import NetworkError
from dicomtui.core.net.nodes import RemoteNode
from tests.conftest import require_program
from tests.interop.test_dicomweb import PLUGIN, orthanc_dicomweb, study_files
from tests.interop.test_dimse import free_port

pytestmark = pytest.mark.interop

SHIM = """
typedef struct ssl_st SSL;
typedef struct x509_st X509;
X509 *SSL_get1_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s) { return SSL_get1_peer_certificate(s); }
"""


def make_certificates(folder: Path) -> tuple[Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it: (CA file, PEM holding the server's
    key then its certificate, as Orthanc's SslCertificate wants both in one file)."""
    openssl = require_program("openssl", "openssl")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dicomtui test CA",
        "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=keyCertSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out",
        "server.csr")
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "server.pem", "-extfile", "server.ext")
    both = folder / "orthanc.pem"
    both.write_bytes((folder / "server.key").read_bytes() + (folder / "server.pem").read_bytes())
    return folder / "ca.pem", both


def civetweb_shim(folder: Path) -> Path:
    """The folder of a ``libssl.so`` that adds SSL_get_peer_certificate to OpenSSL 3 (see the module's text)."""
    gcc = require_program("gcc", "gcc")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shim.c").write_text(SHIM)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(folder / "libssl.so"), str(folder / "shim.c"),
                    "-l:libssl.so.3"], check=True, capture_output=True)
    return folder


@contextlib.contextmanager
def orthanc_https(folder: Path) -> Iterator[tuple[RemoteNode, Path]]:
    """Orthanc with the DICOMweb plugin serving HTTPS only; (the node with the CA file, the CA file)."""
    program = require_program("Orthanc", "orthanc")
    with orthanc_dicomweb(folder / "probe"):  # skips (or fails under DICOMTUI_REQUIRE_PEERS) without the plugin
        pass
    ca, pem = make_certificates(folder / "tls")
    port = free_port()
    config = {"Name": "dicomtui-https", "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "index"), "DicomPort": free_port(), "HttpPort": port,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [str(PLUGIN)],
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "SslEnabled": True, "SslCertificate": str(pem)}
    (folder / "orthanc.json").write_text(json.dumps(config))
    env = {**os.environ, "LD_LIBRARY_PATH": str(civetweb_shim(folder / "shim"))}
    with open(folder / "orthanc.log", "w") as log:
        proc = subprocess.Popen([program, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        try:
            context = ssl.create_default_context(cafile=str(ca))
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"https://127.0.0.1:{port}/system", timeout=1, context=context).read()
                    break
                except (OSError, urllib.error.URLError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"Orthanc did not serve HTTPS (exit {proc.poll()}): "
                                           + (folder / "orthanc.log").read_text()[-2000:]) from None
                    time.sleep(0.1)
            yield RemoteNode("orthanc-https", url=f"https://127.0.0.1:{port}/dicom-web", tls_ca=str(ca),
                             timeout=30), ca
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_stow_qido_wado_and_a_thumbnail_over_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's CA file is used even where REQUESTS_CA_BUNDLE names the system's bundle (as on many machines,
    and here): requests would let it override the session's (psf/requests#4726)."""
    from dataclasses import replace

    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())

    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.net.query import QueryFilters
    from dicomtui.core.net.web import qido, web_echo
    from dicomtui.core.net.web_rendered import fetch_thumbnail
    from dicomtui.core.net.web_stow import stow
    from dicomtui.core.net.web_wado import web_retrieve

    with orthanc_https(tmp_path / "orthanc") as (node, _ca):
        rows = study_files(tmp_path / "study")
        assert stow(node, rows).counts["success"] == 6
        study_uid = rows[0]["StudyInstanceUID"]
        assert [s["StudyInstanceUID"] for s in qido(node, "study")] == [study_uid]
        assert len(qido(node, "image", QueryFilters(study_uid=study_uid))) == 6
        with DicomDatabase.open(tmp_path / "db") as db:
            report = web_retrieve(db, node, [study_uid])
            assert (report.completed, report.errors) == (6, [])
        thumb = fetch_thumbnail(node, study_uid)
        assert thumb is not None and thumb.pixels is not None and thumb.url.startswith("https://")
        untrusted = replace(node, tls_ca="")  # the system's CAs do not know ours
        assert not web_echo(untrusted).ok
        with pytest.raises(NetworkError, match=r"QIDO-RS: the TLS handshake with https://127\.0\.0\.1:\d+/dicom-web/"
                                               r"studies\?.* failed \(.*certificate verify failed.*\): check the "
                                               r"node's CA file \(--tls-ca\)"):
            qido(untrusted, "study")
