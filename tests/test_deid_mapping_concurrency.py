"""The de-identification mapping under concurrency: a listener forwarding de-identified for days while the user
runs ``deidentify`` jobs on the same database. Jobs at once, in processes and in threads, give the same patient ONE
pseudonym and each UID ONE new UID, whoever asks first, and none fails (the first SQLite version told the second
job to "run it again")."""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest

from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.synth import SeriesSpec, write_series

ORIGINALS = [f"1.2.826.0.1.3680043.10.1147.{n}" for n in range(400)]


def _map_all(folder: str, seed: int, barrier, out: str) -> None:
    """One job: every original (in its own order) and three patients, begun when the other job begins, saved
    when the other has made its entries too (jobs of files take seconds: their work overlaps)."""
    order = list(ORIGINALS)
    random.Random(seed).shuffle(order)
    mapping = database_mapping(folder)
    barrier.wait(timeout=60)
    got = {"uids": {o: mapping.uid(o) for o in order},
           "patients": {p: mapping.patient(p, "Doe^Jane").pseudonym for p in ("PID1", "PID2", "PID3")}}
    barrier.wait(timeout=60)
    mapping.save()
    mapping.close()
    Path(out).write_text(json.dumps(got))


def test_two_processes_get_one_pseudonym_and_one_uid_per_original(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each, like two CLI jobs
    barrier = context.Barrier(2)
    outs = [tmp_path / f"job{n}.json" for n in range(2)]
    jobs = [context.Process(target=_map_all, args=(str(tmp_path), n, barrier, str(out)))
            for n, out in enumerate(outs)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
    assert [job.exitcode for job in jobs] == [0, 0]
    first, second = (json.loads(out.read_text()) for out in outs)
    assert first == second
    again = database_mapping(tmp_path)
    assert {o: again.known_uid(o) for o in ORIGINALS} == first["uids"]
    assert len(set(first["uids"].values())) == len(ORIGINALS)


def test_threads_with_their_own_or_one_shared_mapping_agree(tmp_path: Path) -> None:
    shared = database_mapping(tmp_path)
    barrier = threading.Barrier(4)
    results: dict[int, dict[str, str]] = {}
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            mapping = shared if n % 2 else database_mapping(tmp_path)
            order = list(ORIGINALS)
            random.Random(n).shuffle(order)
            barrier.wait(timeout=60)
            results[n] = {o: mapping.uid(o) for o in order} | {"PID1": mapping.patient("PID1").pseudonym}
            mapping.save()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert results[0] == results[1] == results[2] == results[3]


def _deidentify(db: Path, uid: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", str(db), "deidentify", uid, "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _written(folder: Path) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The patients and (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of what a job wrote."""
    patients, uids = set(), set()
    for path in folder.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            patients.add((ds.PatientID, ds.PatientName, ds.StudyDate))
            uids.add((ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    return patients, uids


def test_two_deidentify_jobs_on_one_database_at_once_write_the_same_pseudonyms_and_uids(tmp_path: Path) -> None:
    """Two ``dicomtui deidentify`` processes of the same patient started together: both succeed, and their files
    carry the same pseudonym, shifted date and UIDs (with the old save-at-the-end, the second to finish failed)."""
    from tests.test_cli import run

    spec = SeriesSpec(patient_id="PID778899", patient_name="Smithers^Waylon", slices=120, rows=16, cols=16)
    write_series(tmp_path / "ct", spec)
    db = tmp_path / "db"
    assert run("--db", str(db), "import", str(tmp_path / "ct"), "--copy").returncode == 0
    jobs = [_deidentify(db, "PID778899", tmp_path / f"out{n}") for n in range(2)]
    outputs = [job.communicate(timeout=180) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    (patients, uids), (patients2, uids2) = (_written(tmp_path / f"out{n}") for n in range(2))
    assert patients == patients2 and len(patients) == 1
    assert uids == uids2 and len(uids) == 120
    assert "PID778899" not in str(patients)


@pytest.mark.parametrize("kind", ["mapping", "forward queue"])
def test_jobs_opening_a_new_file_at_once_all_open_it(tmp_path: Path, kind: str) -> None:
    """Switching a new SQLite file to WAL needs it alone, and SQLite answers "database is locked" at once (no busy
    wait) to the loser of two connections switching together: each open retries. 100 new files opened by 6 threads
    at once (the old code failed about one file in twenty; CI saw it with two processes)."""

    from dicomtui.core.export.deid_mapping import _connect
    from dicomtui.core.net.forward_queue import ForwardQueue

    def open_it(where: Path) -> None:
        if kind == "mapping":
            _connect(where / "deidentification-map.sqlite").close()
        else:
            ForwardQueue(where, check_same_thread=False).conn.close()

    errors: list[BaseException] = []
    for n in range(100):
        where = tmp_path / str(n)
        where.mkdir()
        barrier = threading.Barrier(6)

        def run(where: Path = where, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                open_it(where)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
