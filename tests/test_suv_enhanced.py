"""SUV of an Enhanced PET file (Enhanced PET Image Storage, one multi-frame file, PS3.3 C.8.22): units from the
Pixel Value Transformation functional group, decay to Decay Correction DateTime, the scan start from the frames'
FrameAcquisitionDateTime; factors computed by hand here. Before session 5 an Enhanced PET got no SUV at all."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomtui.core.examine import examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.suv import ENHANCED_PET_STORAGE, enhanced_suv_factors, lean_body_mass
from dicomtui.core.synth import SeriesSpec, write_enhanced

SPEC = SeriesSpec(slices=4, rows=16, cols=16, series_description="PET WB", study_date="20240115",
                  study_time="101500")
HALF_LIFE = 6586.2  # F-18, s
DOSE = 370e6  # Bq


def enhanced_pet(path: Path, *, decay_corrected: str = "YES", decay_datetime: str | None = "20240115100000",
                 rescale_type: str = "BQML", weight: float | None = 75.0) -> Path:
    """An Enhanced PET file: ``write_enhanced``'s frames and geometry, as PT, with the SUV inputs in the places
    the Enhanced PET IOD keeps them: frames acquired from 10:00 on (one a minute), injection 09:00, 370 MBq."""
    write_enhanced(path, SPEC)
    ds = pydicom.dcmread(path)
    ds.Modality = "PT"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_PET_STORAGE
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleType = rescale_type
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.FrameContentSequence[0].FrameAcquisitionDateTime = f"202401151{n:03d}00"  # 10:00, 10:01 … (hhmm)
    if weight is not None:
        ds.PatientWeight = weight
    ds.PatientSize, ds.PatientSex = 1.75, "M"
    drug = Dataset()
    drug.RadionuclideTotalDose = DOSE
    drug.RadionuclideHalfLife = HALF_LIFE
    drug.RadiopharmaceuticalStartDateTime = "20240115090000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([drug])
    ds.AttenuationCorrected = "YES"
    ds.DecayCorrected = decay_corrected
    if decay_datetime is not None:
        ds.DecayCorrectionDateTime = decay_datetime
    ds.save_as(path, enforce_file_format=True)
    return path


def test_decay_corrected_to_its_datetime(tmp_path: Path) -> None:
    """Decay Correction DateTime 10:00, injection 09:00: the dose decays one hour (as START in a classic PET)."""
    result = enhanced_suv_factors(pydicom.dcmread(enhanced_pet(tmp_path / "pet.dcm")))
    decayed = DOSE * 2 ** (-3600 / HALF_LIFE)  # 253.3 MBq left
    assert result.factors["bw"] == pytest.approx(75_000 / decayed, rel=1e-12) == pytest.approx(2.960750e-4, rel=1e-6)
    assert result.factors["lbm"] == pytest.approx(lean_body_mass(75, 1.75, "M") * 1000 / decayed, rel=1e-12)
    assert result.units == "BQML" and result.warnings == []


def test_a_later_decay_datetime_decays_further(tmp_path: Path) -> None:
    """Decay Correction DateTime 10:30 (not the first frame's 10:00): 90 minutes of decay."""
    header = pydicom.dcmread(enhanced_pet(tmp_path / "pet.dcm", decay_datetime="20240115103000"))
    result = enhanced_suv_factors(header)
    assert result.factors["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-5400 / HALF_LIFE)), rel=1e-12)


def test_not_decay_corrected_decays_to_the_first_frame_and_says_so(tmp_path: Path) -> None:
    header = pydicom.dcmread(enhanced_pet(tmp_path / "pet.dcm", decay_corrected="NO", decay_datetime=None))
    result = enhanced_suv_factors(header)
    assert result.factors["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE)), rel=1e-12)
    assert any("DecayCorrection NONE" in w for w in result.warnings), result.warnings


def test_decay_corrected_without_its_datetime_uses_the_first_frame_and_says_so(tmp_path: Path) -> None:
    result = enhanced_suv_factors(pydicom.dcmread(enhanced_pet(tmp_path / "pet.dcm", decay_datetime=None)))
    assert result.factors["bw"] == pytest.approx(75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE)), rel=1e-12)
    assert result.warnings == ["Decay Corrected YES without Decay Correction DateTime: the dose is decayed to the "
                               "first frame's start"]


def test_units_from_rescale_type_other_than_bqml_are_not_converted(tmp_path: Path) -> None:
    result = enhanced_suv_factors(pydicom.dcmread(enhanced_pet(tmp_path / "pet.dcm", rescale_type="CNTS")))
    assert result.factors == {} and result.warnings == ["SUV not computed: Units is CNTS, not BQML (Bq/ml)"]


def test_examine_and_load_of_an_enhanced_pet_carry_the_factor(db, tmp_path: Path) -> None:
    enhanced_pet(tmp_path / "in" / "pet.dcm")
    import_paths(db, [tmp_path / "in"])
    series_id = db.conn.execute("SELECT id FROM series").fetchone()[0]
    (loadable,) = [item for item in examine_series(db, [series_id]) if item.selected]
    bw = 75_000 / (DOSE * 2 ** (-3600 / HALF_LIFE))
    assert loadable.notes and loadable.notes[0].startswith(f"SUV factors: body weight {bw:.4g}"), loadable.notes
    (volume,) = load(db, loadable)
    assert volume.units == "BQML" and volume.suv_factors["bw"] == pytest.approx(bw, rel=1e-12)
    assert [w.name for w in volume.windows[:2]] == ["SUV 0-5", "SUV 0-10"]
    assert volume.windows[0].width == pytest.approx(5 / bw)


def test_an_enhanced_pet_without_a_weight_says_so(db, tmp_path: Path) -> None:
    enhanced_pet(tmp_path / "in" / "pet.dcm", weight=None)
    import_paths(db, [tmp_path / "in"])
    series_id = db.conn.execute("SELECT id FROM series").fetchone()[0]
    (loadable,) = [item for item in examine_series(db, [series_id]) if item.selected]
    (volume,) = load(db, loadable)
    assert volume.suv_factors == {}
    assert "SUV not computed: the header lacks PatientWeight" in volume.warnings
