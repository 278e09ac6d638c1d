"""Output names from the series, safe, never an existing file's (dcm2niix's letter suffixes), and the default
folder outside dicomtui's source tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import VolumeWriteError
from dicomtui.core.indexer import import_paths
from dicomtui.core.naming import default_output_folder, free_path, output_stem, safe_name, series_stem
from dicomtui.core.synth import SeriesSpec, write_series


@pytest.mark.parametrize(("text", "expected"), [
    ("T1 ax/1", "T1_ax_1"),  # as dcm2niix -f %d writes it
    ("Müller^Jörg", "Muller_Jorg"),
    ("../../etc/passwd", "etc_passwd"),  # no way out of the folder
    ("a\\b:c*d?e\"f<g>h|i", "a_b_c_d_e_f_g_h_i"),
    ("line\nbreak\x1b[31m", "line_break_31m"),
    (".hidden", "hidden"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("   ", ""),
    (None, ""),
    (7, "7"),
])
def test_safe_name(text, expected) -> None:
    assert safe_name(text) == expected


def test_a_long_description_is_cut() -> None:
    assert len(safe_name("x" * 300)) == 64


def test_series_stem_is_patient_id_series_number_description() -> None:
    row = {"PatientID": "P 01", "SeriesNumber": 3, "SeriesDescription": "T1 MPRAGE"}
    assert series_stem(row) == "P_01_3_T1_MPRAGE"
    assert series_stem({"PatientID": "P1", "SeriesNumber": None, "SeriesDescription": ""}) == "P1"
    assert series_stem({"PatientID": "P1", "name": "3 T1 (part 2)"}) == "P1_3_T1_part_2"
    assert series_stem({}) == "volume"


def test_free_path_appends_dcm2niix_letters(tmp_path: Path) -> None:
    target = tmp_path / "P1_3_T1.nii.gz"
    assert free_path(target) == target
    target.write_bytes(b"")
    assert free_path(target) == tmp_path / "P1_3_T1a.nii.gz"
    (tmp_path / "P1_3_T1a.bval").write_bytes(b"")  # a side-car of an earlier 4D save takes the name too
    assert free_path(target) == tmp_path / "P1_3_T1b.nii.gz"
    for letter in "bcdefghijklmnopqrstuvwxyz":
        (tmp_path / f"P1_3_T1{letter}.nii.gz").write_bytes(b"")
    assert free_path(target) == tmp_path / "P1_3_T1_27.nii.gz"
    assert free_path(tmp_path / "X.NRRD") == tmp_path / "X.NRRD"
    with pytest.raises(VolumeWriteError, match="must end in"):
        free_path(tmp_path / "x.png")


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix (Debian dcm2niix) is not installed")
def test_free_path_names_as_dcm2niix_does(tmp_path: Path) -> None:
    """The peer: dcm2niix run three times into one folder writes x, xa, xb; free_path gives the same names."""
    write_series(tmp_path / "in", SeriesSpec(patient_id="P1", slices=3, series_number=3,
                                             series_description="T1 ax/1"))
    out = tmp_path / "out"
    out.mkdir()
    ours = []
    for _ in range(3):
        ours.append(free_path(out / "x.nii").name)
        subprocess.run(["dcm2niix", "-o", str(out), "-f", "x", str(tmp_path / "in")], check=True,
                       capture_output=True)
    assert ours == ["x.nii", "xa.nii", "xb.nii"]
    assert sorted(p.name for p in out.glob("*.nii")) == ours
    subprocess.run(["dcm2niix", "-o", str(out), "-f", "%i_%s_%d", str(tmp_path / "in")], check=True,
                   capture_output=True)
    assert (out / f"{series_stem({'PatientID': 'P1', 'SeriesNumber': 3, 'SeriesDescription': 'T1 ax/1'})}.nii"
            ).exists()


def test_output_stem_reads_the_series_and_its_patient(tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(patient_id="J/1", slices=2, series_number=4,
                                             series_description="Axial 2.5", series_uid="1.2.3.4"))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        assert output_stem(db, "1.2.3.4") == "J_1_4_Axial_2.5"
        assert output_stem(db, "9.9", name="Lost one") == "Lost_one"


def test_the_default_folder_is_never_the_source_tree(tmp_path: Path) -> None:
    import dicomtui

    checkout = Path(dicomtui.__file__).resolve().parents[1]
    assert default_output_folder(tmp_path) == tmp_path
    if (checkout / "pyproject.toml").is_file():  # an editable install: `make run` starts in the checkout
        assert default_output_folder(checkout) == Path.home()
        assert default_output_folder(checkout / "tests") == Path.home()


def test_cli_load_names_from_the_series_and_never_overwrites_without_force(tmp_path: Path, capsys) -> None:
    """`load -o DIR` names the file from the series; a second load gets dcm2niix's suffix and says so;
    --force overwrites; a file name given by the user is kept the same way."""
    from dicomtui.cli import main

    write_series(tmp_path / "in", SeriesSpec(patient_id="J1", slices=3, series_number=2, series_description="T1 ax",
                                             series_uid="1.2.3.9"))
    db = str(tmp_path / "db")
    assert main(["--db", db, "import", str(tmp_path / "in")]) == 0
    out = tmp_path / "out"
    assert main(["--db", db, "load", "1.2.3.9", "-o", f"{out}/"]) == 0
    assert (out / "J1_2_T1_ax.nii.gz").exists()
    first = (out / "J1_2_T1_ax.nii.gz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["--db", db, "load", "1.2.3.9", "-o", str(out)]) == 0
    said = capsys.readouterr().err
    assert "J1_2_T1_ax.nii.gz exists: writing J1_2_T1_axa.nii.gz instead (--force overwrites)" in said
    assert (out / "J1_2_T1_axa.nii.gz").exists() and (out / "J1_2_T1_ax.nii.gz").stat().st_mtime_ns == first
    assert main(["--db", db, "load", "1.2.3.9", "-o", str(out), "--force"]) == 0
    assert not (out / "J1_2_T1_axb.nii.gz").exists()
    given = tmp_path / "mine.nrrd"
    given.write_bytes(b"keep")
    assert main(["--db", db, "load", "1.2.3.9", "-o", str(given)]) == 0
    assert given.read_bytes() == b"keep" and (tmp_path / "minea.nrrd").exists()
