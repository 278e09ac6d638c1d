"""The headless CLI end to end, as a user runs it: exit codes, tables, --json, confirmation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dicomtui.core.database import SCHEMA_VERSION, DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_4d, write_series


def run(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomtui", *args], capture_output=True, text=True, input=input,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_import_ls_rm_info_check(tmp_path: Path, series_folder: Path) -> None:
    db = str(tmp_path / "db")
    out = run("--db", db, "import", str(series_folder), "--copy")
    assert out.returncode == 0, out.stderr
    assert "1 patient, 1 study, 2 series, 15 instances added" in " ".join(out.stdout.split())

    out = run("--db", db, "ls", "patients", "--json")
    patients = json.loads(out.stdout)
    assert [(p["PatientName"], p["PatientID"], p["num_studies"]) for p in patients] == [
        ("Synthetic^Patient", "SYN0001", 1)]

    out = run("--db", db, "ls", "series", "--patient", "SYN0001")
    lines = out.stdout.splitlines()  # not a terminal: tab-separated with a header line
    assert lines[0].split("\t")[:3] == ["SeriesNumber", "Modality", "SeriesDescription"]
    assert [line.split("\t")[4] for line in lines[1:]] == ["10", "5"]

    series_uid = json.loads(run("--db", db, "ls", "series", "--json").stdout)[1]["SeriesInstanceUID"]
    out = run("--db", db, "ls", "instances", "--series", series_uid, "--json")
    instances = json.loads(out.stdout)
    assert len(instances) == 5 and all(Path(i["path"]).is_file() and i["stored"] == 1 for i in instances)

    assert run("--db", db, "ls", "series", "--study", "1.2.3.nothing").returncode == 2

    out = run("--db", db, "rm", series_uid)  # not a terminal and no --yes: refuse
    assert out.returncode == 2 and "--yes" in out.stderr
    out = run("--db", db, "rm", series_uid, "--yes", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["instances"] == 5 and report["files_deleted"] == 5 and report["series"] == 1

    info = json.loads(run("--db", db, "db", "info", "--json").stdout)
    assert (info["patients"], info["studies"], info["series"], info["instances"]) == (1, 1, 1, 10)
    assert info["schema_version"] == SCHEMA_VERSION and info["stored_instances"] == 10

    assert run("--db", db, "db", "check").returncode == 0
    stored = Path(instances[0]["path"]).parent.parent  # some other series' folder still in storage?
    victim = next((Path(db) / "dicom").rglob("*.dcm"))
    victim.unlink()
    out = run("--db", db, "db", "check", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["missing"] == [str(victim)]
    out = run("--db", db, "db", "check", "--repair")
    assert out.returncode == 0 and "1 rows dropped" in out.stdout
    assert run("--db", db, "db", "check").returncode == 0
    assert not stored.exists() or stored.is_dir()


def test_partial_import_exits_1_with_a_table_of_rejections(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_series(folder, SeriesSpec(slices=2))
    (folder / "readme.txt").write_text("hello")
    out = run("--db", str(tmp_path / "db"), "import", str(folder))
    assert out.returncode == 1
    assert "Rejected files (1)" in out.stdout and "readme.txt" in out.stdout and "not a DICOM file" in out.stdout
    out = run("--db", str(tmp_path / "db"), "import", str(folder), "--json")
    report = json.loads(out.stdout)
    assert report["skipped_unchanged"] == 2 and report["rejected"][0]["path"].endswith("readme.txt")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("ls", "nothing").returncode == 2
    (tmp_path / "notadb").mkdir()
    (tmp_path / "notadb" / "file.txt").write_text("x")
    out = run("--db", str(tmp_path / "notadb"), "db", "info")
    assert out.returncode == 2 and "not a dicomtui database" in out.stderr
    out = run("--db", str(tmp_path / "missing"), "ls", "patients")
    assert out.returncode == 2 and "no dicomtui database" in out.stderr
    assert run("--db", str(tmp_path / "db"), "rm", "1.2.3", "--yes").returncode == 2


def test_default_database_comes_from_settings(tmp_path: Path, series_folder: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "dicomtui"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'database = "{tmp_path / "fromsettings"}"\nimport_mode = "copy"\n')
    out = run("import", str(series_folder), "--json")
    assert json.loads(out.stdout)["mode"] == "copy"
    assert (tmp_path / "fromsettings" / "dicomtui.sqlite").is_file()
    (config / "config.toml").write_text('import_mode = "move"\n')
    out = run("db", "info")
    assert out.returncode == 2 and "import_mode" in out.stderr


def test_examine_and_load(tmp_path: Path) -> None:
    import nrrd
    import numpy as np

    folder = tmp_path / "in"
    write_series(folder, SeriesSpec(slices=6, rows=16, cols=20, slice_spacing=2.0))
    extra = write_series(tmp_path / "gap", SeriesSpec(slices=10, rows=16, cols=20, series_number=2, seed=5))
    for path in extra[3:6]:  # three missing slices
        path.unlink()
    db = str(tmp_path / "db")
    run("--db", db, "import", str(folder), str(tmp_path / "gap"))
    series = {s["SeriesNumber"]: s["SeriesInstanceUID"] for s in json.loads(run("--db", db, "ls", "series",
                                                                                   "--json").stdout)}
    out = run("--db", db, "examine", series[1], "--json")
    (item,) = json.loads(out.stdout)
    assert (item["name"], item["selected"], item["warnings"], item["instances"]) == ("1: Axial", True, [], 6)

    out = run("--db", db, "load", series[1], "-o", str(tmp_path / "v.nrrd"))
    assert out.returncode == 0, out.stderr
    data, header = nrrd.read(str(tmp_path / "v.nrrd"))
    assert data.shape == (20, 16, 6) and header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(np.array(header["space directions"], dtype=float),
                               [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 2.0]])

    out = run("--db", db, "examine", series[2])
    assert "3 missing slices between slice 3 and 4" in out.stdout
    out = run("--db", db, "load", series[2], "-o", str(tmp_path / "g.nii.gz"), "--strict")
    assert out.returncode == 1 and "missing slices" in out.stderr and not (tmp_path / "g.nii.gz").exists()
    out = run("--db", db, "load", series[2], "-o", str(tmp_path / "g.nii.gz"))
    assert out.returncode == 0 and "warning: 3 missing slices" in out.stderr and (tmp_path / "g.nii.gz").exists()
    assert run("--db", db, "load", series[2], "-o", str(tmp_path / "g.png")).returncode == 2
    # a file in folders that do not exist yet: they are created (as for `-o DIR/`); under a file: a sentence
    out = run("--db", db, "load", series[1], "-o", str(tmp_path / "new" / "sub" / "v.nii.gz"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "new" / "sub" / "v.nii.gz").exists()
    out = run("--db", db, "load", series[1], "-o", str(tmp_path / "v.nrrd" / "sub" / "v.nii.gz"))
    assert out.returncode == 2 and out.stderr.startswith("dicomtui: cannot create the folder")
    assert "Traceback" not in out.stderr


def test_load_says_the_number_of_volumes_only_when_there_are_several(tmp_path: Path) -> None:
    """A plain series is "8x8x4 voxels of int16" (load returns a list of one volume: no "× 1 volumes"); a
    dynamic series written as one 4D image says "× 2 volumes"; --loadable out of range names the range."""
    write_series(tmp_path / "plain", SeriesSpec(slices=4, rows=8, cols=8))
    write_4d(tmp_path / "dyn", SeriesSpec(patient_id="P4D", slices=3, rows=8, cols=8),
             [{"TemporalPositionIdentifier": 1}, {"TemporalPositionIdentifier": 2}])
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "plain"), str(tmp_path / "dyn")).returncode == 0
    by_size = {s["num_instances"]: s["SeriesInstanceUID"]
               for s in json.loads(run("--db", db, "ls", "series", "--json").stdout)}
    plain, dyn = by_size[4], by_size[6]

    out = run("--db", db, "load", plain, "-o", str(tmp_path / "p.nii"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"wrote {tmp_path / 'p.nii'}: 8x8x4 voxels of int16, spacing 0.5 x 0.5 x 2 mm (1: Axial)\n"
    out = run("--db", db, "load", dyn, "-o", str(tmp_path / "d.nii"))
    assert out.returncode == 0, out.stderr
    assert ": 8x8x3 voxels × 2 volumes of int16, spacing 0.5 x 0.5 x 2 mm" in out.stdout
    out = run("--db", db, "load", dyn, "-o", str(tmp_path / "x.nii"), "--loadable", "9")
    assert out.returncode == 2 and out.stderr == f"dicomtui: --loadable must be 1 to 2 (see `dicomtui examine {dyn}`)\n"


def test_readers_do_not_wait_for_a_writer(tmp_path: Path, series_folder: Path) -> None:
    """`ls` reads while another process holds the write lock (moved from test_review_regressions)."""
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [series_folder])
        db.conn.execute("BEGIN IMMEDIATE")  # a long write transaction elsewhere
        try:
            start = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(db.root), "ls", "patients", "--json"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and len(json.loads(out.stdout)) == 1
            assert time.monotonic() - start < 10
        finally:
            db.conn.execute("ROLLBACK")


# ---- issue 12: files without file meta; library warnings ----

def test_bare_data_sets_and_odd_files_import_load_and_show_without_raw_warnings(tmp_path: Path) -> None:
    from tests.test_dicomfile import MISMATCH_WARNING, bare, mismatched

    originals = write_series(tmp_path / "orig", SeriesSpec(slices=3, rows=8, cols=8))
    bare(originals[0], tmp_path / "in" / "a" / "IMPL", explicit=False)
    bare(originals[1], tmp_path / "in" / "b" / "EXPL", explicit=True)
    odd = mismatched(originals[2], tmp_path / "in" / "c" / "ODD")
    db = str(tmp_path / "db")
    out = run("--db", db, "import", str(tmp_path / "in"))
    assert out.returncode == 0, out.stderr
    assert "UserWarning" not in out.stderr and "site-packages" not in out.stderr
    assert f"{odd}\tpydicom: {MISMATCH_WARNING}" in out.stdout  # the import's warnings table
    assert "3 instances added" in out.stdout

    (series,) = json.loads(run("--db", db, "ls", "series", "--json").stdout)  # the three files: one series
    loaded = run("--db", db, "load", series["SeriesInstanceUID"], "-o", str(tmp_path / "v.nii"))
    assert loaded.returncode == 0, loaded.stderr
    assert ": 8x8x3 voxels" in loaded.stdout
    assert "UserWarning" not in loaded.stderr and "site-packages" not in loaded.stderr
    assert f"dicomtui: warning: {odd}: {MISMATCH_WARNING}\n" in loaded.stderr  # with the file's name
    for n in (1, 2, 3):
        shown = run("--db", db, "show", series["SeriesInstanceUID"], "--file", str(n), "--json")
        assert shown.returncode == 0, shown.stderr
        assert "UserWarning" not in shown.stderr and "site-packages" not in shown.stderr
        assert any(r["keyword"] == "SOPInstanceUID" for r in json.loads(shown.stdout))
