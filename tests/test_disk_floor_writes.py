"""The free-space floor (``min_free_bytes`` in [local] of nodes.toml, issue 20) on the other ways files are written
into storage: ``deidentify --into-db``, ``volume-to-dicom``, ``labels-to-seg``, ``edit`` and the forwarder's
de-identified copies stop before the disk goes under it, with a sentence naming the floor and what was kept. The
floor is set above the disk's real free space."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomtui.cli import main
from dicomtui.core.database import DicomDatabase
from dicomtui.core.net.forward_queue import ForwardQueue
from dicomtui.core.net.forwarder import Forwarder
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode, save_nodes
from dicomtui.core.paths import nodes_file
from dicomtui.core.synth import SeriesSpec, write_series
from tests.interop.test_dimse import free_port
from tests.test_disk_floor import HUGE, stored_files

FLOOR_WORDS = "below the floor of"


def _imported(tmp_path: Path) -> tuple[Path, str, list[Path]]:
    """A database with one CT series (6 slices, copied) imported with no floor; then the floor set above the
    disk's free space. Returns the database folder, the series UID and the stored files."""
    paths = write_series(tmp_path / "in", SeriesSpec(slices=6, rows=16, cols=16))
    root = tmp_path / "db"
    save_nodes(Nodes(LocalNode(min_free_bytes=0)), nodes_file())
    assert main(["--db", str(root), "import", "--copy", str(tmp_path / "in")]) == 0
    save_nodes(Nodes(LocalNode(min_free_bytes=HUGE)), nodes_file())
    return root, str(pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID), stored_files(root)


def _series_count(root: Path) -> int:
    with DicomDatabase.open(root) as db:
        return len(db.series())


def test_deidentify_into_db_stops_at_the_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, series, before = _imported(tmp_path)
    assert main(["--db", str(root), "deidentify", series, "--into-db"]) == 1
    out = capsys.readouterr()
    assert "stopped before the disk went under the free-space floor" in out.out + out.err
    assert sorted(stored_files(root)) == sorted(before)
    with DicomDatabase.open(root) as db:
        assert [p["PatientID"] for p in db.patients()] == ["SYN0001"]


def test_volume_to_dicom_and_labels_to_seg_store_nothing_below_the_floor(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import nibabel as nib

    root, series, before = _imported(tmp_path)
    assert main(["--db", str(root), "load", series, "-o", str(tmp_path / "ct.nii.gz")]) == 0
    capsys.readouterr()
    assert main(["--db", str(root), "volume-to-dicom", str(tmp_path / "ct.nii.gz"), "--like", series,
                 "-o", str(tmp_path / "out")]) == 1
    out = capsys.readouterr()
    assert "nothing stored in the database: " in out.out + out.err and FLOOR_WORDS in out.out + out.err
    assert len(list((tmp_path / "out").iterdir())) == 6  # the folder asked for is written: only storage is kept
    ct = nib.load(tmp_path / "ct.nii.gz")
    labels = np.zeros(ct.shape, np.uint8)
    labels[4:10, 4:10, 1:4] = 1
    nib.save(nib.Nifti1Image(labels, ct.affine), tmp_path / "labels.nii.gz")
    assert main(["--db", str(root), "labels-to-seg", str(tmp_path / "labels.nii.gz"), "--like", series]) == 1
    out = capsys.readouterr()
    assert "nothing stored in the database: " in out.out + out.err and FLOOR_WORDS in out.out + out.err
    assert sorted(stored_files(root)) == sorted(before) and _series_count(root) == 1


def test_edit_stops_at_the_floor_and_keeps_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, series, before = _imported(tmp_path)
    contents = {p: p.read_bytes() for p in before}
    assert main(["--db", str(root), "edit", series, "--set", "SeriesDescription=Edited"]) == 1
    out = capsys.readouterr()
    assert "edit stopped: " in out.out + out.err and FLOOR_WORDS in out.out + out.err
    assert "the 0 files edited before are kept and indexed" in out.out + out.err
    assert {p: p.read_bytes() for p in stored_files(root)} == contents
    with DicomDatabase.open(root) as db:
        assert [s["SeriesDescription"] for s in db.series()] == ["Axial"]


def test_a_de_identifying_forward_waits_for_room(tmp_path: Path) -> None:
    root, _series, before = _imported(tmp_path)
    ds = pydicom.dcmread(before[0], stop_before_pixels=True)
    row = {"SOPInstanceUID": str(ds.SOPInstanceUID), "SOPClassUID": str(ds.SOPClassUID),
           "StudyInstanceUID": str(ds.StudyInstanceUID), "path": str(before[0])}
    with ForwardQueue(root) as queue:
        queue.enqueue([(row, "pacs", None, 0.0, True)])
    node = RemoteNode(name="pacs", ae_title="PACS", host="127.0.0.1", port=free_port())
    forwarder = Forwarder(root, LocalNode(min_free_bytes=HUGE), nodes=lambda: Nodes(LocalNode(), {"pacs": node}))
    forwarder.start()
    try:
        with ForwardQueue(root) as queue:
            deadline = time.monotonic() + 20
            while not queue.listing()[0].last_error and time.monotonic() < deadline:
                time.sleep(0.05)
            [pending] = queue.listing()
    finally:
        forwarder.stop()
    assert pending.state == "pending" and pending.tries == 1  # tried again later, when there may be room
    assert "below the free-space floor" in pending.last_error and FLOOR_WORDS in pending.last_error
    assert not list((root / "incoming").glob("*forward-deid*"))
