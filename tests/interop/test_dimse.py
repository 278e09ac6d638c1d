"""Our listener and SCU against DCMTK (storescu, echoscu, storescp), all on 127.0.0.1, all stopped by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.net.echo import echo
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode, RemoteNode
from dicomtui.core.net.send import send
from dicomtui.core.net.wire import EXPLICIT_LE
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series
from tests.conftest import require_program

pytestmark = pytest.mark.interop
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}  # Debian's DCMTK leaves Nagle on otherwise (~45 ms per image)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def listener(tmp_path: Path):
    server = Listener(tmp_path / "db", LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def storescp(tmp_path: Path):
    """DCMTK storescp on a free port, accepting uncompressed transfer syntaxes only (its default)."""
    require_program("storescp", "dcmtk")
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "REF", "-od", str(out), str(port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield RemoteNode("ref", "REF", "127.0.0.1", port), out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _dataset_without_meta(path: Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    return ds


def _wait_indexed(server: Listener, count: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while server.indexed < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_storescu_to_our_listener(tmp_path: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    study = tmp_path / "study"
    write_series(study, SeriesSpec(slices=300, rows=128, cols=128))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_small_odd.dcm", "rtdose.dcm"):
        shutil.copy(get_testdata_file(name, download=False), mixed / name)
    for folder in (study, mixed):  # 300 + 5 files
        out = subprocess.run(["storescu", "-aec", "DICOMTUI", "127.0.0.1", str(listener.port), "+sd", "+r",
                              str(folder)], capture_output=True, text=True, env=DCMTK_ENV, timeout=120)
        assert out.returncode == 0, out.stderr
    _wait_indexed(listener, 305)
    with DicomDatabase.open(listener.db_path) as db:
        assert db.stats()["instances"] == 305 and db.check().ok
        sent_series = pydicom.dcmread(next(study.iterdir())).SeriesInstanceUID
        assert {r["SeriesInstanceUID"] for r in db.series()} >= {sent_series}
        source = mixed / "rtplan.dcm"
        row = db.find("instance", pydicom.dcmread(source).SOPInstanceUID)
        assert _dataset_without_meta(db.abspath(row["path"], True)) == _dataset_without_meta(source)
    ended = [a for a in listener.associations if a.ended]
    assert [a.images for a in ended][-2:] == [300, 5] and all(a.calling_ae == "STORESCU" for a in ended[-2:])
    out = subprocess.run(["echoscu", "-aec", "DICOMTUI", "127.0.0.1", str(listener.port)], capture_output=True,
                         env=DCMTK_ENV, timeout=30)
    assert out.returncode == 0


def test_our_send_to_storescp_and_decompression(tmp_path: Path, storescp) -> None:
    node, received = storescp
    folder = tmp_path / "in"
    write_series(folder, SeriesSpec(slices=5, rows=32, cols=32))
    compressed = get_testdata_file("JPEG2000.dcm", download=False)  # storescp refuses compressed by default
    shutil.copy(compressed, folder / "j2k.dcm")
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [folder])
        rows = [dict(r, path=str(db.abspath(r["path"], bool(r["stored"])))) for r in db.instances()]
    report = send(rows, node)
    assert report.counts == {"success": 6, "warning": 0, "failure": 0}, report.items
    assert [i.decompressed for i in report.items].count(True) == 1
    sent = {pydicom.dcmread(p).SOPInstanceUID: p for p in folder.iterdir()}
    got = {pydicom.dcmread(p).SOPInstanceUID: p for p in received.iterdir()}
    assert set(got) == set(sent)
    for uid, path in sent.items():
        if path.name == "j2k.dcm":
            theirs = pydicom.dcmread(got[uid])
            assert theirs.file_meta.TransferSyntaxUID == EXPLICIT_LE
            assert (theirs.pixel_array == pydicom.dcmread(path).pixel_array).all()
        else:
            assert _dataset_without_meta(got[uid]) == _dataset_without_meta(path)


def test_send_to_our_own_listener_keeps_compression(tmp_path: Path, listener: Listener) -> None:
    compressed = Path(get_testdata_file("JPEG2000.dcm", download=False))
    with DicomDatabase.open(tmp_path / "src") as db:
        import_paths(db, [compressed])
        rows = [dict(r, path=str(db.abspath(r["path"], bool(r["stored"])))) for r in db.instances()]
    report = send(rows, RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port))
    assert report.counts["success"] == 1 and not report.items[0].decompressed
    _wait_indexed(listener, 1)
    with DicomDatabase.open(listener.db_path) as db:
        row = db.instances()[0]
        assert row["TransferSyntaxUID"] == pydicom.dcmread(compressed).file_meta.TransferSyntaxUID


def test_aborted_association_leaves_nothing_partial(tmp_path: Path, listener: Listener) -> None:
    require_program("storescu", "dcmtk")
    folder = tmp_path / "big"
    write_series(folder, SeriesSpec(slices=200, rows=512, cols=512))
    proc = subprocess.Popen(["storescu", "-aec", "DICOMTUI", "127.0.0.1", str(listener.port), "+sd", "+r",
                             str(folder)], env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not any(a.images >= 10 for a in
                                                                            listener.associations):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(a.ended for a in listener.associations):
        time.sleep(0.05)
    received = listener.associations[-1].images
    assert 10 <= received < 200
    _wait_indexed(listener, received)
    with DicomDatabase.open(listener.db_path) as db:
        report = db.check()
        assert report.ok and not report.stale_temp, report
        assert db.stats()["instances"] == received
    result = echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port))
    assert result.ok, result.message  # the listener serves the next association


def test_a_disallowed_calling_ae_is_rejected(tmp_path: Path) -> None:
    require_program("echoscu", "dcmtk")
    with Listener(tmp_path / "db", LocalNode(port=0, bind="127.0.0.1", allow=["FRIEND"])) as server:
        out = subprocess.run(["echoscu", "-aet", "STRANGER", "-aec", "DICOMTUI", "127.0.0.1", str(server.port)],
                             capture_output=True, text=True, env=DCMTK_ENV, timeout=30)
        assert out.returncode != 0 and "Calling AE Title Not Recognized" in out.stderr
        ok = subprocess.run(["echoscu", "-aet", "FRIEND", "-aec", "DICOMTUI", "127.0.0.1", str(server.port)],
                            capture_output=True, env=DCMTK_ENV, timeout=30)
        assert ok.returncode == 0
        ours = echo(RemoteNode("us", "DICOMTUI", "127.0.0.1", server.port), LocalNode(ae_title="STRANGER"))
        assert not ours.ok and "our calling AE title is not recognised by the peer" in ours.message


def test_doctor_words_for_refused_connections() -> None:
    result = echo(RemoteNode("nobody", "X", "127.0.0.1", free_port(), timeout=5))
    assert not result.ok and "connection refused" in result.message and "X@127.0.0.1" in result.message


@pytest.mark.parametrize("hostile", ["../../../../tmp/evil", "1.2.3/../../x"])
def test_hostile_uids_over_the_network_stay_in_storage(tmp_path: Path, listener: Listener, hostile: str) -> None:
    ds = series_datasets(SeriesSpec(slices=1))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.SOPInstanceUID = hostile
        ds.file_meta.MediaStorageSOPInstanceUID = hostile
        ds.StudyInstanceUID = hostile + ".study"
        ds.save_as(tmp_path / "evil.dcm", enforce_file_format=True)
    row = {"SOPInstanceUID": hostile, "SOPClassUID": ds.SOPClassUID, "TransferSyntaxUID": EXPLICIT_LE,
           "path": str(tmp_path / "evil.dcm")}
    report = send([row], RemoteNode("us", "DICOMTUI", "127.0.0.1", listener.port))
    # refused, as an import refuses it: a key UID with characters no UID holds (PS3.5 9.1) is not stored anywhere
    assert report.counts["failure"] == 1 and report.items[0].status == 0xC000, report.items
    assert report.items[0].meaning == "0xC000 Failure: Cannot Understand"
    storage_root = listener.db_path / "dicom"
    assert not storage_root.exists() or not [f for f in storage_root.rglob("*") if f.is_file()]
    assert not Path("/tmp/evil").exists()


def test_listen_command_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    require_program("storescu", "dcmtk")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "listen", "--port",
                             str(port), "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_port(port, 30)
        write_series(tmp_path / "in", SeriesSpec(slices=3))
        out = subprocess.run(["storescu", "-aec", "DICOMTUI", "127.0.0.1", str(port), "+sd", str(tmp_path / "in")],
                             capture_output=True, env=DCMTK_ENV, timeout=60)
        assert out.returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "stopped: 3 instances received and indexed" in stdout
    assert "association from STORESCU" in stderr and "3 images" in stderr
    # issue 14 item 23: the start line once (it used to come twice: our print and the listener's log), saying the
    # address bound, that any caller is accepted, and how files are made durable
    starts = [line for line in (stdout + stderr).splitlines() if "listening as" in line]
    assert len(starts) == 1, stdout + stderr
    assert f"on 127.0.0.1:{port} (this address only)" in starts[0]
    assert "accepting ANY calling AE title (restrict with --allow)" in starts[0] and "(--sync file)" in starts[0]


def test_listen_start_line_names_the_allowed_callers_and_all_interfaces(tmp_path: Path) -> None:
    local = LocalNode(ae_title="US", port=11112, bind="0.0.0.0", allow=["FRIEND", "MODALITY1"], sync="none")
    line = Listener(tmp_path / "db", local).start_line()  # not started: nothing binds all interfaces in a test
    assert line.startswith("listening as US on 0.0.0.0:11112 (all interfaces)")
    assert "accepting only the calling AE titles FRIEND, MODALITY1" in line
    assert "NOT flushed" in line and "--sync none" in line


def test_cli_nodes_echo_and_send(tmp_path: Path, listener: Listener) -> None:
    import json

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "src"), *args],
                              capture_output=True, text=True, timeout=120)

    assert cli("nodes", "add", "self", f"DICOMTUI@127.0.0.1:{listener.port}", "--retrieve", "get").returncode == 0
    listing = json.loads(cli("nodes", "ls", "--json").stdout)
    assert [(n["name"], n["port"], n["retrieve"]) for n in listing["nodes"]] == [("self", listener.port, "get")]
    out = cli("echo", "self")
    assert out.returncode == 0 and "answers C-ECHO" in out.stdout
    out = cli("echo", "nowhere")
    assert out.returncode == 2 and "unknown node 'nowhere'" in out.stderr
    write_series(tmp_path / "in", SeriesSpec(slices=4))
    assert cli("import", str(tmp_path / "in")).returncode == 0
    patient = json.loads(cli("ls", "patients", "--json").stdout)[0]["PatientID"]
    out = cli("send", patient, "--to", "self", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"] == {"success": 4, "warning": 0, "failure": 0}
    _wait_indexed(listener, 4)
    assert cli("nodes", "rm", "self").returncode == 0
    assert json.loads(cli("nodes", "ls", "--json").stdout)["nodes"] == []


def _certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    require_program("openssl", "openssl")
    folder.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=dicomtui test CA")
    for name in ("server", "client"):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={'127.0.0.1' if name == 'server' else 'DICOMTUI'}")
        (folder / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n" if name == "server" else
                                            "extendedKeyUsage=clientAuth\n")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return {n: folder / n for n in ("ca.crt", "server.key", "server.crt", "client.key", "client.crt")}


def test_echo_and_send_over_tls_to_storescp(tmp_path: Path) -> None:
    require_program("storescp", "dcmtk")
    certs = _certificates(tmp_path / "certs")
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "REF", "-od", str(out), "+tls", str(certs["server.key"]),
                             str(certs["server.crt"]), "+cf", str(certs["ca.crt"]), str(port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        node = RemoteNode("secure", "REF", "127.0.0.1", port, tls=True, tls_ca=str(certs["ca.crt"]),
                          tls_cert=str(certs["client.crt"]), tls_key=str(certs["client.key"]), timeout=10)
        result = echo(node)
        assert result.ok, result.message
        files = write_series(tmp_path / "in", SeriesSpec(slices=2))
        rows = [{"SOPInstanceUID": pydicom.dcmread(p).SOPInstanceUID, "SOPClassUID": pydicom.dcmread(p).SOPClassUID,
                 "TransferSyntaxUID": EXPLICIT_LE, "path": str(p)} for p in files]
        assert send(rows, node).counts["success"] == 2
        assert len(list(out.iterdir())) == 2
        untrusted = RemoteNode("secure", "REF", "127.0.0.1", port, tls=True, timeout=5)  # system CAs only
        failed = echo(untrusted)
        assert not failed.ok and "TLS handshake failed" in failed.message, failed.message
        plain = echo(RemoteNode("plain", "REF", "127.0.0.1", port, timeout=5))
        assert not plain.ok
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_storescu_over_tls_to_our_listener(tmp_path: Path) -> None:
    require_program("storescu", "dcmtk")
    certs = _certificates(tmp_path / "certs")
    local = LocalNode(port=0, bind="127.0.0.1", tls_cert=str(certs["server.crt"]), tls_key=str(certs["server.key"]),
                      tls_ca=str(certs["ca.crt"]))
    write_series(tmp_path / "in", SeriesSpec(slices=3))
    with Listener(tmp_path / "db", local) as server:
        out = subprocess.run(["storescu", "-aec", "DICOMTUI", "+tls", str(certs["client.key"]),
                              str(certs["client.crt"]), "+cf", str(certs["ca.crt"]), "127.0.0.1", str(server.port),
                              "+sd", str(tmp_path / "in")], capture_output=True, text=True, env=DCMTK_ENV, timeout=60)
        assert out.returncode == 0, out.stderr
        plain = subprocess.run(["echoscu", "-aec", "DICOMTUI", "127.0.0.1", str(server.port)], capture_output=True,
                               env=DCMTK_ENV, timeout=30)
        assert plain.returncode != 0  # TLS only
        _wait_indexed(server, 3)
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.stats()["instances"] == 3
