"""A damaged, lost or read-only index, and one on a network file system (issue 13, items 10, 11, 12, 15).

Given a database folder whose SQLite file was overwritten, removed, emptied, mounted read-only or lies on NFS:
every command says what is wrong in one sentence, and `db check --repair` rebuilds the index from storage.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.database import DB_FILE, DatabaseError, DicomDatabase
from dicomtui.core.synth import SeriesSpec, write_series

PAGE = 4096


def _database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, int]]:
    """A database with 15 copied files (two series) and 4 linked ones (another patient); its totals."""
    write_series(tmp_path / "copied" / "a", SeriesSpec(series_number=1, slices=10))
    write_series(tmp_path / "copied" / "b", SeriesSpec(series_number=2, slices=5, series_description="Coronal"))
    write_series(tmp_path / "linked", SeriesSpec(patient_name="Link^Lena", patient_id="L1", seed=3, slices=4,
                                                 modality="MR", study_description="MR linked"))
    db = tmp_path / "db"
    assert main(["--db", str(db), "import", "--copy", str(tmp_path / "copied")]) == 0
    assert main(["--db", str(db), "import", "--link", str(tmp_path / "linked")]) == 0
    capsys.readouterr()
    with DicomDatabase.open(db) as database:
        totals = database.totals()
    assert totals == {"patients": 2, "studies": 2, "series": 3, "instances": 19}
    return db, totals


def _overwrite_page(db_file: Path, page: int) -> None:
    """Random-looking bytes over page ``page`` (1-based) of ``db_file``, as a failing disk or a stray write."""
    assert not Path(f"{db_file}-wal").exists() or Path(f"{db_file}-wal").stat().st_size == 0  # all in the file
    with open(db_file, "r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(bytes((i * 131 + 17) % 256 for i in range(PAGE)))


def _root_page(db_file: Path, table: str) -> int:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    finally:
        conn.close()


# ---- 10: damage is noticed, every command says so, --repair rebuilds from storage ---------------------------

def test_db_check_notices_random_bytes_over_page_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = _database(tmp_path, capsys)
    _overwrite_page(db / DB_FILE, 3)
    assert main(["--db", str(db), "db", "check"]) == 1
    out = capsys.readouterr().out
    assert "OK" not in out
    assert f"the index {db / DB_FILE} is damaged: run `dicomtui db check --repair` to rebuild it from storage" in out
    assert main(["--db", str(db), "db", "check", "--full"]) == 1
    assert "damaged index:" in capsys.readouterr().out


def test_every_command_meeting_the_damage_says_it_in_one_sentence(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = _database(tmp_path, capsys)
    _overwrite_page(db / DB_FILE, _root_page(db / DB_FILE, "instances"))
    for command in (["db", "info"], ["ls", "instances"], ["import", str(tmp_path / "linked")]):
        assert main(["--db", str(db), *command]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"dicomtui: the index {db / DB_FILE} is damaged ("), (command, err)
        assert err.endswith("): run `dicomtui db check --repair` to rebuild it from storage\n"), (command, err)
        assert err.count("\n") == 1 and "Traceback" not in err


def test_repair_rebuilds_the_index_from_storage_and_keeps_the_damaged_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, totals = _database(tmp_path, capsys)
    _overwrite_page(db / DB_FILE, _root_page(db / DB_FILE, "patients"))  # the instance rows stay readable
    assert main(["--db", str(db), "db", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert ("Rebuilt the index from storage: 15 stored files indexed, 4 linked files re-read from their recorded "
            "paths, 0 not recovered (19 rows could be read from the old index; the old index was kept as "
            f"{db / DB_FILE}.damaged-") in out
    kept = sorted(p.name for p in db.glob(f"{DB_FILE}.damaged-*") if not p.name.endswith(("-wal", "-shm")))
    assert len(kept) == 1 and len(kept[0]) == len(f"{DB_FILE}.damaged-20260101T000000")
    with DicomDatabase.open(db) as database:
        assert database.totals() == totals
        linked = database.instances(columns="source_path, stored")
    assert sum(1 for r in linked if not r["stored"]) == 4
    assert all(r["source_path"].startswith(str(tmp_path / "copied")) for r in linked if r["stored"])  # kept
    assert main(["--db", str(db), "db", "check"]) == 0
    assert "OK: every row has its file" in capsys.readouterr().out


def test_repair_of_page_3_recovers_every_copied_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: whatever page 3 held, copied files are the source of truth."""
    db, totals = _database(tmp_path, capsys)
    _overwrite_page(db / DB_FILE, 3)
    assert main(["--db", str(db), "db", "check", "--repair"]) == 0
    assert "Rebuilt the index from storage: 15 stored files indexed" in capsys.readouterr().out
    with DicomDatabase.open(db) as database:
        assert database.totals()["instances"] >= 15


# ---- 11: a missing or empty index over a full storage folder -------------------------------------------------

@pytest.mark.parametrize("state", ["missing", "empty (0 bytes)"])
def test_a_lost_index_over_stored_files_is_refused_then_rebuilt(tmp_path: Path, state: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = _database(tmp_path, capsys)
    for name in (DB_FILE + "-wal", DB_FILE + "-shm"):
        (db / name).unlink(missing_ok=True)
    if state == "missing":
        (db / DB_FILE).unlink()
    else:
        (db / DB_FILE).write_bytes(b"")
    before = sorted(p.name for p in db.iterdir())
    write_series(tmp_path / "more", SeriesSpec(patient_id="M1", seed=9, slices=2))
    for command in (["import", str(tmp_path / "more")], ["ls", "studies"]):
        assert main(["--db", str(db), *command]) == 2
        assert capsys.readouterr().err == (
            f"dicomtui: the index {db / DB_FILE} is {state} but {db / 'dicom'} holds stored files: nothing was "
            "changed; run `dicomtui db check --repair` to rebuild it from storage\n")
    assert sorted(p.name for p in db.iterdir()) == before  # no fresh empty index hides the files
    assert main(["--db", str(db), "db", "check", "--repair"]) == 0
    assert "Rebuilt the index from storage: 15 stored files indexed" in capsys.readouterr().out
    with DicomDatabase.open(db) as database:
        assert database.totals()["instances"] == 15  # the linked files' paths were only in the lost index


def test_an_empty_storage_folder_still_makes_a_new_database(tmp_path: Path) -> None:
    (tmp_path / "db" / "dicom" / "1.2.3").mkdir(parents=True)  # folders left by a delete, no file
    with DicomDatabase.open(tmp_path / "db") as database:
        assert database.totals()["instances"] == 0


# ---- 12: a read-only database folder -------------------------------------------------------------------------

@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[callable]:
    """``view(folder)``: the folder as a read-only path. Tests run as root, who ignores permission bits, so a
    read-only bind mount is used (EROFS holds for root too); else ``chattr +i`` on the folder and its files; else
    the test is skipped saying why."""
    undo: list[list[str]] = []

    def view(folder: Path) -> Path:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
            undo.append(["chmod", "-R", "u+w", str(folder)])
            return folder
        target = tmp_path / "read-only"
        target.mkdir()
        if shutil.which("mount") and subprocess.run(["mount", "--bind", str(folder), str(target)],
                                                    capture_output=True).returncode == 0:
            undo.append(["umount", str(target)])
            if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True).returncode == 0:
                return target
        if shutil.which("chattr"):
            paths = [str(folder), *map(str, folder.glob(DB_FILE + "*"))]
            if subprocess.run(["chattr", "+i", *paths], capture_output=True).returncode == 0:
                undo.append(["chattr", "-i", *paths])
                return folder
        pytest.skip("running as root and neither a read-only bind mount nor chattr +i works here")

    yield view
    for command in reversed(undo):
        subprocess.run(command, capture_output=True)


def test_a_read_only_folder_is_read_and_refuses_writes_with_a_sentence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], read_only_view) -> None:
    db, _ = _database(tmp_path, capsys)
    view = read_only_view(db)
    assert not os.access(view, os.W_OK)
    assert main(["--db", str(view), "ls", "studies"]) == 0
    out = capsys.readouterr().out
    assert "Synthetic study" in out and "MR linked" in out
    assert main(["--db", str(view), "db", "info"]) == 0
    assert "instances       19" in capsys.readouterr().out
    assert main(["--db", str(view), "db", "check"]) == 0
    assert main(["--db", str(view), "show", "SYN0001"]) == 0
    assert "PatientName" in capsys.readouterr().out
    for command in (["import", str(tmp_path / "linked")], ["rm", "L1", "--yes"], ["db", "check", "--repair"]):
        assert main(["--db", str(view), *command]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"dicomtui: the database folder {view} is read-only ("), err
        assert "another process holds it" not in err


def test_read_only_open_never_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = _database(tmp_path, capsys)
    with DicomDatabase.open(db, read_only=True) as database:
        assert database.totals()["instances"] == 19
        with pytest.raises(DatabaseError, match="read-only"):
            database.delete([("patient", 1)])
    with pytest.raises(DatabaseError, match="no dicomtui database"):
        DicomDatabase.open(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


# ---- 15: a database on a network file system -----------------------------------------------------------------

MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
server:/export/home /home nfs4 rw,vers=4.2 0 0
/dev/vdb1 /home/local\\040disk ext4 rw 0 0
//nas/share /mnt/share cifs rw,vers=3.0 0 0
user@host:/data /mnt/ssh fuse.sshfs rw,nosuid 0 0
/dev/sdc1 /mnt/usb fuseblk rw 0 0
"""


@pytest.mark.parametrize(("path", "fstype", "network"), [
    ("/home/ann/dicomtui", "nfs4", "nfs4"),
    ("/home/local disk/db", "ext4", None),  # a local disk mounted inside the NFS home
    ("/home", "nfs4", "nfs4"),
    ("/homework", "ext4", None),  # a prefix of the name is not a mount point
    ("/mnt/share/db", "cifs", "cifs"),
    ("/mnt/ssh/x", "fuse.sshfs", "fuse.sshfs"),
    ("/mnt/usb/db", "fuseblk", None),
    ("/var/lib/db", "ext4", None),
])
def test_network_file_systems_are_told_from_the_mount_table(path: str, fstype: str, network: str | None) -> None:
    from dicomtui.core.database.filesystem import filesystem_type, network_filesystem

    assert filesystem_type(path, MOUNTS) == fstype
    assert network_filesystem(path, MOUNTS) == network


def test_a_database_on_nfs_is_opened_without_wal_and_warned_about_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    import dicomtui.core.database as database_module
    from dicomtui.core.database import filesystem

    monkeypatch.setattr(filesystem, "MOUNTS_FILE", str(tmp_path / "mounts"))
    (tmp_path / "mounts").write_text(f"server:/export {tmp_path} nfs4 rw 0 0\n")
    monkeypatch.setattr(filesystem, "_warned", set())
    assert database_module.network_filesystem(tmp_path / "db") == "nfs4"
    with caplog.at_level("WARNING", logger="dicomtui.database"):
        for _ in range(2):
            with DicomDatabase.open(tmp_path / "db") as db:
                assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                assert len(db.notices) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "dicomtui.database"]
    assert len(warnings) == 1
    assert warnings[0] == (
        f"the database folder {tmp_path / 'db'} is on a network file system (nfs4): SQLite's locking and WAL are "
        "not safe there, so it is opened without WAL (journal_mode=DELETE) and concurrent writers may still damage "
        "it; keep the index on a local disk (--db or the `database` setting; storage may stay remote)")
    assert not (tmp_path / "db" / (DB_FILE + "-wal")).exists()
    assert main(["--db", str(tmp_path / "db"), "ls", "studies"]) == 0
    assert "is on a network file system (nfs4)" in capsys.readouterr().err


def test_a_local_database_stays_in_wal_mode(tmp_path: Path) -> None:
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.notices == []


def test_repair_refuses_while_a_listener_serves_the_database(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`db check --repair` rebuilds the index and touches storage: with `dicomtui listen` running on the same database
    (its identity file locked) it is refused with a sentence naming the listener; plain `db check` still runs; once
    the listener stopped, the repair runs."""
    import signal
    import sys

    from tests.interop.test_dimse import free_port, wait_port

    db = tmp_path / "db"
    with DicomDatabase.open(db):
        pass
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(db), "listen", "--port", str(port),
                             "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, 30)
        assert main(["--db", str(db), "db", "check", "--repair"]) == 2
        assert f"on port {port}): stop it before `db check --repair`" in capsys.readouterr().err
        assert main(["--db", str(db), "db", "check"]) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    capsys.readouterr()
    assert main(["--db", str(db), "db", "check", "--repair"]) == 0
