"""Cancel of an import (issue 14 item 20): Ctrl-C in the CLI (SIGINT to the whole process group, as a terminal sends
it) ends a copy import with its summary; every file that reached storage is indexed, no temporary file is left in
``incoming/``, and ``db check`` finds nothing wrong afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series

TEMPLATE_UID = "1.2.826.0.1.3680043.8.498.99.1000000"  # the instance UID of the template, replaced byte for byte


def clone_folder(tmp_path: Path, files: int, per_series: int = 1500) -> Path:
    """``files`` small instances in series of ``per_series``: one file written by pydicom, then cloned with its
    SOPInstanceUID (and the file meta's copy of it) replaced by one of the same length. Writing 6,000 files
    through pydicom takes ~20 s on a loaded machine; cloning them well under one."""
    (template,) = write_series(tmp_path / "template", SeriesSpec(slices=1, rows=8, cols=8))
    import pydicom

    ds = pydicom.dcmread(template)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = TEMPLATE_UID
    ds.save_as(template)
    data = template.read_bytes()
    assert data.count(TEMPLATE_UID.encode()) == 2
    series_uid = str(ds.SeriesInstanceUID).encode()
    folder = tmp_path / "many"
    for n in range(files):
        s = n // per_series
        sub = folder / f"s{s}"
        sub.mkdir(parents=True, exist_ok=True)
        body = data.replace(TEMPLATE_UID.encode(), f"{TEMPLATE_UID[:-6]}{n:06d}".encode())
        body = body.replace(series_uid, series_uid[:-2] + f"{s:02d}".encode())
        (sub / f"IM{n:06d}.dcm").write_bytes(body)
    return folder


def _stored_files(db_path: Path) -> list[Path]:
    return [p for p in (db_path / "dicom").rglob("*") if p.is_file()] if (db_path / "dicom").exists() else []


def test_ctrl_c_ends_a_copy_import_with_its_summary_and_indexes_what_was_stored(tmp_path: Path) -> None:
    folder = clone_folder(tmp_path, 6000)
    db_path = tmp_path / "db"
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(db_path), "import", "--copy", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _stored_files(db_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the import ended before it could be cancelled"
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the parent and its parser workers
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "cancelling" in err
    assert "(cancelled)" in out and "instances read before the cancel are kept, copied and indexed" in out, out
    with DicomDatabase.open(db_path, read_only=True) as db:
        indexed = db.totals()["instances"]
        report = db.check()
    assert 0 < indexed < 6000
    assert len(_stored_files(db_path)) == indexed  # every copy in storage has its row, and no more
    assert report.ok, report.summary()  # no unreferenced file, no stale temporary file
    assert not any((db_path / "incoming").iterdir()) if (db_path / "incoming").exists() else True
    assert f"{indexed} instances read before the cancel" in out

    again = subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(db_path), "import", "--copy", str(folder)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with DicomDatabase.open(db_path, read_only=True) as db:
        assert db.totals()["instances"] == 6000


@pytest.mark.parametrize("workers", [0, 2])
def test_a_cancel_in_the_core_keeps_what_the_workers_stored(tmp_path: Path, workers: int) -> None:
    """The TUI's Escape sets the same event: chunks the workers already took are still indexed (in copy mode they
    are in storage), none is started after it."""
    folder = clone_folder(tmp_path, 4500)
    cancel = threading.Event()
    seen = []

    def progress(event) -> None:
        seen.append(event)
        if event.done >= 512:
            cancel.set()

    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [folder], ImportMode.COPY, progress=progress, workers=workers, cancel=cancel)
        indexed = db.totals()["instances"]
        check = db.check()
    assert report.cancelled and 0 < indexed < 4500
    assert report.instances_added == indexed == len(_stored_files(tmp_path / "db"))
    assert check.ok, check.summary()
    assert "read before the cancel are kept" in report.summary()
    assert not seen or seen[-1].done < seen[-1].total or seen[-1].total < 4500  # never a 100 % after a cancel


async def test_the_tui_bar_shows_no_percentage_before_work_and_no_100_after_a_cancel(tmp_path: Path) -> None:
    from textual.widgets import ProgressBar

    from dicomtui.core.indexer import ImportProgress
    from dicomtui.tui.app import DicomTuiApp
    from dicomtui.tui.screens.import_ import ImportScreen

    folder = clone_folder(tmp_path, 3000)
    app = DicomTuiApp(tmp_path / "fresh", renderer="halfblock", settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ImportScreen)
        bar = screen.query_one("#import-progress", ProgressBar)
        assert not bar.display  # before work: no bar reading "--%"
        screen.show_progress(ImportProgress("scan", 0, 0, scanned=120))
        assert not bar.display
        screen.cancel_event.set()  # as Escape does while running
        from textual.widgets import Input

        screen.query_one("#import-path", Input).value = str(folder)
        await pilot.press("enter")
        for _ in range(600):
            await pilot.pause(0.05)
            if screen.report is not None:
                break
        assert screen.report is not None and screen.report.cancelled
        assert bar.percentage is None or bar.percentage < 1
