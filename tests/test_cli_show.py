"""`dicomtui show` end to end, as a user runs it: TSV when piped, --json, --filter, --file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from dicomtui.core.synth import SeriesSpec, write_series

from .test_cli import run


def imported(tmp_path: Path, **spec) -> tuple[str, dict[str, str]]:
    """A database holding one three-slice series; returns its folder and the series' UIDs by level."""
    write_series(tmp_path / "in", SeriesSpec(slices=3, rows=8, cols=8, **spec))
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    (series,) = json.loads(run("--db", db, "ls", "series", "--json").stdout)
    instances = json.loads(run("--db", db, "ls", "instances", "--json").stdout)
    return db, {"study": series["StudyInstanceUID"], "series": series["SeriesInstanceUID"],
                "instance": instances[2]["SOPInstanceUID"]}


def test_show_prints_tab_separated_rows_when_piped(tmp_path: Path) -> None:
    db, uids = imported(tmp_path, patient_name="山田^太郎")
    out = run("--db", db, "show", uids["series"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "depth\ttag\tkeyword\tvr\tvalue\tcreator"
    assert "0\t(0010,0010)\tPatientName\tPN\t山田^太郎\t" in lines
    assert lines[1].split("\t")[1] == "(0002,0000)"  # file meta first
    assert "IM00001.dcm (file 1 of 3)" in out.stderr
    assert not any(line.split("\t")[1].startswith("(7FE0,") for line in lines[1:])


def test_show_json_file_and_filter(tmp_path: Path) -> None:
    db, uids = imported(tmp_path)
    out = run("--db", db, "show", uids["study"], "--file", "2", "--filter", "InstanceNumber", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert (row["tag"], row["keyword"], row["vr"], row["value"], row["path"]) == (
        "(0020,0013)", "InstanceNumber", "IS", "2", ["(0020,0013)"])
    out = run("--db", db, "show", uids["instance"], "--filter", "re:^instance(number|creation)", "--json")
    assert [r["value"] for r in json.loads(out.stdout)] == ["3"]


def test_show_errors_say_why(tmp_path: Path) -> None:
    db, uids = imported(tmp_path)
    out = run("--db", db, "show", "1.2.3.4.unknown")
    assert out.returncode == 2 and "no patient, study, series or instance 1.2.3.4.unknown" in out.stderr
    out = run("--db", db, "show", uids["series"], "--file", "4")
    assert out.returncode == 2 and "--file must be 1 to 3" in out.stderr
    out = run("--db", db, "show", uids["series"], "--filter", "re:[oops")
    assert out.returncode == 2 and "bad regular expression '[oops'" in out.stderr
    victim = tmp_path / "in" / "IM00001.dcm"  # linked import: the database points at this file
    victim.write_bytes(victim.read_bytes()[:600])
    out = run("--db", db, "show", uids["series"])
    assert out.returncode == 1 and "IM00001.dcm: truncated" in out.stderr and "Traceback" not in out.stderr
    victim.unlink()
    out = run("--db", db, "show", uids["series"])
    assert out.returncode == 1 and "IM00001.dcm: no such file" in out.stderr


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pydicom.dataset import Dataset

    from dicomtui.core.synth import series_datasets

    ds = series_datasets(SeriesSpec(slices=1, rows=8, cols=8))[0]
    refs = []
    for i in range(3000):  # far more output than a pipe buffers
        ref = Dataset()
        ref.ReferencedSOPInstanceUID = f"1.2.3.{i}"
        refs.append(ref)
    ds.ReferencedImageSequence = refs
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "big.dcm", enforce_file_format=True)
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "dicomtui", "--db", db, "show", ds.SOPInstanceUID],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("depth\t")  # like `| head -1`
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr
