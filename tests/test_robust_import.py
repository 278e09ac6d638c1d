"""Imports under attack: `rm` racing a copy-import of the same study, a full disk, temp files left by a kill.

Each race is made deterministic with a hook (the delete runs at the worst moment), then tried for real with two
processes a few times."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtui.core import indexer, storage
from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import VANISHED, import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series

STUDY = "1.2.826.0.1.3680043.8.498.13.6"


def _study(folder: Path, slices: int = 20) -> Path:
    write_series(folder, SeriesSpec(study_uid=STUDY, slices=slices))
    return folder


def _rows_have_files(db: DicomDatabase) -> None:
    """Every committed row of a copied file has its file (`db check` finds nothing missing)."""
    report = db.check()
    assert not report.missing, report.missing


def _rm_study(root: Path) -> None:
    """`dicomtui rm STUDY --yes`, from another connection (as another process would)."""
    with DicomDatabase.open(root, create=False) as other:
        found = other.find("study", STUDY)
        if found is not None:
            other.delete([("study", found["id"])])


# ---- item 6: rm racing a copy-import ---------------------------------------------------------------------------

def test_rm_between_copy_and_stat_is_a_rejection_not_a_traceback(tmp_path: Path, db: DicomDatabase,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The copies are renamed into storage, then `rm` of the study deletes them before the importer reads
    their size: each is rejected with the reason (today: FileNotFoundError out of the import)."""
    import_paths(db, [_study(tmp_path / "a")], ImportMode.COPY)
    copy_batch = storage.copy_batch

    def copy_then_rm(root: Path, pairs: list, heads: object = None, min_free: int = 0) -> list:
        errors = copy_batch(root, pairs, heads, min_free)  # type: ignore[arg-type]
        _rm_study(root)
        return errors

    monkeypatch.setattr(storage, "copy_batch", copy_then_rm)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = import_paths(db, [tmp_path / "b"], ImportMode.COPY, workers=0)
    assert report.instances_added == 0 and len(report.rejected) == 20
    assert all(p.reason.startswith(VANISHED) for p in report.rejected), report.rejected[0]
    _rows_have_files(db)


def test_rm_between_copy_and_commit_leaves_no_row_without_its_file(tmp_path: Path, db: DicomDatabase,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`rm` runs after the copies are in storage and stat'ed, just before the batch is written: the rows whose
    file is gone are not written, and are rejected (today: "20 added" and all 20 files gone)."""
    import_paths(db, [_study(tmp_path / "a")], ImportMode.COPY)
    add_prepared = DicomDatabase.add_prepared

    def rm_then_add(self: DicomDatabase, rows: list, *settle: object) -> object:
        _rm_study(self.root)
        return add_prepared(self, rows, *settle)  # type: ignore[arg-type]

    monkeypatch.setattr(DicomDatabase, "add_prepared", rm_then_add)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = import_paths(db, [tmp_path / "b"], ImportMode.COPY, workers=0)
    assert report.instances_added == 0 and len(report.rejected) == 20
    assert {p.reason for p in report.rejected} == {VANISHED}
    assert db.stats()["instances"] == 0
    _rows_have_files(db)


def _cli(db_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dicomtui", "--db", str(db_path), *args]


def test_rm_racing_a_copy_import_for_real(tmp_path: Path) -> None:
    """Two processes, three times: whatever the order, no traceback and every committed row has its file."""
    source = _study(tmp_path / "src", slices=150)
    db_path = tmp_path / "db"
    for attempt in range(3):
        subprocess.run(_cli(db_path, "import", "--copy", str(source)), check=True, capture_output=True)
        copy = tmp_path / f"copy{attempt}"
        shutil.copytree(source, copy)  # the same study from another folder: copied again, not skipped
        imp = subprocess.Popen(_cli(db_path, "import", "--copy", str(copy)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        rm = subprocess.run(_cli(db_path, "rm", STUDY, "--yes"), capture_output=True, text=True)
        out, errors = imp.communicate(timeout=60)
        assert "Traceback" not in errors + rm.stderr, errors + rm.stderr
        assert imp.returncode in (0, 1), errors
        with DicomDatabase.open(db_path, create=False) as db:
            _rows_have_files(db)


# ---- item 8: disk full during import --copy -------------------------------------------------------------------

def _enospc_after(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy function fails with "No space left on device" after ``count`` files."""
    copyfile = shutil.copyfile
    done = [0]

    def copy(source: str, dest: Path) -> None:
        done[0] += 1
        if done[0] > count:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
        copyfile(source, dest)

    monkeypatch.setattr(storage.shutil, "copyfile", copy)


def test_disk_full_rejects_the_rest_and_commits_what_was_copied(tmp_path: Path, db: DicomDatabase,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the 11th copy: 10 files indexed, 20 rejected as "disk full", copying stopped at the first
    failure, nothing left in incoming/ or unreferenced in storage, and the summary says why (today: 20
    "cannot copy" rejections and nothing said about the disk)."""
    _enospc_after(10, monkeypatch)
    report = import_paths(db, [_study(tmp_path / "a", slices=30)], ImportMode.COPY, workers=0)
    assert report.instances_added == 10 and len(report.rejected) == 20
    assert all(p.reason.startswith(f"{indexer.DISK_FULL}: ") for p in report.rejected), report.rejected[0]
    assert report.disk_full and "stopped: the disk is full" in report.summary()
    assert report.to_dict()["disk_full"] is True
    assert list((db.root / storage.INCOMING_DIR).iterdir()) == []
    check = db.check()
    assert check.ok and not check.stale_temp, check


def test_copying_stops_at_the_first_full_disk_error(tmp_path: Path) -> None:
    """copy_batch tries no file after ENOSPC: each later one gets the same error without a write."""
    (tmp_path / storage.INCOMING_DIR).mkdir()
    sources = []
    for i in range(5):
        sources.append(tmp_path / f"{i}.dcm")
        sources[-1].write_bytes(b"x" * 10)
    calls = []

    def copy(source: str, dest: Path) -> None:
        calls.append(source)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(storage.shutil, "copyfile", copy)
        errors = storage.copy_batch(tmp_path, [(str(s), f"dicom/1/2/{i}.dcm") for i, s in enumerate(sources)])
    assert len(calls) == 1 and all(e is not None and storage.is_disk_full(e) for e in errors)


def test_sqlite_full_at_commit_is_retried_with_the_reserved_space(tmp_path: Path, db: DicomDatabase,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The copies took the last bytes and SQLite cannot write the batch: the reserve set aside at the start is
    given back and the batch written (without it the copies would stay in storage, invisible)."""
    add_prepared = DicomDatabase.add_prepared
    failed = []

    def full_once(self: DicomDatabase, rows: list, *settle: object) -> object:
        if not failed:
            failed.append(True)
            self.conn.execute("BEGIN IMMEDIATE")  # what a real SQLITE_FULL looks like to the caller
            self.conn.execute("ROLLBACK")
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = 13  # type: ignore[attr-defined]
            from dicomtui.core.errors import DatabaseError
            raise DatabaseError("the database cannot be written (database or disk is full)") from error
        return add_prepared(self, rows, *settle)  # type: ignore[arg-type]

    monkeypatch.setattr(DicomDatabase, "add_prepared", full_once)
    report = import_paths(db, [_study(tmp_path / "a")], ImportMode.COPY, workers=0)
    assert failed and report.instances_added == 20 and not report.rejected
    assert list((db.root / storage.INCOMING_DIR).iterdir()) == []  # the reserve is gone too


def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root (mount -t tmpfs); the ENOSPC tests above inject the error instead")
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MiB file system (tmpfs) for the database: a real full disk without filling the machine's. No
    free-space floor (1 GiB by default: nothing would be copied; the floor is tested in test_disk_floor.py)."""
    from dicomtui.core.net.nodes import LocalNode, Nodes, save_nodes
    from dicomtui.core.paths import nodes_file

    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "24m")
    save_nodes(Nodes(LocalNode(min_free_bytes=0)), nodes_file())
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_import_copy_onto_a_disk_that_fills_up(tmp_path: Path, small_disk: Path) -> None:
    """800 files of 36 KB (29 MB) into 24 MiB, for real: the import ends normally (exit 1), says the disk is
    full, indexes every file it copied and leaves nothing unreferenced; a second import goes on where it
    stopped (today: "database or disk is full", nothing indexed, ~650 unreferenced copies filling the disk)."""
    write_series(tmp_path / "src", SeriesSpec(slices=800, rows=128, cols=128, seed=5))
    db_path = small_disk / "db"
    first = subprocess.run(_cli(db_path, "import", "--copy", str(tmp_path / "src")), capture_output=True, text=True)
    assert first.returncode == 1 and "Traceback" not in first.stderr, first.stderr[-2000:]
    assert "stopped: the disk is full" in first.stdout, first.stdout[:500]
    with DicomDatabase.open(db_path, create=False) as db:
        indexed = db.stats()["instances"]
        check = db.check()
    assert indexed > 100 and check.ok and not check.stale_temp, (indexed, check.orphans[:3])
    second = subprocess.run(_cli(db_path, "import", "--copy", str(tmp_path / "src")), capture_output=True,
                            text=True)
    assert "Traceback" not in second.stderr and f"{indexed} unchanged" in second.stdout, second.stdout[:500]
    with DicomDatabase.open(db_path, create=False) as db:
        assert db.stats()["instances"] > indexed and db.check().ok


def test_db_check_runs_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    """`db check` and `ls` only read: they must work with no byte free."""
    write_series(tmp_path / "src", SeriesSpec(slices=20))
    db_path = small_disk / "db"
    subprocess.run(_cli(db_path, "import", "--copy", str(tmp_path / "src")), check=True, capture_output=True)
    with open(small_disk / "fill", "wb") as fill:  # fill the disk to the last block
        try:
            while True:
                fill.write(b"\0" * (1 << 16))
                fill.flush()
        except OSError:
            pass
    check = subprocess.run(_cli(db_path, "db", "check"), capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


# ---- item 9: temp files left by a kill --------------------------------------------------------------------------

_MAKE_TEMPS = """
import os, signal, sys, time
from pathlib import Path
from dicomtui.core import storage
root = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    storage.temp_file(root, "received").write_bytes(b"partial")
print("ready", flush=True)
if sys.argv[3] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


def _temps_by_another_process(root: Path, count: int, then: str) -> subprocess.Popen:
    """A process that writes ``count`` temp files into ``root``'s incoming/, then dies by SIGKILL ("kill") or
    keeps running ("live")."""
    proc = subprocess.Popen([sys.executable, "-c", _MAKE_TEMPS, str(root), str(count), then],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    if then == "kill":
        proc.wait(timeout=10)
    return proc


def test_temp_files_of_a_killed_process_go_when_the_database_is_opened_for_writing(tmp_path: Path) -> None:
    """Today they stay until `db check --repair`."""
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    _temps_by_another_process(root, 300, "kill")
    assert len(list((root / storage.INCOMING_DIR).iterdir())) == 300
    DicomDatabase.open(root).close()  # as import, listen and the TUI open it
    assert list((root / storage.INCOMING_DIR).iterdir()) == []


def test_db_check_counts_stale_temp_files_in_its_exit_code(tmp_path: Path) -> None:
    """`db check` lists them and exits 1 (today: listed, exit 0); after `--repair` it exits 0."""
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    _temps_by_another_process(root, 3, "kill")
    check = subprocess.run(_cli(root, "db", "check"), capture_output=True, text=True)
    assert check.returncode == 1 and check.stdout.count("stale temporary file") == 3, check.stdout
    subprocess.run(_cli(root, "db", "check", "--repair"), check=True, capture_output=True)
    assert subprocess.run(_cli(root, "db", "check"), capture_output=True).returncode == 0


def test_a_live_process_keeps_its_temp_files_and_a_reused_pid_keeps_none(tmp_path: Path) -> None:
    """Staleness is decided by the owner's lock: a running writer's temp files survive another process's open
    for writing; a temp file named after a running pid (pid 1: always alive, as a reused pid would be) but
    without its owner's lock is stale (today it is kept forever: the pid check says "alive")."""
    root = tmp_path / "db"
    DicomDatabase.open(root).close()
    live = _temps_by_another_process(root, 5, "live")
    reused = root / storage.INCOMING_DIR / "1-0badc0de-0123456789ab-received.part"
    reused.write_bytes(b"partial")
    try:
        with DicomDatabase.open(root, read_only=True) as db:  # as `db check` opens it: nothing removed
            assert db.check().stale_temp == [str(reused)]
        DicomDatabase.open(root).close()
        assert len(list((root / storage.INCOMING_DIR).iterdir())) == 5 and not reused.exists()
    finally:
        live.kill()
        live.wait()
    DicomDatabase.open(root).close()
    assert list((root / storage.INCOMING_DIR).iterdir()) == []
