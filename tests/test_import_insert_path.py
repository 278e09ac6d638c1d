"""The import's insert path (issue 15, link import ≥ 40,000 files/s): what it writes is unchanged, and it does no
work it need not do. Instance rows name only their present columns (binding a None costs the sqlite3 module an
adapter lookup, ~0.3 µs each, a third of the insert); an update still clears a column the new file lacks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dicomtui.core import header
from dicomtui.core.database import DicomDatabase, FileRecord
from dicomtui.core.database.records import INSTANCE_COLUMNS
from dicomtui.core.indexer import ImportReport, import_paths
from dicomtui.core.synth import SeriesSpec, write_series


@pytest.mark.parametrize("row", [(), (None,), (1,), (None, None), ("a", None, 2.5, None, b"x", 0, "", None),
                                 tuple(range(60)), tuple([None] * 60)])
def test_present_in_c_and_python_agree(row: tuple) -> None:
    expected = (bytes(v is not None for v in row), tuple(v for v in row if v is not None))
    assert header._present(row) == expected
    assert header.present(row) == expected  # the C twin when it was built
    if header._scan is None:
        pytest.skip("the C extension is not built here: only the Python version was checked")
    assert header._scan.present(row) == expected


def _traced_import(tmp_path: Path, slices: int) -> tuple[ImportReport, list[str], list[tuple]]:
    """Link a new series of ``slices`` files into a new database: the report, every SQL statement run (as
    SQLite expands them) and the instance rows (frames, TriggerTime, Rows, Columns, has_pixels)."""
    folder = tmp_path / "s"
    write_series(folder, SeriesSpec(slices=slices, rows=4, cols=4))
    statements: list[str] = []
    with DicomDatabase.open(tmp_path / "db") as db:
        db.conn.set_trace_callback(statements.append)
        report = import_paths(db, [folder], "link", workers=0)
        db.conn.set_trace_callback(None)
        rows = db.conn.execute("SELECT frames, TriggerTime, Rows, Columns, has_pixels FROM instances").fetchall()
    return report, statements, rows


def test_an_import_binds_no_null_and_names_only_present_columns(tmp_path: Path) -> None:
    """Single-frame CT files have no per-frame geometry (``frames``) nor TriggerTime: the insert does not name
    them; the rows read back with those columns NULL and every other column as before."""
    report, statements, rows = _traced_import(tmp_path, 5)
    inserts = [s for s in statements if s.startswith("INSERT INTO instances")]
    assert report.instances_added == 5 and inserts
    named = inserts[0].split("(", 1)[1].split(")", 1)[0].split(", ")
    assert "frames" not in named and "TriggerTime" not in named and "SOPInstanceUID" in named
    assert rows == [(None, None, 4, 4, 1)] * 5


def test_an_update_clears_a_column_the_newer_file_does_not_have(tmp_path: Path) -> None:
    """The upsert names only the new row's present columns, yet sets every column (a left-out one to NULL)."""
    path = write_series(tmp_path / "s", SeriesSpec(slices=1, rows=4, cols=4))[0]
    with DicomDatabase.open(tmp_path / "db") as db:
        rec = FileRecord.from_file(path)
        rec.header["WindowCenter"], rec.header["TriggerTime"] = "40", 12.5
        assert db.add_files([rec]).instances_added == 1
        assert db.conn.execute("SELECT WindowCenter, TriggerTime FROM instances").fetchone() == ("40", 12.5)
        rec.header.pop("WindowCenter")
        rec.header["TriggerTime"] = None
        assert db.add_files([rec]).instances_updated == 1
        assert db.conn.execute("SELECT WindowCenter, TriggerTime, Rows FROM instances").fetchone() == (None, None, 4)


def test_rows_of_one_batch_with_different_columns_keep_their_order(tmp_path: Path) -> None:
    """Runs of rows with different present columns are separate statements, in the batch's order: the same SOP
    Instance UID twice in one batch ends as the later row."""
    path = write_series(tmp_path / "s", SeriesSpec(slices=1, rows=4, cols=4))[0]
    first, second = FileRecord.from_file(path), FileRecord.from_file(path)
    first.header["TriggerTime"] = 1.0
    second.header["TriggerTime"], second.header["EchoTime"] = None, 3.0
    with DicomDatabase.open(tmp_path / "db") as db:
        db.add_files([first, second])
        assert db.conn.execute("SELECT TriggerTime, EchoTime FROM instances").fetchall() == [(None, 3.0)]
        db.add_files([second, first])
        assert db.conn.execute("SELECT TriggerTime, EchoTime FROM instances").fetchall() == [(1.0, None)]


def test_only_has_pixels_has_a_default_among_instance_columns(tmp_path: Path) -> None:
    """The upsert's left-out columns take their default: NULL for all but has_pixels, which every row gives."""
    with DicomDatabase.open(tmp_path / "db") as db:
        info = db.conn.execute("PRAGMA table_info(instances)").fetchall()
    defaults = {name: default for _cid, name, _type, _notnull, default, _pk in info if default is not None}
    assert defaults == {"has_pixels": "1"}
    assert set(INSTANCE_COLUMNS) <= {row[1] for row in info}
    assert sqlite3.sqlite_version_info >= (3, 24)  # upsert


def test_the_last_rows_are_written_in_chunks_before_the_workers_are_joined(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail of an import, where only the importing process works: once the scan is complete each parsed chunk
    is written as it comes (not one whole batch after the last), and the workers are joined only after the last
    write (they exit meanwhile)."""
    from concurrent.futures import ProcessPoolExecutor

    from dicomtui.core import indexer

    monkeypatch.setattr(indexer, "CHUNK", 8)
    monkeypatch.setattr(indexer, "BATCH", 64)
    monkeypatch.setattr(indexer, "POOL_THRESHOLD", 16)
    folder = tmp_path / "s"
    write_series(folder, SeriesSpec(slices=100, rows=4, cols=4))
    events: list[tuple[str, int]] = []
    commit, shutdown = indexer._commit, ProcessPoolExecutor.shutdown

    def counting_commit(db, pending, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("write", len(pending)))
        return commit(db, pending, *args, **kwargs)

    def noting_shutdown(self, wait=True, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("join" if wait else "shutdown", 0))
        return shutdown(self, wait, **kwargs)

    monkeypatch.setattr(indexer, "_commit", counting_commit)
    monkeypatch.setattr(ProcessPoolExecutor, "shutdown", noting_shutdown)
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [folder], "link", workers=2)
    assert report.instances_added == 100 and not report.rejected
    writes = [n for kind, n in events if kind == "write" and n]
    assert sum(writes) == 100 and writes[-1] <= 8, writes
    last_write = max(i for i, (kind, n) in enumerate(events) if kind == "write" and n)
    assert [kind for kind, _ in events[last_write:]].count("join") == 1, events


def test_one_lookup_of_the_batch_uids_serves_the_duplicate_rule_and_the_writer(tmp_path: Path) -> None:
    """The rule for several files of one SOPInstanceUID (duplicates.resolve) and the writer's added/updated count
    read the same rows: one SELECT of the batch's UIDs in its transaction, not one before it and one in it."""
    report, statements, _rows = _traced_import(tmp_path, 30)
    lookups = [s for s in statements if "FROM instances WHERE SOPInstanceUID IN" in s]
    transactions = [s for s in statements if s.startswith("BEGIN")]
    assert report.instances_added == 30 and len(lookups) == len(transactions) == 1, (lookups, transactions)


@pytest.mark.parametrize("charset, image_type", [("ISO_IR 192", "ORIGINAL\\PRIMARY"),
                                                 ("\\ISO 2022 IR 87", "ORIGINAL \\ PRIMARY \\AXIAL"),
                                                 ("ISO_IR 100", " DERIVED\\ SECONDARY ")])
def test_the_c_walk_decodes_multi_values_with_spaces_as_the_python_one(tmp_path: Path, charset: str,
                                                                       image_type: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-valued attributes with spaces inside ("ISO_IR 192", the Specific Character Set of every UTF-8 file)
    are decoded by the C walk, each value stripped as tags.convert("multi") does, not handed back as bytes."""
    import pydicom

    path = write_series(tmp_path / "s", SeriesSpec(slices=1, rows=4, cols=4))[0]
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    ds.ImageType = image_type.split("\\")
    ds.save_as(path)
    if header._scan is None:
        pytest.skip("the C extension is not built here")
    buf = Path(path).read_bytes()
    record: dict = {}
    start = buf.index(b"\x08\x00\x05\x00")  # (0008,0005), the first element after the file meta here
    header._scan.scan(buf, start, len(buf), True, record)
    assert type(record["SpecificCharacterSet"]) is str and type(record["ImageType"]) is str
    with_c = header.read_header(str(path))
    monkeypatch.setattr(header, "_scan", None)
    assert header.read_header(str(path)) == with_c
