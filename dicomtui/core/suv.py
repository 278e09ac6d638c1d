"""PET standardised uptake values: the factors from stored activity concentration (Units BQML) to SUV.

Follows the QIBA vendor-neutral SUV pseudocode ("Standardized Uptake Value (SUV)", QIBA wiki; the reading in
Slicer's PETDICOMExtension and cornerstone's calculate-suv):

- scan time: SeriesDate/Time when it is not after the earliest AcquisitionDate/Time of the series; else (a
  post-processed series whose SeriesTime is when it was made) the GE private scan date-time (0009,100D) of
  creator GEMS_PETD_01 when present, else the earliest AcquisitionDate/Time;
- injection time: RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime;
- decayed dose = RadionuclideTotalDose × 2^(−(scan − injection) / RadionuclideHalfLife) for DecayCorrection START
  (images decay-corrected to the scan start); ADMIN images are corrected to the injection time already, so the
  dose is not decayed; NONE images are not corrected at all: the factor decays to the scan start and a warning
  says frames acquired later read low;
- SUVbw factor = PatientWeight [kg] × 1000 / decayed dose [Bq] (g/ml per Bq/ml);
- SUVlbm (SUL) factor = lean body mass [kg] × 1000 / decayed dose, lean body mass by Janmahasatian et al.
  (Clin Pharmacokinet 2005;44:1051-65) — the formula PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S) uses
  for SUL, kept from James's (1976) because James's turns down, and then negative, at high BMI:
  male 9270 × W / (6680 + 216 × BMI), female 9270 × W / (8780 + 244 × BMI), BMI = W / H², W kg, H m.

Enhanced PET (Enhanced PET Image Storage, one multi-frame file; PS3.3 C.8.22) states these elsewhere
(``enhanced_suv_factors``): the units in the Pixel Value Transformation functional group's RescaleType (shared,
else the first frame's); Decay Corrected (0018,9758) YES with Decay Correction DateTime (0018,9701), the time the
frames are decay-corrected to and the dose is decayed to (NO: as NONE, to the first frame's start); the scan start
the earliest FrameAcquisitionDateTime of the Frame Content groups; Attenuation Corrected (0018,9759) stands for
CorrectedImage ATTN; the RadiopharmaceuticalInformationSequence of the Enhanced PET Isotope Module as above.

Units other than BQML (CNTS, GML…) are not converted: a warning says so. A CorrectedImage (0028,0051) without
ATTN, or without DECY while DecayCorrection says START/ADMIN, is said beside the factor (QIBA computes only with
both; the factor is still given, the user is told).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .volume import WindowPreset

if TYPE_CHECKING:
    from pathlib import Path

    from .volume import Volume

__all__ = ["ENHANCED_PET_STORAGE", "SUV_WINDOWS", "SuvResult", "attach", "enhanced_suv_factors", "factors_of",
           "lean_body_mass", "note_loadables", "scan_time", "suv_factors", "suv_presets"]

SUV_WINDOWS = ((0.0, 5.0), (0.0, 10.0))  # SUV ranges of the window presets: "SUV 0-5", "SUV 0-10"
_GE_CREATOR, _GE_SCAN_DATETIME = "GEMS_PETD_01", 0x0D  # (0009,xx0D): GE's scan date and time
ENHANCED_PET_STORAGE = "1.2.840.10008.5.1.4.1.1.130"  # Enhanced PET Image Storage (PS3.4 B.5)


@dataclass
class SuvResult:
    """The factors (``"bw"``, ``"lbm"``: stored value × factor = SUV, g/ml per Bq/ml), the scan and injection times
    used, the decayed dose (Bq), and the warnings: what is missing when a factor could not be computed."""

    factors: dict[str, float] = field(default_factory=dict)
    scan_time: datetime | None = None
    injection_time: datetime | None = None
    decayed_dose: float | None = None
    warnings: list[str] = field(default_factory=list)
    units: str = ""  # the stored values' units (Units, or an Enhanced PET's RescaleType), upper case

    def summary(self) -> str:
        """"SUV factors: body weight 2.55e-04, lean body mass 1.98e-04 g/ml per Bq/ml (scan 10:00:00, 60 min after
        injection)", or "" without a factor."""
        if not self.factors:
            return ""
        names = {"bw": "body weight", "lbm": "lean body mass (Janmahasatian)"}
        listed = ", ".join(f"{names[k]} {v:.4g}" for k, v in self.factors.items())
        when = ""
        if self.scan_time and self.injection_time:
            minutes = (self.scan_time - self.injection_time).total_seconds() / 60
            when = f" (scan {self.scan_time:%H:%M:%S}, {minutes:.4g} min after injection)"
        return f"SUV factors: {listed} g/ml per Bq/ml{when}"


def suv_factors(header: Any, acquisition_times: list[str] | None = None, scan: datetime | None = None
                ) -> SuvResult:
    """The SUV factors of a PET series from the header of one of its images (a pydicom Dataset: Units,
    DecayCorrection, PatientWeight/Size/Sex, RadiopharmaceuticalInformationSequence, SeriesDate/Time,
    AcquisitionDate/Time, GE's (0009,100D)) and the AcquisitionTime of every image of the series (TM text; the
    earliest is used with the header's AcquisitionDate); ``scan``: the time to decay to, given (an Enhanced
    PET's), instead of QIBA's rules. Never raises: what is missing becomes a warning."""
    out = SuvResult()
    units = out.units = str(header.get("Units") or "").upper()
    if units != "BQML":
        out.warnings.append(f"SUV not computed: Units is {units or 'absent'}, not BQML (Bq/ml)")
        return out
    drug = (header.get("RadiopharmaceuticalInformationSequence") or [None])[0]
    dose = _number(drug, "RadionuclideTotalDose")
    half_life = _number(drug, "RadionuclideHalfLife")
    weight = _number(header, "PatientWeight")
    decay = str(header.get("DecayCorrection") or "").upper()
    scan = scan or scan_time(header, acquisition_times or [])
    injection = _injection_time(header, drug)
    missing = [name for name, value in (("PatientWeight", weight), ("RadionuclideTotalDose", dose)) if not value]
    if decay != "ADMIN":  # ADMIN: corrected to the injection already, no decay to compute
        missing += [name for name, value in (("RadionuclideHalfLife", half_life),
                                             ("the series or acquisition time", scan),
                                             ("RadiopharmaceuticalStartDateTime or StartTime", injection)) if not value]
    if decay not in ("START", "ADMIN", "NONE"):
        missing.append(f"a known DecayCorrection (it is {decay or 'absent'})")
    if missing:
        out.warnings.append(f"SUV not computed: the header lacks {_and(missing)}")
        return out
    assert dose is not None and weight is not None  # checked above
    out.scan_time, out.injection_time = scan, injection
    decayed = dose
    if decay != "ADMIN":
        assert scan is not None and injection is not None and half_life is not None
        elapsed = (scan - injection).total_seconds()
        if elapsed < 0:
            out.warnings.append(f"SUV not computed: the scan ({scan:%Y-%m-%d %H:%M:%S}) is before the injection "
                                f"({injection:%Y-%m-%d %H:%M:%S})")
            return out
        decayed = dose * 2.0 ** (-elapsed / half_life)
        if decay == "NONE":
            out.warnings.append("DecayCorrection NONE: the SUV factor decays the dose to the scan start; frames "
                                "acquired later read low by their own decay")
    out.decayed_dose = decayed
    value = header.get("CorrectedImage") or []
    corrected = {str(v).upper() for v in ([value] if isinstance(value, str) else value)}  # one value: a str
    if corrected and "ATTN" not in corrected:  # QIBA's happy path wants ATTN and DECY; absent (Type 2) is unknown
        out.warnings.append("CorrectedImage lacks ATTN: the activity is not attenuation-corrected, so SUV is not "
                            "quantitative")
    if corrected and decay in ("START", "ADMIN") and "DECY" not in corrected:
        out.warnings.append(f"DecayCorrection {decay} but CorrectedImage lacks DECY: the SUV factor trusts "
                            f"DecayCorrection")
    out.factors["bw"] = weight * 1000.0 / decayed
    lbm = lean_body_mass(weight, _number(header, "PatientSize"), str(header.get("PatientSex") or ""))
    if lbm is not None:
        out.factors["lbm"] = lbm * 1000.0 / decayed
    return out


def lean_body_mass(weight_kg: float, size_m: float | None, sex: str) -> float | None:
    """Lean body mass in kg by Janmahasatian (2005), from weight (kg), height (m) and sex (M/F); None when the
    height or the sex (O, absent) is unknown."""
    if not size_m or sex.upper() not in ("M", "F"):
        return None
    bmi = weight_kg / (size_m * size_m)
    if sex.upper() == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def scan_time(header: Any, acquisition_times: list[str]) -> datetime | None:
    """The scan start the decay is computed to (QIBA): SeriesDate/Time unless it is after the earliest
    acquisition, then GE's (0009,100D), else the earliest AcquisitionDate/Time; None when neither is known."""
    series = _datetime(header.get("SeriesDate"), header.get("SeriesTime"))
    day = header.get("AcquisitionDate") or header.get("SeriesDate")
    times = [t for t in [*acquisition_times, header.get("AcquisitionTime")] if t]
    acquired = [a for a in (_datetime(day, t) for t in times) if a is not None]
    earliest = min(acquired) if acquired else None
    if series is not None and (earliest is None or series <= earliest):
        return series
    ge = _ge_scan_time(header)
    return ge if ge is not None else earliest


def suv_presets(factor: float) -> list[WindowPreset]:
    """The SUV window presets ("SUV 0-5", "SUV 0-10") in stored units: centre and width divided by ``factor``."""
    return [WindowPreset(f"SUV {lo:g}-{hi:g}", (lo + hi) / 2 / factor, (hi - lo) / factor) for lo, hi in SUV_WINDOWS]


def attach(volume: Volume, path: Path, rows: list[dict[str, Any]]) -> SuvResult:
    """Fill a PET ``volume``'s ``units``, ``suv_factors`` and SUV window presets (first) from the header of
    ``path`` (one of its files) and the AcquisitionTime of its instance ``rows``; the summary (or why SUV was
    not computed) goes with its warnings."""
    header = _header(path)
    result = SuvResult(warnings=[header]) if isinstance(header, str) else factors_of(header, rows)
    if not isinstance(header, str):
        volume.units = result.units
    volume.suv_factors = dict(result.factors)
    if "bw" in result.factors:
        volume.windows[:0] = suv_presets(result.factors["bw"])
        volume.extra["suv"] = result.summary()
    volume.warnings += [w for w in result.warnings if w not in volume.warnings]
    return result


def note_loadables(db: Any, loadables: list[Any]) -> None:
    """Tell each PET loadable (its first row's Modality PT, with pixels) its SUV factors, or why there are none,
    as a note (``Loadable.notes``): examine shows it. One header read per series (the first file's, no pixels);
    the acquisition times are the stored rows'."""
    headers: dict[str, Any] = {}
    for item in loadables:
        rows = item.instances
        if not rows or rows[0].get("Modality") != "PT" or not rows[0].get("has_pixels"):
            continue
        if item.series_uid not in headers:
            headers[item.series_uid] = _header(db.abspath(rows[0]["path"], bool(rows[0]["stored"])))
        header = headers[item.series_uid]
        result = factors_of(header, rows) if not isinstance(header, str) else SuvResult(warnings=[header])
        item.notes += [result.summary()] if result.factors else result.warnings[:1]


def factors_of(header: Any, rows: list[dict[str, Any]]) -> SuvResult:
    """The SUV factors of a PET series from one file's ``header`` and its instance ``rows`` (their
    AcquisitionTime): ``enhanced_suv_factors`` for an Enhanced PET file, else ``suv_factors``."""
    if str(header.get("SOPClassUID") or "") == ENHANCED_PET_STORAGE:
        return enhanced_suv_factors(header)
    return suv_factors(header, [str(r["AcquisitionTime"]) for r in rows if r.get("AcquisitionTime")])


def enhanced_suv_factors(header: Any) -> SuvResult:
    """The SUV factors of an Enhanced PET file (PS3.3 A.56, C.8.22) from its header (a pydicom Dataset with its
    functional groups), by the rules of ``suv_factors``: Units from the Pixel Value Transformation RescaleType
    (shared, else the first frame's) when no top-level Units; Decay Corrected YES: START, decayed to Decay
    Correction DateTime (absent: to the first frame's start, with a warning); NO: NONE; the scan start the
    earliest FrameAcquisitionDateTime (else FrameReferenceDateTime, else AcquisitionDateTime); Attenuation
    Corrected / Decay Corrected as CorrectedImage ATTN / DECY when Attenuation Corrected is present. Never
    raises."""
    from pydicom.dataset import Dataset

    flat = Dataset()
    for keyword in ("PatientWeight", "PatientSize", "PatientSex", "RadiopharmaceuticalInformationSequence",
                    "SeriesDate", "SeriesTime", "AcquisitionDate", "Units", "DecayCorrection", "CorrectedImage"):
        if keyword in header:
            setattr(flat, keyword, header[keyword].value)
    if not flat.get("Units"):
        units = _group_value(header, "PixelValueTransformationSequence", "RescaleType")
        if units:
            flat.Units = units
    decay_corrected = str(header.get("DecayCorrected") or "").upper()
    if not flat.get("DecayCorrection") and decay_corrected in ("YES", "NO"):
        flat.DecayCorrection = "START" if decay_corrected == "YES" else "NONE"
    if not flat.get("CorrectedImage") and "AttenuationCorrected" in header:
        flat.CorrectedImage = [name for keyword, name in (("AttenuationCorrected", "ATTN"), ("DecayCorrected", "DECY"))
                               if str(header.get(keyword) or "").upper() == "YES"]
    frames = [_dt(content.get(keyword)) for item in header.get("PerFrameFunctionalGroupsSequence") or []
              for content in item.get("FrameContentSequence") or []
              for keyword in ("FrameAcquisitionDateTime", "FrameReferenceDateTime")]
    starts = [t for t in frames if t is not None] or [t for t in [_dt(header.get("AcquisitionDateTime"))] if t]
    start = min(starts) if starts else None
    scan = _dt(header.get("DecayCorrectionDateTime")) if decay_corrected == "YES" else None
    note = []
    if decay_corrected == "YES" and scan is None and start is not None:
        note = ["Decay Corrected YES without Decay Correction DateTime: the dose is decayed to the first frame's "
                "start"]
    result = suv_factors(flat, [], scan or start)
    result.warnings += note if result.factors else []
    return result


def _group_value(header: Any, sequence: str, keyword: str) -> Any:
    """``keyword`` of the functional group ``sequence``: the shared group's, else the first frame's; None."""
    for groups in (header.get("SharedFunctionalGroupsSequence"), header.get("PerFrameFunctionalGroupsSequence")):
        for item in (groups or [])[:1]:
            for inner in item.get(sequence) or []:
                if inner.get(keyword):
                    return inner.get(keyword)
    return None


def _dt(value: Any) -> datetime | None:
    """DT text → a naive datetime (pydicom's DT; a UTC offset is ignored, as ``_datetime`` does); None."""
    from pydicom.valuerep import DT

    if not value:
        return None
    try:
        return DT(str(value).strip()).replace(tzinfo=None)
    except (ValueError, TypeError):
        return None


def _header(path: Path) -> Any:
    """The header of ``path`` without its pixels, or the sentence saying why SUV is not computed."""
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - only SUV is lost; the pixel read names the file if it matters
        return f"SUV not computed: the header could not be read ({exc})"


def _number(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword) if ds is not None else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _injection_time(header: Any, drug: Any) -> datetime | None:
    """RadiopharmaceuticalStartDateTime, else SeriesDate (or AcquisitionDate) + RadiopharmaceuticalStartTime."""
    if drug is None:
        return None
    if drug.get("RadiopharmaceuticalStartDateTime"):
        text = str(drug.RadiopharmaceuticalStartDateTime)
        return _datetime(text[:8], text[8:] or "000000")
    return _datetime(header.get("SeriesDate") or header.get("AcquisitionDate"),
                     drug.get("RadiopharmaceuticalStartTime"))


def _ge_scan_time(header: Any) -> datetime | None:
    try:
        block = header.private_block(0x0009, _GE_CREATOR)
        text = str(block[_GE_SCAN_DATETIME].value)
    except (KeyError, ValueError):
        return None
    return _datetime(text[:8], text[8:] or "000000")


def _datetime(day: Any, clock: Any) -> datetime | None:
    """DA + TM text → a naive datetime (pydicom's DA/TM parsers; a UTC offset is ignored); None when unreadable."""
    from pydicom.valuerep import DA, TM

    if not day or not clock:
        return None
    try:
        return datetime.combine(DA(str(day).strip()), TM(str(clock).strip().split("+")[0].split("-")[0]))
    except (ValueError, TypeError):
        return None


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
