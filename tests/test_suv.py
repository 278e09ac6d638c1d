"""PET SUV: factors from generated PET headers, computed by hand here (the QIBA vendor-neutral pseudocode cases:
decay START vs ADMIN, a series time after the acquisition, GE's private scan time, missing weight), shown by
examine, carried by the loaded volume with SUV window presets in stored units."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.suv import lean_body_mass, suv_factors
from dicomtui.core.synth import SeriesSpec
from dicomtui.core.synth_rt import PetSpec, pet_datasets, write_datasets

SPEC = SeriesSpec(slices=4, rows=16, cols=16, modality="PT", series_description="PET WB")
HALF_LIFE = 6586.2  # F-18, s
DOSE = 370e6  # Bq


def factors(pet: PetSpec) -> tuple[dict[str, float], list[str]]:
    datasets = pet_datasets(SPEC, pet)
    result = suv_factors(datasets[0], [str(ds.AcquisitionTime) for ds in datasets])
    return result.factors, result.warnings


def test_decay_start_decays_the_dose_from_injection_to_the_series_time() -> None:
    got, warnings = factors(PetSpec(start_time="090000", series_time="100000"))
    decayed = DOSE * 2 ** (-3600 / HALF_LIFE)  # one hour: 253.3 MBq left
    assert got["bw"] == pytest.approx(75_000 / decayed, rel=1e-12) == pytest.approx(2.960750e-4, rel=1e-6)
    assert warnings == []


def test_decay_admin_does_not_decay_the_dose() -> None:
    got, warnings = factors(PetSpec(decay_correction="ADMIN", start_time="090000", series_time="100000"))
    assert got["bw"] == pytest.approx(75_000 / DOSE, rel=1e-12) == pytest.approx(2.027027e-4, rel=1e-6)
    assert warnings == []
    # no decay to compute: neither the half-life nor the injection time is needed
    assert factors(PetSpec(decay_correction="ADMIN", half_life_s=None, start_time=None))[0]["bw"] == got["bw"]


def test_decay_none_decays_to_the_scan_start_and_says_later_frames_read_low() -> None:
    got, warnings = factors(PetSpec(decay_correction="NONE"))
    assert got["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE)), rel=1e-12)
    assert warnings == ["DecayCorrection NONE: the SUV factor decays the dose to the scan start; frames acquired "
                        "later read low by their own decay"]


def test_a_series_time_after_the_acquisition_uses_the_earliest_acquisition() -> None:
    # a post-processed series: SeriesTime 11:30 is when it was made; the beds were acquired from 10:02
    got, _ = factors(PetSpec(series_time="113000", acquisition_times=["100500", "100200", "100800", "101100"]))
    assert got["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3720 / HALF_LIFE)), rel=1e-12)


def test_ge_private_scan_time_wins_over_the_acquisition_when_the_series_time_is_late() -> None:
    got, _ = factors(PetSpec(series_time="113000", acquisition_times=["100500"], ge_scan_datetime="20240115094000"))
    assert got["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-2400 / HALF_LIFE)), rel=1e-12)


def test_a_series_time_before_the_acquisition_is_the_scan_time() -> None:
    got, _ = factors(PetSpec(series_time="100000", acquisition_times=["100500"], ge_scan_datetime="20240115094000"))
    assert got["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE)), rel=1e-12)


def test_the_start_datetime_carries_the_day_across_midnight() -> None:
    got, _ = factors(PetSpec(start_time=None, start_datetime="20240114233000", series_time="003000"))
    assert got["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE)), rel=1e-12)


def test_lean_body_mass_by_janmahasatian() -> None:
    bmi = 75 / 1.75**2
    assert lean_body_mass(75, 1.75, "M") == pytest.approx(9270 * 75 / (6680 + 216 * bmi)) == pytest.approx(58.0837,
                                                                                                           abs=1e-4)
    assert lean_body_mass(60, 1.65, "F") == pytest.approx(9270 * 60 / (8780 + 244 * 60 / 1.65**2))
    assert lean_body_mass(75, None, "M") is None and lean_body_mass(75, 1.75, "O") is None
    got, _ = factors(PetSpec())
    assert got["lbm"] == pytest.approx(got["bw"] * 58.08369706 / 75, rel=1e-9)
    assert "lbm" not in factors(PetSpec(size_m=None))[0]


@pytest.mark.parametrize("pet, missing", [
    (PetSpec(weight_kg=None), "PatientWeight"),
    (PetSpec(weight_kg=None, total_dose_bq=None), "PatientWeight and RadionuclideTotalDose"),
    (PetSpec(start_time=None), "RadiopharmaceuticalStartDateTime or StartTime"),
    (PetSpec(half_life_s=None), "RadionuclideHalfLife"),
    (PetSpec(decay_correction="DECAY"), "a known DecayCorrection (it is DECAY)"),
])
def test_what_is_missing_is_named(pet: PetSpec, missing: str) -> None:
    assert factors(pet) == ({}, [f"SUV not computed: the header lacks {missing}"])


def test_corrections_the_image_lacks_are_said_beside_the_factor() -> None:
    got, warnings = factors(PetSpec(corrected=("DECY",)))
    assert got["bw"] == pytest.approx(2.960750e-4, rel=1e-6)
    assert warnings == ["CorrectedImage lacks ATTN: the activity is not attenuation-corrected, so SUV is not "
                        "quantitative"]
    assert factors(PetSpec(corrected=("ATTN",)))[1] == [
        "DecayCorrection START but CorrectedImage lacks DECY: the SUV factor trusts DecayCorrection"]
    assert factors(PetSpec(corrected=()))[1] == []  # absent (Type 2 empty): unknown, nothing said


def test_units_other_than_bqml_are_not_converted() -> None:
    assert factors(PetSpec(units="CNTS")) == ({}, ["SUV not computed: Units is CNTS, not BQML (Bq/ml)"])


def test_a_scan_before_the_injection_is_refused() -> None:
    assert factors(PetSpec(start_time="110000", series_time="100000")) == (
        {}, ["SUV not computed: the scan (2024-01-15 10:00:00) is before the injection (2024-01-15 11:00:00)"])


def _imported(db, tmp_path: Path, pet: PetSpec):
    write_datasets(tmp_path / "pet", pet_datasets(SPEC, pet))
    import_paths(db, [tmp_path / "pet"])
    series_id = db.conn.execute("SELECT id FROM series").fetchone()[0]
    (loadable,) = [item for item in examine_series(db, [series_id]) if item.selected]
    return loadable


def test_examine_shows_the_factor_and_the_volume_carries_it_with_suv_windows(db, tmp_path: Path) -> None:
    loadable = _imported(db, tmp_path, PetSpec())
    bw = 75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE))
    lbm = bw * lean_body_mass(75, 1.75, "M") / 75
    assert loadable.notes == [f"SUV factors: body weight {bw:.4g}, lean body mass (Janmahasatian) {lbm:.4g} g/ml "
                              f"per Bq/ml (scan 10:00:00, 60 min after injection)"]
    assert loadable.warnings == [] and loadable.to_dict()["notes"] == loadable.notes
    (volume,) = load(db, loadable)
    assert volume.units == "BQML" and volume.suv_factors == pytest.approx({"bw": bw, "lbm": lbm})
    first, second = volume.windows[:2]
    assert (first.name, second.name) == ("SUV 0-5", "SUV 0-10")
    assert first.center == pytest.approx(2.5 / bw) and first.width == pytest.approx(5 / bw)
    assert second.center == pytest.approx(5 / bw) and second.width == pytest.approx(10 / bw)
    assert volume.warnings == []


def test_without_a_weight_examine_and_the_volume_say_so(db, tmp_path: Path) -> None:
    loadable = _imported(db, tmp_path, PetSpec(weight_kg=None))
    assert loadable.notes == ["SUV not computed: the header lacks PatientWeight"] and loadable.warnings == []
    (volume,) = load(db, loadable)
    assert volume.suv_factors == {} and volume.units == "BQML"
    assert not any(w.name.startswith("SUV") for w in volume.windows)
    assert volume.warnings == ["SUV not computed: the header lacks PatientWeight"]


def test_cli_examine_prints_the_suv_factors(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_datasets(tmp_path / "pet", pet_datasets(SPEC, PetSpec()))
    cli = [sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db")]
    subprocess.run([*cli, "import", str(tmp_path / "pet")], check=True, capture_output=True)
    uid = subprocess.run([*cli, "ls", "series", "--json"], check=True, capture_output=True, text=True).stdout
    import json

    out = subprocess.run([*cli, "examine", json.loads(uid)[0]["SeriesInstanceUID"]], capture_output=True, text=True)
    assert out.returncode == 0 and "        SUV factors: body weight " in out.stdout, out.stdout + out.stderr
