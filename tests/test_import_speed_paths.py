"""The fast paths of import stay fast by construction (correctness, not timings): a re-import of unchanged files
is one stat per file and a set lookup — no file opened, no SQL per file — and a changed file is still read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase, records
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series


def _reimport_counts(tmp_path: Path, slices: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:
    """(SQL statements, headers read, files skipped) of a re-import of ``slices`` unchanged linked files."""
    folder = tmp_path / f"s{slices}"
    write_series(folder, SeriesSpec(slices=slices, rows=4, cols=4, patient_id=f"P{slices}"))
    with DicomDatabase.open(tmp_path / f"db{slices}") as db:
        assert import_paths(db, [folder], "link").instances_added == slices
        statements: list[str] = []
        reads: list[str] = []
        real = records.read_header  # the name FileRecord.from_file calls
        monkeypatch.setattr(records, "read_header", lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
        db.conn.set_trace_callback(statements.append)
        try:
            again = import_paths(db, [folder], "link", workers=0)
        finally:
            db.conn.set_trace_callback(None)
            monkeypatch.setattr(records, "read_header", real)
    return len(statements), len(reads), again.skipped_unchanged


def test_a_reimport_reads_no_file_and_runs_the_same_sql_for_10_or_200_files(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    small = _reimport_counts(tmp_path, 10, monkeypatch)
    large = _reimport_counts(tmp_path, 200, monkeypatch)
    assert small[1:] == (0, 10) and large[1:] == (0, 200)  # no header read, every file skipped
    assert small[0] == large[0], "a re-import's SQL grows with the number of files"


def test_a_file_changed_since_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The skip compares size and mtime: a file rewritten (new mtime) is parsed and updated, not skipped."""
    folder = tmp_path / "s"
    paths = write_series(folder, SeriesSpec(slices=3, rows=4, cols=4))
    reads: list[str] = []
    real = records.read_header
    monkeypatch.setattr(records, "read_header", lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [folder], "link")
        assert len(reads) == 3
        st = os.stat(paths[1])
        os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        again = import_paths(db, [folder], "link")
    assert (again.skipped_unchanged, again.updated, again.instances_added) == (2, 1, 0)
    assert reads[3:] == [str(paths[1])]
