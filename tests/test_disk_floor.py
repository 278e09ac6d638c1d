"""The free-space floor (``min_free_bytes`` in [local] of nodes.toml, issue 20) on the ways files are written into
storage besides the listener: ``import --copy`` and the copies of :func:`storage.copy_batch` stop before the disk
goes under it, with a sentence naming the floor and what was kept. A floor above the disk's free space (or just
under it, with large files) triggers it on the real disk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core import storage
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.net.listener import below_floor
from dicomtui.core.net.nodes import LocalNode, Nodes, copy_floor, save_nodes
from dicomtui.core.paths import nodes_file
from dicomtui.core.synth import SeriesSpec, write_series

HUGE = 1 << 62  # more than any disk holds: always above the free space
MiB = 1 << 20


def stored_files(root: Path) -> list[Path]:
    return [p for p in (root / "dicom").rglob("*") if p.is_file()] if (root / "dicom").exists() else []


def test_import_copy_below_the_floor_copies_nothing_and_says_so(tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=4))
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [tmp_path / "in"], ImportMode.COPY, min_free=HUGE)
        assert db.stats()["instances"] == 0
    assert report.disk_full and report.min_free == HUGE and len(report.rejected) == 4
    assert report.rejected[0].reason.startswith("not copied: below the free-space floor: ")
    assert f"MiB free in {tmp_path / 'db'}, below the floor of {HUGE / MiB:,.0f} MiB" in report.rejected[0].reason
    assert (f"stopped before the disk went under the free-space floor of {HUGE / MiB:,.0f} MiB (min_free_bytes in "
            f"[local] of nodes.toml) — what was copied is indexed") in report.summary()
    assert report.to_dict()["min_free"] == HUGE
    assert stored_files(tmp_path / "db") == [] and not list((tmp_path / "db" / "incoming").glob("*.tmp*"))
    with DicomDatabase.open(tmp_path / "db") as db:  # with room, all of it; links never stop at the floor
        assert import_paths(db, [tmp_path / "in"], ImportMode.COPY).instances_added == 4
    with DicomDatabase.open(tmp_path / "linked") as db:
        assert import_paths(db, [tmp_path / "in"], ImportMode.LINK, min_free=HUGE).instances_added == 4


def test_the_import_command_keeps_the_listener_s_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=2))
    save_nodes(Nodes(LocalNode(min_free_bytes=HUGE)), nodes_file())
    assert copy_floor("copy") == HUGE and copy_floor("link") == 0
    assert main(["--db", str(tmp_path / "db"), "import", "--copy", str(tmp_path / "in")]) == 1
    out = capsys.readouterr()
    assert "below the free-space floor" in out.out + out.err and "min_free_bytes in [local] of nodes.toml" in out.out
    assert stored_files(tmp_path / "db") == []
    assert main(["--db", str(tmp_path / "db2"), "import", "--link", str(tmp_path / "in")]) == 0


def test_an_unreadable_nodes_file_keeps_the_default_floor(tmp_path: Path) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text("[local\n")
    assert copy_floor("copy", path) == LocalNode().min_free_bytes == 1 << 30


def test_copies_stop_at_the_one_that_would_go_under_the_floor(tmp_path: Path) -> None:
    """Three 32 MiB files and a floor 80 MiB under the free space: two fit, the third would leave 16 MiB less than
    the floor (other writers on this shared disk may move it by a few MiB: the margins are 16 MiB)."""
    root = tmp_path / "db"
    (root / "incoming").mkdir(parents=True)
    sources = []
    for n in range(3):
        path = tmp_path / f"big{n}"
        with open(path, "wb") as f:
            f.truncate(32 * MiB)  # sparse: read as zeros, written in full by the copy
        sources.append(str(path))
    floor = shutil.disk_usage(root).free - 80 * MiB
    errors = storage.copy_batch(root, [(s, f"dicom/x/{n}.dcm") for n, s in enumerate(sources)], min_free=floor)
    assert errors[:2] == [None, None]
    assert errors[2] is not None and storage.is_disk_full(errors[2])
    assert errors[2].strerror.startswith("below the free-space floor: ")
    assert "32.0 MiB to write would go below the floor" in errors[2].strerror
    assert sorted(p.name for p in stored_files(root)) == ["0.dcm", "1.dcm"]


def test_the_listener_keeps_its_sentence() -> None:
    """The listener's below_floor is storage's now (re-exported): the same sentence for 0xA700."""
    assert below_floor is storage.below_floor
    problem = below_floor(Path("/"), HUGE)
    assert problem.startswith("out of disk space: ") and problem.endswith(
        f"below the floor of {HUGE / MiB:,.0f} MiB (min_free_bytes in [local] of nodes.toml); refusing new instances")
    assert below_floor(Path("/"), 0) == "" and below_floor(Path("/"), 1) == ""


def test_import_copy_stops_at_the_floor_of_a_small_disk(tmp_path: Path) -> None:
    """400 files of 36 KB (14 MB) into a 24 MiB tmpfs with a 16 MiB floor: the copies stop when the next would go
    under it (about 200 in), every copy made is indexed, and the disk keeps the floor but for the index's own
    growth (which is what the room is for)."""
    from tests.test_robust_import import _mount_tmpfs

    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "24m")
    try:
        write_series(tmp_path / "src", SeriesSpec(slices=400, rows=128, cols=128, seed=5))
        floor = 16 * MiB
        with DicomDatabase.open(disk / "db") as db:
            report = import_paths(db, [tmp_path / "src"], ImportMode.COPY, min_free=floor)
            indexed = db.stats()["instances"]
            check = db.check()
        free = shutil.disk_usage(disk).free
        assert report.min_free == floor and report.disk_full and 50 < indexed < 400, (indexed, report.summary())
        assert len(stored_files(disk / "db")) == indexed and check.ok and not check.stale_temp
        assert indexed + len(report.rejected) == 400
        assert floor - 2 * MiB < free < floor + 2 * 40_000, free  # under the floor by the index at most
    finally:
        subprocess.run(["umount", str(disk)], check=False)
